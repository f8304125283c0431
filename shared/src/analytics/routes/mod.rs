//! Analytics routes. Every read is served from rollups (see `store::usage`): the items read
//! depend on the period and the distinct providers, models and endpoints, never on the number
//! of events. Exports are the exception by nature: they page through the raw events.

mod admin;
pub mod alerts;
pub mod anomalies;
mod breakdown;
mod breakdowns;
pub mod budgets;
mod export;
pub mod forecast;
pub mod ingest;
mod performance;
pub mod report;
mod series;
mod summary;

pub use admin::{admin_overview, admin_top_users};
pub use breakdown::breakdown;
pub use breakdowns::{endpoints, providers, top_models};
pub use export::{export_csv, export_json, neutralise, EXPORT_PAGE_ROWS};
pub use performance::performance;
pub use series::time_series;
pub use summary::summary;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request};
use serde::Serialize;
use serde_json::{json, Value};

use crate::analytics::dimension::{Dimension, Dims, Facet, Groups, DEFAULT_GROUPS, MAX_GROUPS};
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
/// What a route that slices by dimension also takes.
const FILTER: &str = "filter";
const GROUPING: [&str; 3] = ["filter", "group_by", "limit"];

struct Read {
    store: UsageStore,
    period: Period,
    params: Params,
    caller: Identity,
    /// `filter` and `group_by`, where the route takes them (see `dimension`).
    dims: Dims,
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
    let dims = Dims::parse(
        params.get("filter"),
        params.get("group_by"),
        &app.config().tag_keys,
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
        dims,
    })
}

/// What one read loaded: the period's sum, each bucket's sum, and the rollup items by key.
struct Loaded {
    total: Rollup,
    per_bucket: Vec<Rollup>,
    items: BTreeMap<String, Rollup>,
}

impl Read {
    fn user(&self) -> Result<UserId, ApiError> {
        self.params.target_user(&self.caller)
    }

    /// The rollups for `buckets` (or the whole period), and each bucket's sum, cut to the
    /// read's `filter`.
    async fn load(&self, scope: &Scope, buckets: &[Bucket]) -> Result<Loaded, ApiError> {
        let loaded = load(&self.store, scope, buckets).await?;
        if self.dims.filter.is_none() {
            return Ok(loaded);
        }
        Ok(Loaded {
            total: self.dims.apply(&loaded.total),
            per_bucket: loaded
                .per_bucket
                .iter()
                .map(|r| self.dims.apply(r))
                .collect(),
            items: loaded
                .items
                .iter()
                .map(|(k, r)| (k.clone(), self.dims.apply(r)))
                .collect(),
        })
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

/// The rollups for `buckets` from `store`, and each bucket's sum.
async fn load(store: &UsageStore, scope: &Scope, buckets: &[Bucket]) -> Result<Loaded, ApiError> {
    let covers: Vec<Cover> = buckets.iter().map(|b| cover(b.start, b.end)).collect();
    let mut all = Cover::default();
    for c in &covers {
        all.union(c);
    }
    let items = store.rollups(scope, &all).await?;
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
    Ok(Loaded {
        total,
        per_bucket: sums,
        items,
    })
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

/// `part` as a percentage of `all` spend, two decimals (0 when nothing was spent).
fn cost_share(part: i64, all: i64) -> Fixed {
    Fixed(
        if all == 0 {
            0.0
        } else {
            100.0 * part as f64 / all as f64
        },
        2,
    )
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

/// Keyed `provider/model`, as the API documents them.
fn by_model(r: &Rollup) -> BTreeMap<String, Usage3> {
    r.models
        .iter()
        .map(|((p, m), c)| (model_key(p, m), usage3(c)))
        .collect()
}

fn model_key(provider: &str, model: &str) -> String {
    format!("{provider}/{model}")
}

// ---------------------------------------------------------------- groups

/// One value of a `group_by` dimension (or `other`, `untagged`) with its usage.
#[derive(Serialize)]
struct GroupOut {
    key: String,
    requests: i64,
    errors: i64,
    error_rate: Fixed,
    credits: i64,
    cost_usd: Usd4,
    /// Share of the period's (filtered) cost, in percent.
    cost_percentage: Fixed,
    /// How many values `other` sums (absent on named groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<usize>,
}

fn group_out(key: &str, c: &Counters, all_cost: i64, values: Option<usize>) -> GroupOut {
    GroupOut {
        key: key.to_owned(),
        requests: c.requests,
        errors: c.errors,
        error_rate: Fixed(per_request(c.errors, c.requests), 4),
        credits: c.credits,
        cost_usd: Usd4(c.cost_micros),
        cost_percentage: cost_share(c.cost_micros, all_cost),
        values,
    }
}

/// The named groups, then `other` and `untagged` when they hold usage: what a grouped answer
/// lists, so its rows add up to the period's total (in a zone off the hour, to its attributed
/// breakdown: see `period::cover`).
fn groups_out(g: &Groups, all_cost: i64) -> Vec<GroupOut> {
    let mut rows: Vec<GroupOut> = g
        .top
        .iter()
        .map(|(k, c)| group_out(k, c, all_cost, None))
        .collect();
    if let Some((n, c)) = &g.other {
        rows.push(group_out("other", c, all_cost, Some(*n)));
    }
    if let Some(c) = g.untagged.filter(|c| c.requests != 0) {
        rows.push(group_out("untagged", &c, all_cost, None));
    }
    rows
}

impl Read {
    /// How many groups come back by name (`limit`, default 10).
    fn group_limit(&self) -> Result<usize, ApiError> {
        Ok(self
            .params
            .integer("limit", 1, MAX_GROUPS as i64)?
            .map(|n| n as usize)
            .unwrap_or(DEFAULT_GROUPS))
    }
}

// ---------------------------------------------------------------- summary

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
