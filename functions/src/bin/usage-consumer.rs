//! UsageEventsQueue consumer

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    meterbell::platform::lambda::run_sqs(meterbell::analytics::consumer::usage_consumer).await
}
