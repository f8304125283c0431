//! GET /api/v1/admin/analytics/overview

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::analytics::routes::admin_overview).await
}
