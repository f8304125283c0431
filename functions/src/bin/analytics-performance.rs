//! GET /api/v1/analytics/performance

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::analytics::performance).await
}
