//! Analytics routes. Every read is served from rollups (see `store::usage`): the items read
//! depend on the period and the distinct providers, models and endpoints, never on the number
//! of events. Exports are the exception by nature: they page through the raw events.

pub mod ingest;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request};
use serde::Serialize;
use serde_json::{json, Value};

use crate::analytics::histogram::Histogram;
use crate::analytics::money::{Fixed, Usd2, Usd4};
use crate::analytics::period::{cover, Bucket, Cover, Granularity, Period};
use crate::analytics::rollup::{Counters, Rollup};
use crate::analytics::store::{Scope, Stats, UsageStore};
use crate::platform::app::App;
use crate::platform::auth::Identity;
use crate::platform::cursor;
use crate::platform::domain::{Role, UserId};
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{authenticate, json, HttpResponse, Params};

const PERIOD_PARAMS: [&str; 5] = ["days", "start", "end", "tz", "user_id"];

struct Read {
    store: UsageStore,
    period: Period,
    params: Params,
    caller: Identity,
}

fn allowed<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    PERIOD_PARAMS
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

async fn open_read(app: &App, req: &Request, extra: &[&str]) -> Result<Read, ApiError> {
    let caller = authenticate(app, req)?;
    let params = Params::parse(req, &allowed(extra))?;
    let period = Period::parse(
        params.get("days"),
        params.get("start"),
        params.get("end"),
        params.get("tz"),
        Utc::now(),
    )?;
    let r = &app.config().resources;
    let store = UsageStore::new(
        app.dynamodb().await.clone(),
        r.events_table.as_deref(),
        r.rollups_table.as_deref(),
        app.config().retention_days,
    );
    Ok(Read {
        store,
        period,
        params,
        caller,
    })
}

impl Read {
    fn user(&self) -> Result<UserId, ApiError> {
        self.params.target_user(&self.caller)
    }

    /// The rollups for `buckets` (or the whole period), and each bucket's sum.
    async fn load(
        &self,
        scope: &Scope,
        buckets: &[Bucket],
    ) -> Result<(Rollup, Vec<Rollup>, BTreeMap<String, Rollup>), ApiError> {
        let covers: Vec<Cover> = buckets.iter().map(|b| cover(b.start, b.end)).collect();
        let mut all = Cover::default();
        for c in &covers {
            all.union(c);
        }
        let items = self.store.rollups(scope, &all).await?;
        let mut sums = vec![];
        let mut total = Rollup::default();
        for c in &covers {
            let mut sum = Rollup::default();
            for key in c.keys() {
                if let Some(r) = items.get(&key) {
                    sum.merge(r);
                }
            }
            total.merge(&sum);
            sums.push(sum);
        }
        Ok((total, sums, items))
    }

    /// The whole period as one bucket.
    fn whole(&self) -> Vec<Bucket> {
        vec![Bucket {
            label: String::new(),
            start: self.period.start,
            end: self.period.end,
        }]
    }

    fn log(&self, route: &str) {
        let Stats {
            items_read,
            read_units,
            ..
        } = self.store.stats();
        tracing::info!(route, items_read, read_units, "analytics read");
    }
}

#[derive(Serialize)]
struct PeriodOut {
    start: String,
    end: String,
    days: i64,
    timezone: String,
}

fn period_json(p: &Period) -> PeriodOut {
    PeriodOut {
        start: p.tz.local(p.start).to_rfc3339(),
        end: p.tz.local(p.end).to_rfc3339(),
        days: p.days,
        timezone: p.tz.name().to_owned(),
    }
}

#[derive(Serialize)]
struct Usage3 {
    requests: i64,
    credits: i64,
    cost_usd: Usd2,
}

fn usage3(c: &Counters) -> Usage3 {
    Usage3 {
        requests: c.requests,
        credits: c.credits,
        cost_usd: Usd2(c.cost_micros),
    }
}

