//! GET /api/v1/notifications/unread-count

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::notifications::routes::inbox::unread_count)
        .await
}
