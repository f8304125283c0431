//! GET /api/v1/admin/analytics/overview

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::analytics::admin_overview).await
}
