//! POST /api/v1/usage/events

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::analytics::routes::ingest::post_usage_events)
        .await
}
