//! DELETE /api/v1/webhooks/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::webhooks::delete).await
}
