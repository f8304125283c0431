//! GET /api/v1/analytics/top-models

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::analytics::routes::top_models).await
}
