//! `GET analytics/anomalies` and `PUT analytics/anomalies/{id}`: the anomalies the hourly run
//! found for a user (an admin's view of any user with `user_id`, or of the platform's own with
//! `system=true`), newest first, and the user's
//! verdict on one — `{"expected": true}` quiets the same driver and metric for
//! `AnomalyQuietDays`, `false` lifts that.

use chrono::{Duration, Utc};
use http::StatusCode;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::analytics::anomaly::{Anomaly, Driver, Metric};
use crate::analytics::money::{Fixed, Usd2};
use crate::analytics::store::UsageStore;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{json, object_body, path_param, HttpResponse};

use super::forecast::subject;

const MAX_BODY_BYTES: usize = 1024;
const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 50;

async fn store(app: &App) -> Result<UsageStore, ApiError> {
    let r = &app.config().resources;
    Ok(UsageStore::new(
        app.dynamodb().await.clone(),
        None,
        Some(require(&r.rollups_table, "ROLLUPS_TABLE")?),
        app.config().retention_days,
    ))
}

fn stamp(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An anomaly as the API shows it: money in USD, counts whole, rates as fractions.
fn view(a: &Anomaly) -> Value {
    let figure = |v: f64| match a.metric {
        Metric::Cost => json!(Usd2(v.round() as i64)),
        Metric::Requests => json!(v.round() as i64),
        Metric::ErrorRate => json!(Fixed(v, 4)),
    };
    let mut out = json!({
        "id": a.id,
        "window": a.window.as_str(),
        "window_start": stamp(a.window_start),
        "window_end": stamp(a.window_end),
        "metric": a.metric.as_str(),
        "observed": figure(a.observed),
        "usual": figure(a.usual),
        "score": Fixed(a.score, 1),
        "message": a.message,
        "detected_at": stamp(a.detected_at),
        "expected": a.expected,
        "verdict_at": a.verdict_at.map(stamp),
    });
    match &a.driver {
        Driver::All => out["driver"] = json!("all"),
        Driver::Model { provider, model } => {
            out["driver"] = json!("model");
            out["provider"] = json!(provider);
            out["model"] = json!(model);
        }
        Driver::Endpoint { endpoint } => {
            out["driver"] = json!("endpoint");
            out["endpoint"] = json!(endpoint);
        }
    }
    if let Some(e) = &a.endpoint {
        out["endpoint"] = json!(e);
    }
    out
}

http_handler!(
    /// `GET /api/v1/analytics/anomalies?limit=&user_id=&system=true`
    list => list_anomalies
);

async fn list_anomalies(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (owner, params) = subject(app, req, &["limit"])?;
    let limit = params.count("limit", 1, MAX_LIMIT, DEFAULT_LIMIT)?;
    let list = store(app).await?.anomalies(&owner, limit).await?;
    let views: Vec<Value> = list.iter().map(view).collect();
    json(
        app,
        StatusCode::OK,
        &json!({"total": views.len(), "anomalies": views}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Verdict {
    expected: bool,
}

http_handler!(
    /// `PUT /api/v1/analytics/anomalies/{id}` with `{"expected": true|false}`
    put => put_verdict
);

async fn put_verdict(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (owner, _) = subject(app, req, &[])?;
    let id = path_param(req, "id")?;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ApiError::NotFound("anomaly not found".into()));
    }
    let verdict: Verdict = object_body(req, MAX_BODY_BYTES)?;
    let store = store(app).await?;
    let Some(mut anomaly) = store.anomaly(&owner, &id).await? else {
        return Err(ApiError::NotFound("anomaly not found".into()));
    };
    let now = Utc::now();
    anomaly.expected = Some(verdict.expected);
    anomaly.verdict_at = Some(now);
    let until = now + Duration::days(app.config().anomaly.quiet_days);
    store.save_verdict(&owner, &anomaly, until).await?;
    let mut body = view(&anomaly);
    body["quiet_until"] = if verdict.expected {
        json!(stamp(until))
    } else {
        Value::Null
    };
    json(app, StatusCode::OK, &body)
}
