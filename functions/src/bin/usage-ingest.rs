//! POST /api/v1/usage/events

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::ingest::post_usage_events).await
}
