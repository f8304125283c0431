//! GET /api/v1/admin/analytics/top-users

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::analytics::routes::admin_top_users).await
}
