//! DELETE /api/v1/notifications/{id}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::platform::lambda::run_http(meterbell::notifications::routes::inbox::delete).await
}
