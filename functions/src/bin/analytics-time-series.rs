//! GET /api/v1/analytics/time-series

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::analytics::time_series).await
}
