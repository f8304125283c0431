//! POST /api/v1/notifications (admin)

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::notifications::create).await
}
