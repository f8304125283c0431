//! GET /api/v1/analytics/performance

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::analytics::routes::performance).await
}
