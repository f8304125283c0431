//! GET /api/v1/analytics/export/csv

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    meterbell::lambda::run_http(meterbell::handlers::analytics::export_csv).await
}
