//! SQS EmailQueue: one SES SendEmail per message

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    meterbell::platform::lambda::run_sqs(
        meterbell::notifications::channels::email::sender::email_sender,
    )
    .await
}
