//! `GET analytics/time-series`: the period in buckets of an hour, day, week or month.

use super::*;

#[derive(Serialize)]
struct Point {
    timestamp: String,
    requests: i64,
    errors: i64,
    credits: i64,
    cost_usd: Usd4,
    input_tokens: i64,
    output_tokens: i64,
}

#[derive(Serialize)]
struct TimeSeriesOut {
    granularity: &'static str,
    period_days: i64,
    timezone: String,
    data_points: usize,
    data: Vec<Point>,
}

http_handler!(
    /// `GET /api/v1/analytics/time-series?granularity=hour|day|week|month`
    time_series => get_time_series
);

async fn get_time_series(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &["granularity"]).await?;
    let user = read.user()?;
    let granularity = Granularity::parse(read.params.get("granularity"))?;
    let buckets = read.period.buckets(granularity);
    let sums = read.load(&Scope::User(user), &buckets).await?.per_bucket;
    let data: Vec<Point> = buckets
        .iter()
        .zip(&sums)
        .map(|(b, r)| Point {
            timestamp: b.label.clone(),
            requests: r.total.requests,
            errors: r.total.errors,
            credits: r.total.credits,
            cost_usd: Usd4(r.total.cost_micros),
            input_tokens: r.total.input_tokens,
            output_tokens: r.total.output_tokens,
        })
        .collect();
    let body = TimeSeriesOut {
        granularity: granularity.as_str(),
        period_days: read.period.days,
        timezone: read.period.tz.name().to_owned(),
        data_points: data.len(),
        data,
    };
    read.log("time-series");
    json(app, StatusCode::OK, &body)
}

// ---------------------------------------------------------------- providers, models, endpoints
