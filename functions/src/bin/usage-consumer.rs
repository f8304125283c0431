//! UsageEventsQueue consumer

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    meterbell::lambda::run_sqs(meterbell::handlers::ingest::usage_consumer).await
}
