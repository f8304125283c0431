//! SQS WebhookQueue: one signed webhook POST per message

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    meterbell::platform::lambda::run_sqs(
        meterbell::notifications::channels::webhook::sender::webhook_sender,
    )
    .await
}