fn per_request(total: i64, requests: i64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        total as f64 / requests as f64
    }
}

fn avg_micros(total: i64, requests: i64) -> i64 {
    if requests == 0 {
        0
    } else {
        (total + requests / 2) / requests
    }
}

fn by_provider(r: &Rollup) -> BTreeMap<String, Usage3> {
    r.providers
        .iter()
        .map(|(p, c)| (p.clone(), usage3(c)))
        .collect()
}

/// Keyed `provider/model`, as seed 000 writes them.
fn by_model(r: &Rollup) -> BTreeMap<String, Usage3> {
    r.models
        .iter()
        .map(|((p, m), c)| (model_key(p, m), usage3(c)))
        .collect()
}

fn model_key(provider: &str, model: &str) -> String {
    format!("{provider}/{model}")
}

// ---------------------------------------------------------------- summary

#[derive(Serialize)]
struct UsageOut {
    total_requests: i64,
    successful_requests: i64,
    failed_requests: i64,
    error_rate: Fixed,
    total_credits: i64,
    total_cost_usd: Usd2,
    avg_credits_per_request: Fixed,
    avg_cost_per_request_usd: Usd4,
    input_tokens: i64,
    output_tokens: i64,
}

#[derive(Serialize)]
struct PaymentsOut {
    total_paid_usd: Usd2,
    total_credits_purchased: i64,
    payment_count: i64,
    failed_payments: i64,
    refunds: i64,
    refunded_usd: Usd2,
}

#[derive(Serialize)]
struct SummaryOut {
    period: PeriodOut,
    usage: UsageOut,
    payments: PaymentsOut,
    credit_balance: i64,
    by_provider: BTreeMap<String, Usage3>,
    by_model: BTreeMap<String, Usage3>,
    by_day: BTreeMap<String, Usage3>,
}

http_handler!(
    /// `GET /api/v1/analytics/summary`
    summary => get_summary
);

async fn get_summary(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &[]).await?;
    let user = read.user()?;
    let days = read.period.buckets(Granularity::Day);
    let (total, per_day, _) = read.load(&Scope::User(user.clone()), &days).await?;
    let (used, purchased, refunded) = read.store.credit_totals(&user).await?;
    let t = &total.total;
    let body = SummaryOut {
        period: period_json(&read.period),
        usage: UsageOut {
            total_requests: t.requests,
            successful_requests: t.requests - t.errors,
            failed_requests: t.errors,
            error_rate: Fixed(per_request(t.errors, t.requests), 4),
            total_credits: t.credits,
            total_cost_usd: Usd2(t.cost_micros),
            avg_credits_per_request: Fixed(per_request(t.credits, t.requests), 2),
            avg_cost_per_request_usd: Usd4(avg_micros(t.cost_micros, t.requests)),
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
        },
        payments: PaymentsOut {
            total_paid_usd: Usd2(total.payments.paid_micros),
            total_credits_purchased: total.payments.credits_purchased,
            payment_count: total.payments.succeeded,
            failed_payments: total.payments.failed,
            refunds: total.payments.refunds,
            refunded_usd: Usd2(total.payments.refunded_micros),
        },
        credit_balance: purchased - refunded - used,
        by_provider: by_provider(&total),
        by_model: by_model(&total),
        by_day: days
            .iter()
            .zip(&per_day)
            .filter(|(_, r)| r.total.requests > 0)
            .map(|(b, r)| (b.label.clone(), usage3(&r.total)))
            .collect(),
    };
    read.log("summary");
    json(app, StatusCode::OK, &body)
}

// ---------------------------------------------------------------- time series

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
    let (_, sums, _) = read.load(&Scope::User(user), &buckets).await?;
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

#[derive(Serialize)]
struct ProviderOut {
    provider: String,
    requests: i64,
    credits: i64,
    cost_usd: Usd2,
    cost_percentage: Fixed,
    avg_cost_per_request: Usd4,
    models_used: Vec<String>,
}

