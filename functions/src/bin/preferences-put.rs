//! PUT /api/v1/notifications/preferences

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::notifications::routes::preferences::put).await
}
