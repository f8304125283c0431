//! GET /api/v1/analytics/top-models

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::analytics::top_models).await
}