#[derive(Serialize)]
struct ProvidersOut {
    period_days: i64,
    providers: Vec<ProviderOut>,
    total_providers: usize,
}

#[derive(Serialize)]
struct ModelOut {
    model: String,
    provider: String,
    model_name: String,
    requests: i64,
    credits: i64,
    cost_usd: Usd2,
    avg_cost_per_request: Usd4,
}

#[derive(Serialize)]
struct TopModelsOut {
    period_days: i64,
    limit: usize,
    models: Vec<ModelOut>,
    total: usize,
}

#[derive(Serialize)]
struct LatencyOut {
    p50: Option<Fixed>,
    p95: Option<Fixed>,
    p99: Option<Fixed>,
    avg: Option<Fixed>,
}

/// One model's or endpoint's figures; exactly one of `model` / `endpoint` is set.
#[derive(Serialize)]
struct DimensionRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    requests: i64,
    errors: i64,
    error_rate: Fixed,
    credits: i64,
    cost_usd: Usd4,
    latency_ms: LatencyOut,
}

#[derive(Serialize)]
struct EndpointsOut {
    period_days: i64,
    endpoints: Vec<DimensionRow>,
    total_endpoints: usize,
}

http_handler!(
    /// `GET /api/v1/analytics/providers`
    providers => get_providers
);

async fn get_providers(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &[]).await?;
    let (total, _, _) = read.load(&Scope::User(read.user()?), &read.whole()).await?;
    let mut list: Vec<(&String, &Counters)> = total.providers.iter().collect();
    list.sort_by(|a, b| {
        b.1.cost_micros
            .cmp(&a.1.cost_micros)
            .then(b.1.requests.cmp(&a.1.requests))
            .then(a.0.cmp(b.0))
    });
    let all_cost = total.total.cost_micros;
    let providers: Vec<ProviderOut> = list
        .iter()
        .map(|(p, c)| ProviderOut {
            provider: (*p).clone(),
            requests: c.requests,
            credits: c.credits,
            cost_usd: Usd2(c.cost_micros),
            cost_percentage: Fixed(
                if all_cost == 0 {
                    0.0
                } else {
                    100.0 * c.cost_micros as f64 / all_cost as f64
                },
                2,
            ),
            avg_cost_per_request: Usd4(avg_micros(c.cost_micros, c.requests)),
            models_used: total
                .models
                .keys()
                .filter(|(mp, _)| mp == *p)
                .map(|(_, m)| m.clone())
                .collect(),
        })
        .collect();
    let body = ProvidersOut {
        period_days: read.period.days,
        total_providers: providers.len(),
        providers,
    };
    read.log("providers");
    json(app, StatusCode::OK, &body)
}

http_handler!(
    /// `GET /api/v1/analytics/top-models?limit=1..100`
    top_models => get_top_models
);

async fn get_top_models(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &["limit"]).await?;
    let limit = read.params.integer("limit", 1, 100)?.unwrap_or(10) as usize;
    let (total, _, _) = read.load(&Scope::User(read.user()?), &read.whole()).await?;
    let mut list: Vec<(&(String, String), &Counters)> = total.models.iter().collect();
    list.sort_by(|a, b| {
        b.1.cost_micros
            .cmp(&a.1.cost_micros)
            .then(b.1.requests.cmp(&a.1.requests))
            .then(a.0.cmp(b.0))
    });
    let models: Vec<ModelOut> = list
        .iter()
        .take(limit)
        .map(|((p, m), c)| ModelOut {
            model: model_key(p, m),
            provider: p.clone(),
            model_name: m.clone(),
            requests: c.requests,
            credits: c.credits,
            cost_usd: Usd2(c.cost_micros),
            avg_cost_per_request: Usd4(avg_micros(c.cost_micros, c.requests)),
        })
        .collect();
    let body = TopModelsOut {
        period_days: read.period.days,
        limit,
        models,
        total: list.len(),
    };
    read.log("top-models");
    json(app, StatusCode::OK, &body)
}

