//! GET /api/v1/notifications/unread-count

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::notifications::unread_count).await
}
