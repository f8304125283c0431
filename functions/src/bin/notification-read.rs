//! PUT /api/v1/notifications/{id}/read

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::notifications::routes::inbox::mark_read).await
}
