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
    /// With `group_by`: the bucket's usage per group (the period's top values, `other`,
    /// `untagged`), so a stacked chart's layers add up to the bucket (to its attributed
    /// breakdown in a zone off the hour).
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<GroupOut>>,
}

#[derive(Serialize)]
struct TimeSeriesOut {
    granularity: &'static str,
    period_days: i64,
    timezone: String,
    data_points: usize,
    data: Vec<Point>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group_by: Option<String>,
}

http_handler!(
    /// `GET /api/v1/analytics/time-series?granularity=hour|day|week|month`
    time_series => get_time_series
);

async fn get_time_series(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let mut allowed = vec!["granularity"];
    allowed.extend(GROUPING);
    let read = open_read(app, req, &allowed).await?;
    let user = read.user()?;
    let granularity = Granularity::parse(read.params.get("granularity"))?;
    let limit = read.group_limit()?;
    let buckets = read.period.buckets(granularity);
    let loaded = read.load(&Scope::User(user), &buckets).await?;
    let sums = loaded.per_bucket;
    let ranked = read
        .dims
        .group_by
        .as_ref()
        .map(|dim| (dim, Groups::rank(&loaded.total, dim, limit)));
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
            groups: ranked
                .as_ref()
                .map(|(dim, ranked)| groups_out(&ranked.within(r, dim), r.total.cost_micros)),
        })
        .collect();
    let body = TimeSeriesOut {
        granularity: granularity.as_str(),
        period_days: read.period.days,
        timezone: read.period.tz.name().to_owned(),
        data_points: data.len(),
        data,
        filter: read.params.get("filter").map(str::to_owned),
        group_by: read.dims.group_by.as_ref().map(Dimension::label),
    };
    read.log("time-series");
    json(app, StatusCode::OK, &body)
}

// ---------------------------------------------------------------- providers, models, endpoints
