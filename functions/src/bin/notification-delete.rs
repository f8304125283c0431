//! DELETE /api/v1/notifications/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::notifications::delete).await
}
