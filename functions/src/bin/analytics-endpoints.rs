//! GET /api/v1/analytics/endpoints

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::analytics::endpoints).await
}
