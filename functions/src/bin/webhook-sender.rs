//! SQS WebhookQueue: one signed webhook POST per message

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    meterbell::lambda::run_sqs(meterbell::handlers::webhook_sender::webhook_sender).await
}
