//! PUT /api/v1/notifications/read-all

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::notifications::read_all).await
}
