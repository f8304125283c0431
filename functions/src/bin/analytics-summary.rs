//! GET /api/v1/analytics/summary

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::analytics::summary).await
}
