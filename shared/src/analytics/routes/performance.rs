//! `GET analytics/performance`: latency percentiles and error rates, overall and per model
//! and endpoint, with the peak hour.

use super::*;

#[derive(Serialize)]
struct OverallOut {
    requests: i64,
    errors: i64,
    error_rate: Fixed,
    latency_ms: LatencyOut,
}

#[derive(Serialize)]
struct PeakHour {
    hour: usize,
    requests: i64,
    timezone: String,
}

#[derive(Serialize)]
struct MostUsed {
    endpoint: String,
    requests: i64,
}

#[derive(Serialize)]
struct PerformanceOut {
    period_days: i64,
    overall: OverallOut,
    /// Each list is left out when the `filter` cannot split it (by_endpoint under a model
    /// filter, by_model under an endpoint filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    by_model: Option<Vec<DimensionRow>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    by_endpoint: Option<Vec<DimensionRow>>,
    /// Both are `null` without usage, and left out when the `filter` cannot split them (hours
    /// of day under any filter, endpoints under a provider or model filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_hour: Option<Option<PeakHour>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    most_used_endpoint: Option<Option<MostUsed>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter: Option<String>,
}

http_handler!(
    /// `GET /api/v1/analytics/performance`
    performance => get_performance
);

async fn get_performance(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &[FILTER]).await?;
    // Latency is what this route is about; a tag's rollups keep none.
    read.dims.require(Facet::Latency, "performance")?;
    let loaded = read.load(&Scope::User(read.user()?), &read.whole()).await?;
    let (total, items) = (loaded.total, loaded.items);
    let t = &total.total;
    // Requests per local hour of day: each stored UTC hour moved into the period's zone.
    let mut by_local_hour = [0i64; 24];
    for (key, r) in &items {
        // An edge hour's model and endpoint items hold no hours of day.
        let Some(start) = crate::analytics::period::key_start(key) else {
            continue;
        };
        for (h, n) in &r.hour_of_day {
            // A day item spreads over its hours; an hour or quarter item is its own instant.
            let instant = if key.len() == 10 {
                start + chrono::Duration::hours(i64::from(*h))
            } else {
                start
            };
            if instant >= read.period.start && instant < read.period.end {
                by_local_hour[read.period.tz.local(instant).hour() as usize] += n;
            }
        }
    }
    let peak = by_local_hour
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
        .map(|(h, n)| PeakHour {
            hour: h,
            requests: *n,
            timezone: read.period.tz.name().to_owned(),
        });
    let most_used = total
        .endpoints
        .iter()
        .max_by(|a, b| a.1.requests.cmp(&b.1.requests).then(b.0.cmp(a.0)))
        .map(|(e, c)| MostUsed {
            endpoint: e.clone(),
            requests: c.requests,
        });
    let mut models: Vec<_> = total.models.iter().collect();
    models.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
    let mut endpoints: Vec<_> = total.endpoints.iter().collect();
    endpoints.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
    let body = PerformanceOut {
        period_days: read.period.days,
        overall: OverallOut {
            requests: t.requests,
            errors: t.errors,
            error_rate: Fixed(per_request(t.errors, t.requests), 4),
            latency_ms: latency(Some(&total.latency), t),
        },
        by_model: read.dims.keeps(Facet::Models).then(|| {
            models
                .iter()
                .map(|((p, m), c)| {
                    dimension_row(
                        Some(model_key(p, m)),
                        None,
                        c,
                        total.model_latency.get(&(p.clone(), m.clone())),
                    )
                })
                .collect()
        }),
        by_endpoint: read.dims.keeps(Facet::Endpoints).then(|| {
            endpoints
                .iter()
                .map(|(e, c)| {
                    dimension_row(None, Some((*e).clone()), c, total.endpoint_latency.get(*e))
                })
                .collect()
        }),
        peak_hour: read.dims.keeps(Facet::Hours).then_some(peak),
        most_used_endpoint: read.dims.keeps(Facet::Endpoints).then_some(most_used),
        filter: read.params.get("filter").map(str::to_owned),
    };
    read.log("performance");
    json(app, StatusCode::OK, &body)
}

// ---------------------------------------------------------------- exports