fn latency(h: Option<&Histogram>, c: &Counters) -> LatencyOut {
    let q = |p: f64| h.and_then(|h| h.quantile(p)).map(|v| Fixed(v, 1));
    LatencyOut {
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
        avg: (c.requests > 0).then(|| Fixed(c.latency_ms as f64 / c.requests as f64, 1)),
    }
}

fn dimension_row(
    model: Option<String>,
    endpoint: Option<String>,
    c: &Counters,
    h: Option<&Histogram>,
) -> DimensionRow {
    DimensionRow {
        model,
        endpoint,
        requests: c.requests,
        errors: c.errors,
        error_rate: Fixed(per_request(c.errors, c.requests), 4),
        credits: c.credits,
        cost_usd: Usd4(c.cost_micros),
        latency_ms: latency(h, c),
    }
}

http_handler!(
    /// `GET /api/v1/analytics/endpoints`
    endpoints => get_endpoints
);

async fn get_endpoints(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &[]).await?;
    let (total, _, _) = read.load(&Scope::User(read.user()?), &read.whole()).await?;
    let mut list: Vec<(&String, &Counters)> = total.endpoints.iter().collect();
    list.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
    let rows: Vec<DimensionRow> = list
        .iter()
        .map(|(e, c)| dimension_row(None, Some((*e).clone()), c, total.endpoint_latency.get(*e)))
        .collect();
    let body = EndpointsOut {
        period_days: read.period.days,
        endpoints: rows,
        total_endpoints: list.len(),
    };
    read.log("endpoints");
    json(app, StatusCode::OK, &body)
}

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
    by_model: Vec<DimensionRow>,
    by_endpoint: Vec<DimensionRow>,
    peak_hour: Option<PeakHour>,
    most_used_endpoint: Option<MostUsed>,
}

http_handler!(
    /// `GET /api/v1/analytics/performance`
    performance => get_performance
);

