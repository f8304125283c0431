//! POST /api/v1/notifications (admin)

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::notifications::routes::inbox::create).await
}
