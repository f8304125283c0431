//! POST /api/v1/webhooks

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::webhooks::create).await
}
