//! GET /api/v1/notifications/{id}/deliveries

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::notifications::routes::inbox::deliveries).await
}
