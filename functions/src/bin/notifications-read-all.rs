//! PUT /api/v1/notifications/read-all

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::notifications::routes::inbox::read_all).await
}
