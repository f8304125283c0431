//! GET /api/v1/notifications

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::notifications::list).await
}
