//! PUT /api/v1/notifications/{id}/read

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::notifications::mark_read).await
}
