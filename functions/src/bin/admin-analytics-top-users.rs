//! GET /api/v1/admin/analytics/top-users

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::analytics::admin_top_users).await
}
