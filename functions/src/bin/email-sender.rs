//! SQS EmailQueue: one SES SendEmail per message

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    meterbell::lambda::run_sqs(meterbell::handlers::email_sender::email_sender).await
}
