//! SQS NotificationJobsQueue: in-app item, then email and webhook fan-out

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    meterbell::lambda::run_sqs(meterbell::handlers::dispatcher::dispatcher).await
}
