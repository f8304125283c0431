//! GET /api/v1/analytics/providers

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::analytics::routes::providers).await
}
