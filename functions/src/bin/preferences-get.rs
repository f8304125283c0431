//! GET /api/v1/notifications/preferences

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::preferences::get).await
}