async fn get_performance(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &[]).await?;
    let (total, _, items) = read.load(&Scope::User(read.user()?), &read.whole()).await?;
    let t = &total.total;
    // Requests per local hour of day: each stored UTC hour moved into the period's zone.
    let mut by_local_hour = [0i64; 24];
    for (key, r) in &items {
        let Ok(date) = NaiveDate::parse_from_str(&key[..10.min(key.len())], "%Y-%m-%d") else {
            continue;
        };
        for (h, n) in &r.hour_of_day {
            let instant = date.and_hms_opt(u32::from(*h), 0, 0).map(|d| d.and_utc());
            if let Some(instant) = instant {
                if instant >= read.period.start && instant < read.period.end {
                    by_local_hour[read.period.tz.local(instant).hour() as usize] += n;
                }
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
        by_model: models
            .iter()
            .map(|((p, m), c)| {
                dimension_row(
                    Some(model_key(p, m)),
                    None,
                    c,
                    total.model_latency.get(&(p.clone(), m.clone())),
                )
            })
            .collect(),
        by_endpoint: endpoints
            .iter()
            .map(|(e, c)| {
                dimension_row(None, Some((*e).clone()), c, total.endpoint_latency.get(*e))
            })
            .collect(),
        peak_hour: peak,
        most_used_endpoint: most_used,
    };
    read.log("performance");
    json(app, StatusCode::OK, &body)
}

// ---------------------------------------------------------------- exports

/// Rows per export page: well under Lambda's 6 MB response limit and its timeout.
pub const EXPORT_PAGE_ROWS: i64 = 5000;

#[derive(Serialize, serde::Deserialize)]
struct ExportPosition {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    after: String,
}

struct ExportRow {
    event_id: String,
    at: DateTime<Utc>,
    provider: String,
    model: String,
    endpoint: String,
    status_code: i64,
    latency_ms: i64,
    input_tokens: i64,
    output_tokens: i64,
    credits: i64,
    cost_micros: i64,
    description: String,
}

fn row_of(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Option<ExportRow> {
    let s = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let n = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    if s("kind") != "request" {
        return None;
    }
    Some(ExportRow {
        event_id: s("event_id"),
        at: DateTime::parse_from_rfc3339(&s("ts"))
            .ok()?
            .with_timezone(&Utc),
        provider: s("provider"),
        model: s("model"),
        endpoint: s("endpoint"),
        status_code: n("status_code"),
        latency_ms: n("latency_ms"),
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        credits: n("credits"),
        cost_micros: n("cost_micros"),
        description: s("description"),
    })
}

struct ExportPage {
    period: Period,
    rows: Vec<ExportRow>,
    next: Option<String>,
}

async fn export_page(app: &App, req: &Request) -> Result<ExportPage, ApiError> {
    let mut read = open_read(app, req, &["cursor", "limit"]).await?;
    let user = read.user()?;
    let limit = read
        .params
        .integer("limit", 1, EXPORT_PAGE_ROWS)?
        .unwrap_or(EXPORT_PAGE_ROWS) as usize;
    let after = match read.params.get("cursor") {
        None => None,
        Some(c) => {
            if ["days", "start", "end"]
                .iter()
                .any(|p| read.params.get(p).is_some())
            {
                return Err(ApiError::invalid(
                    "cursor",
                    "a cursor already fixes the period; send it without days, start or end",
                ));
            }
            let pos: ExportPosition =
                cursor::open(&app.config().cursor_secret, "export", &user, c)?;
            read.period.start = pos.start;
            read.period.end = pos.end;
            Some(pos.after)
        }
    };
    let (rows, position) = read
        .store
        .events_page(
            &user,
            read.period.start,
            read.period.end,
            after.as_deref(),
            limit,
            row_of,
        )
        .await?;
    let next = match position {
        None => None,
        Some(after) => Some(cursor::seal(
            &app.config().cursor_secret,
            "export",
            &user,
            &ExportPosition {
                start: read.period.start,
                end: read.period.end,
                after,
            },
        )?),
    };
    read.log("export");
    Ok(ExportPage {
        rows,
        next,
        period: read.period,
    })
}

/// A cell a spreadsheet would run as a formula gets a leading `'` (OWASP CSV injection).
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

fn with_next(mut response: HttpResponse, req: &Request, next: Option<&str>) -> HttpResponse {
    if let Some(c) = next {
        let path = req.uri().path().to_owned();
        if let Ok(v) = HeaderValue::from_str(c) {
            response.headers_mut().insert("x-next-cursor", v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{path}?cursor={c}>; rel=\"next\"")) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    response
}

http_handler!(
    /// `GET /api/v1/analytics/export/csv` — one page of up to 5,000 rows as a complete CSV file;
    /// `X-Next-Cursor` / `Link: rel="next"` give the next page until there is none.
    export_csv => get_export_csv
);

async fn get_export_csv(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let page = export_page(app, req).await?;
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(vec![]);
    let fail = |e: csv::Error| ApiError::Unexpected(e.into());
    w.write_record([
        "Date",
        "Time",
        "Provider",
        "Model",
        "Credits",
        "Cost (USD)",
        "Description",
    ])
    .map_err(fail)?;
    for r in &page.rows {
        let local = page.period.tz.local(r.at);
        w.write_record([
            local.format("%Y-%m-%d").to_string(),
            local.format("%H:%M:%S").to_string(),
            neutralise(&r.provider),
            neutralise(&r.model),
            r.credits.to_string(),
            crate::analytics::money::format_usd(r.cost_micros, 4),
            neutralise(&r.description),
        ])
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("csv: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| ApiError::Unexpected(e.into()))?;
    let mut response = json(app, StatusCode::OK, &Value::Null)?;
    *response.body_mut() = Body::Text(text);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"usage_{}days.csv\"",
        page.period.days
    )) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(with_next(response, req, page.next.as_deref()))
}

#[derive(Serialize)]
struct ExportRowOut<'a> {
    event_id: &'a str,
    timestamp: String,
    date: String,
    time: String,
    provider: &'a str,
    model: &'a str,
    endpoint: &'a str,
    status_code: i64,
    latency_ms: i64,
    input_tokens: i64,
    output_tokens: i64,
    credits: i64,
    cost_usd: Usd4,
    description: &'a str,
}

#[derive(Serialize)]
struct ExportJsonOut<'a> {
    period: PeriodOut,
    rows: Vec<ExportRowOut<'a>>,
    next_cursor: Option<String>,
}

http_handler!(
    /// `GET /api/v1/analytics/export/json` — the same rows and pages as the CSV, as JSON.
    export_json => get_export_json
);

async fn get_export_json(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let page = export_page(app, req).await?;
    let rows: Vec<ExportRowOut> = page
        .rows
        .iter()
        .map(|r| {
            let local = page.period.tz.local(r.at);
            ExportRowOut {
                event_id: &r.event_id,
                timestamp: local.to_rfc3339(),
                date: local.format("%Y-%m-%d").to_string(),
                time: local.format("%H:%M:%S").to_string(),
                provider: &r.provider,
                model: &r.model,
                endpoint: &r.endpoint,
                status_code: r.status_code,
                latency_ms: r.latency_ms,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                credits: r.credits,
                cost_usd: Usd4(r.cost_micros),
                description: &r.description,
            }
        })
        .collect();
    let body = ExportJsonOut {
        period: period_json(&page.period),
        rows,
        next_cursor: page.next.clone(),
    };
    let response = json(app, StatusCode::OK, &body)?;
    Ok(with_next(response, req, page.next.as_deref()))
}

// ---------------------------------------------------------------- admin

/// Active users and top users come from the day index of user rollups, i.e. whole UTC days;
/// the response names the days it used.
fn utc_days(p: &Period) -> Vec<NaiveDate> {
    let mut d = p.start.date_naive();
    let mut out = vec![];
    while d
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc() < p.end)
        .unwrap_or(false)
    {
        out.push(d);
        d += Duration::days(1);
    }
    out
}

