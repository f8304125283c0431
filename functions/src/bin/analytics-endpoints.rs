//! GET /api/v1/analytics/endpoints

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::analytics::routes::endpoints).await
}
