//! SQS NotificationJobsQueue: in-app item, then email and webhook fan-out

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    meterbell::platform::lambda::run_sqs(meterbell::notifications::dispatcher::dispatcher).await
}