#[derive(Serialize)]
struct AdminTotals {
    requests: i64,
    errors: i64,
    error_rate: Fixed,
    credits: i64,
    cost_usd: Usd2,
    input_tokens: i64,
    output_tokens: i64,
    payments: i64,
    paid_usd: Usd2,
    refunded_usd: Usd2,
}

#[derive(Serialize)]
struct AdminOverviewOut {
    period: PeriodOut,
    totals: AdminTotals,
    /// Counts only, so plain JSON is fine here.
    active_users: Value,
    by_provider: BTreeMap<String, Usage3>,
    by_model: BTreeMap<String, Usage3>,
}

#[derive(Serialize)]
struct TopUser<'a> {
    user_id: &'a str,
    requests: i64,
    cost_usd: Usd2,
}

#[derive(Serialize)]
struct TopUsersOut<'a> {
    period: PeriodOut,
    basis: &'static str,
    by: &'a str,
    limit: usize,
    users: Vec<TopUser<'a>>,
    total_users: usize,
}

http_handler!(
    /// `GET /api/v1/admin/analytics/overview` (admin)
    admin_overview => get_admin_overview
);

async fn get_admin_overview(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &[]).await?;
    read.caller.require_any(&[Role::Admin])?;
    if read.params.get("user_id").is_some() {
        return Err(ApiError::invalid(
            "user_id",
            "the overview is system-wide; use the user routes with user_id",
        ));
    }
    let (total, _, _) = read.load(&Scope::System, &read.whole()).await?;
    let days = utc_days(&read.period);
    let active = read.store.active_users(&days).await?;
    let mut all_users = BTreeSet::new();
    let mut weekly: BTreeMap<NaiveDate, BTreeSet<&str>> = BTreeMap::new();
    let mut monthly: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut daily = vec![];
    for (day, users) in &active {
        use chrono::Datelike;
        let monday = *day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
        for (u, _, _) in users {
            all_users.insert(u.as_str());
            weekly.entry(monday).or_default().insert(u.as_str());
            monthly
                .entry(day.format("%Y-%m").to_string())
                .or_default()
                .insert(u.as_str());
        }
        daily.push(json!({"date": day.to_string(), "users": users.len()}));
    }
    let t = &total.total;
    let body = AdminOverviewOut {
        period: period_json(&read.period),
        totals: AdminTotals {
            requests: t.requests,
            errors: t.errors,
            error_rate: Fixed(per_request(t.errors, t.requests), 4),
            credits: t.credits,
            cost_usd: Usd2(t.cost_micros),
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            payments: total.payments.succeeded,
            paid_usd: Usd2(total.payments.paid_micros),
            refunded_usd: Usd2(total.payments.refunded_micros),
        },
        active_users: json!({
            "basis": "utc_days",
            "from": days.first().map(|d| d.to_string()),
            "to": days.last().map(|d| d.to_string()),
            "distinct": all_users.len(),
            "daily": daily,
            "weekly": weekly.iter().map(|(w, u)| json!({"week": w.to_string(), "users": u.len()})).collect::<Vec<_>>(),
            "monthly": monthly.iter().map(|(m, u)| json!({"month": m, "users": u.len()})).collect::<Vec<_>>(),
        }),
        by_provider: by_provider(&total),
        by_model: by_model(&total),
    };
    read.log("admin-overview");
    json(app, StatusCode::OK, &body)
}

http_handler!(
    /// `GET /api/v1/admin/analytics/top-users?by=cost|requests&limit=1..100` (admin)
    admin_top_users => get_admin_top_users
);

async fn get_admin_top_users(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let read = open_read(app, req, &["by", "limit"]).await?;
    read.caller.require_any(&[Role::Admin])?;
    if read.params.get("user_id").is_some() {
        return Err(ApiError::invalid(
            "user_id",
            "top-users ranks every user; user_id does not apply",
        ));
    }
    let by = match read.params.get("by").unwrap_or("cost") {
        b @ ("cost" | "requests") => b,
        other => {
            return Err(ApiError::invalid(
                "by",
                format!("by must be cost or requests, not {other:?}"),
            ))
        }
    };
    let limit = read.params.integer("limit", 1, 100)?.unwrap_or(10) as usize;
    let days = utc_days(&read.period);
    let active = read.store.active_users(&days).await?;
    let mut per_user: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for users in active.values() {
        for (u, requests, cost) in users {
            let e = per_user.entry(u.as_str()).or_default();
            e.0 += requests;
            e.1 += cost;
        }
    }
    let mut ranked: Vec<_> = per_user.into_iter().collect();
    ranked.sort_by(|a, b| {
        let key = |x: &(i64, i64)| if by == "cost" { (x.1, x.0) } else { (x.0, x.1) };
        key(&b.1).cmp(&key(&a.1)).then(a.0.cmp(b.0))
    });
    let users: Vec<TopUser> = ranked
        .iter()
        .take(limit)
        .map(|(u, (r, c))| TopUser {
            user_id: u,
            requests: *r,
            cost_usd: Usd2(*c),
        })
        .collect();
    let body = TopUsersOut {
        period: period_json(&read.period),
        basis: "utc_days",
        by,
        limit,
        users,
        total_users: ranked.len(),
    };
    read.log("admin-top-users");
    json(app, StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(neutralise(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(neutralise("gpt-4o"), "gpt-4o");
    }
}
