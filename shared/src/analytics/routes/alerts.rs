//! `GET /api/v1/alerts/rules`, `PUT|DELETE /api/v1/alerts/rules/{id}`: a user's metric alert
//! rules (an admin's for any user with `user_id`); `POST /api/v1/alerts/rules/preview`: what a
//! rule would have sent over the last 90 days; `GET /api/v1/alerts`: what fired.

use chrono::{DateTime, Duration, DurationRound, Utc};
use http::StatusCode;
use lambda_http::Request;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::analytics::alert_rule::{
    percent_number, Rule, RuleKind, Sample, Status, Transition, MAX_LATENCY_MS, MAX_MIN_REQUESTS,
    MAX_PERCENT_BP, MAX_RULES, MAX_WINDOW_HOURS,
};
use crate::analytics::budget::Filter;
use crate::analytics::ingest::rollups_store;
use crate::analytics::money::parse_usd;
use crate::analytics::period::cover;
use crate::analytics::routes::budgets::{filter_of, item_id, owner_with};
use crate::analytics::store::{Registry, Scope, UsageStore};
use crate::platform::app::App;
use crate::platform::cursor;
use crate::platform::dynamodb::StoreError;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{json, no_content, object_body, request_subject, HttpResponse};
use crate::seam::alert_rules as seam;

const MAX_BODY_BYTES: usize = 4 * 1024;
/// Rounds of read-modify-write when evaluations or other edits change the rules meanwhile.
const MAX_ROUNDS: usize = 8;
/// How far back a preview looks.
pub const PREVIEW_DAYS: i64 = 90;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    threshold_percent: Option<serde_json::Number>,
    #[serde(default)]
    threshold_ms: Option<i64>,
    #[serde(default)]
    window_hours: Option<i64>,
    #[serde(default)]
    min_requests: Option<i64>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
}

/// A rule's definition from a body; each problem a 400 naming its field.
struct Definition {
    kind: RuleKind,
    limit: i64,
    window_hours: u32,
    min_requests: i64,
    filter: Filter,
}

/// A percentage with at most two decimals, in hundredths of a percent.
fn percent_bp(field: &str, n: &serde_json::Number) -> Result<i64, ApiError> {
    let micros = parse_usd(n, 1_000_000)
        .map_err(|why| ApiError::invalid(field, format!("{field} {why}")))?;
    if micros % 10_000 != 0 {
        return Err(ApiError::invalid(
            field,
            format!("{field} takes at most two decimals"),
        ));
    }
    Ok(micros / 10_000)
}

fn definition(body: PutBody) -> Result<Definition, ApiError> {
    let raw_kind = body
        .kind
        .ok_or_else(|| ApiError::invalid("kind", "kind is required"))?;
    let kind = RuleKind::parse(&raw_kind).ok_or_else(|| {
        ApiError::invalid(
            "kind",
            format!("kind must be error_rate, latency_p95 or requests_drop, not {raw_kind:?}"),
        )
    })?;
    let limit = match kind {
        RuleKind::ErrorRate | RuleKind::RequestsDrop => {
            if body.threshold_ms.is_some() {
                return Err(ApiError::invalid(
                    "threshold_ms",
                    format!("a {} rule takes threshold_percent", kind.as_str()),
                ));
            }
            let n = body.threshold_percent.ok_or_else(|| {
                ApiError::invalid("threshold_percent", "threshold_percent is required")
            })?;
            let bp = percent_bp("threshold_percent", &n)?;
            if bp <= 0 || bp > MAX_PERCENT_BP {
                return Err(ApiError::invalid(
                    "threshold_percent",
                    format!("threshold_percent must be above 0 and at most 100, not {n}"),
                ));
            }
            bp
        }
        RuleKind::LatencyP95 => {
            if body.threshold_percent.is_some() {
                return Err(ApiError::invalid(
                    "threshold_percent",
                    "a latency_p95 rule takes threshold_ms",
                ));
            }
            let ms = body
                .threshold_ms
                .ok_or_else(|| ApiError::invalid("threshold_ms", "threshold_ms is required"))?;
            if !(1..=MAX_LATENCY_MS).contains(&ms) {
                return Err(ApiError::invalid(
                    "threshold_ms",
                    format!("threshold_ms must be 1 to {MAX_LATENCY_MS}, not {ms}"),
                ));
            }
            ms
        }
    };
    let window_hours = match body.window_hours {
        None if kind == RuleKind::RequestsDrop => 24,
        None => 1,
        Some(h) => u32::try_from(h)
            .ok()
            .filter(|h| (1..=MAX_WINDOW_HOURS).contains(h))
            .ok_or_else(|| {
                ApiError::invalid(
                    "window_hours",
                    format!("window_hours must be 1 to {MAX_WINDOW_HOURS}, not {h}"),
                )
            })?,
    };
    let min_requests = match body.min_requests {
        None => kind.default_min_requests(),
        Some(m) if (1..=MAX_MIN_REQUESTS).contains(&m) => m,
        Some(m) => {
            return Err(ApiError::invalid(
                "min_requests",
                format!("min_requests must be 1 to {MAX_MIN_REQUESTS}, not {m}"),
            ))
        }
    };
    Ok(Definition {
        kind,
        limit,
        window_hours,
        min_requests,
        filter: filter_of(body.provider, body.model, body.endpoint)?,
    })
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[derive(Serialize)]
struct View {
    id: String,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold_ms: Option<i64>,
    window_hours: u32,
    min_requests: i64,
    #[serde(flatten)]
    filter: Filter,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_since: Option<String>,
    created_at: String,
    updated_at: String,
}

fn view(r: &Rule) -> View {
    let (threshold_percent, threshold_ms) = match r.kind {
        RuleKind::LatencyP95 => (None, Some(r.limit)),
        _ => (Some(percent_number(r.limit)), None),
    };
    View {
        id: r.id.clone(),
        kind: r.kind.as_str(),
        threshold_percent,
        threshold_ms,
        window_hours: r.window_hours,
        min_requests: r.min_requests,
        filter: r.filter.clone(),
        status: r.status.as_str(),
        status_since: r.decided_through.map(stamp),
        created_at: stamp(r.created_at),
        updated_at: stamp(r.updated_at),
    }
}

http_handler!(
    /// `GET /api/v1/alerts/rules` — the rules with their status.
    list_rules => get_rules
);

async fn get_rules(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = request_subject(app, req)?;
    let book = rollups_store(app).await?.alert_rules(&user, false).await?;
    let views: Vec<View> = book.rules.iter().map(view).collect();
    json(
        app,
        StatusCode::OK,
        &json!({"total": views.len(), "rules": views}),
    )
}

http_handler!(
    /// `PUT /api/v1/alerts/rules/{id}` — 201 created or 200 replaced; a replaced rule starts
    /// afresh (`ok`), so it notifies again if the new definition finds a breach.
    put_rule => put_rule_route
);

async fn put_rule_route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = request_subject(app, req)?;
    let id = item_id(req)?;
    let def = definition(object_body(req, MAX_BODY_BYTES)?)?;
    let store = rollups_store(app).await?;
    for _ in 0..MAX_ROUNDS {
        let book = store.alert_rules(&user, true).await?;
        let mut rules = book.rules;
        let now = Utc::now();
        let existing = rules.iter().position(|r| r.id == id);
        if existing.is_none() && rules.len() >= MAX_RULES {
            return Err(ApiError::Conflict(format!(
                "a user may have at most {MAX_RULES} alert rules; delete one first"
            )));
        }
        let rule = Rule {
            id: id.clone(),
            kind: def.kind,
            limit: def.limit,
            window_hours: def.window_hours,
            min_requests: def.min_requests,
            filter: def.filter.clone(),
            created_at: existing.map_or(now, |i| rules[i].created_at),
            updated_at: now,
            // A new rule's jobs must not share ids with a deleted one of the same name.
            rev: existing.map_or(now.timestamp_millis(), |i| rules[i].rev + 1),
            status: Status::Ok,
            epoch: 0,
            decided_through: None,
        };
        match existing {
            None => rules.push(rule.clone()),
            Some(i) => rules[i] = rule.clone(),
        }
        if store
            .save_alert_rules(
                &user,
                book.version,
                &rules,
                &book.pending,
                &[],
                Registry::Update,
            )
            .await?
        {
            let status = if existing.is_none() {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            return json(app, status, &view(&rule));
        }
    }
    Err(StoreError::Contention(format!("alert rules of {user}")).into())
}

http_handler!(
    /// `DELETE /api/v1/alerts/rules/{id}` — 204; the rule stops at once.
    delete_rule => delete_rule_route
);

async fn delete_rule_route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = request_subject(app, req)?;
    let id = item_id(req)?;
    let store = rollups_store(app).await?;
    for _ in 0..MAX_ROUNDS {
        let book = store.alert_rules(&user, true).await?;
        let mut rules = book.rules;
        let before = rules.len();
        rules.retain(|r| r.id != id);
        if rules.len() == before {
            return Err(ApiError::NotFound("alert rule not found".into()));
        }
        if store
            .save_alert_rules(
                &user,
                book.version,
                &rules,
                &book.pending,
                &[],
                Registry::Update,
            )
            .await?
        {
            return Ok(no_content(app));
        }
    }
    Err(StoreError::Contention(format!("alert rules of {user}")).into())
}

/// Hourly samples of `rule`'s scope over [from, to), oldest first (zero for idle hours): one
/// read of the hour rollups of the span, however many evaluations the preview replays.
async fn hourly_samples(
    store: &UsageStore,
    scope: &Scope,
    rule: &Rule,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Sample>, ApiError> {
    let mut c = cover(from, to);
    // Hour buckets only: a day bucket cannot be split into the hours a window slides over.
    let mut hours = vec![];
    let mut t = from;
    while t < to {
        hours.push(t);
        t += Duration::hours(1);
    }
    c.days.clear();
    c.hours = hours.clone();
    let buckets = store.rollups(scope, &c).await?;
    Ok(hours
        .iter()
        .map(|h| {
            buckets
                .get(&crate::analytics::period::hour_key(*h))
                .map(|r| rule.sample(r))
                .unwrap_or_default()
        })
        .collect())
}

/// Replays `rule` hour by hour over the last [`PREVIEW_DAYS`] days as the scheduled evaluation
/// would have run it, returning the transitions it would have notified.
pub async fn replay(
    store: &UsageStore,
    scope: &Scope,
    rule: &Rule,
    now: DateTime<Utc>,
) -> Result<(Vec<Transition>, usize), ApiError> {
    let end = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let first = end - Duration::days(PREVIEW_DAYS);
    let span = i64::from(rule.window_hours);
    let lead = if rule.kind == RuleKind::RequestsDrop {
        span + 7 * 24
    } else {
        span
    };
    let from = first - Duration::hours(lead);
    let samples = hourly_samples(store, scope, rule, from, end).await?;
    let at = |i: usize| from + Duration::hours(i as i64);
    let window_sum = |end_index: usize| {
        let mut s = Sample::default();
        for x in &samples[end_index.saturating_sub(span as usize)..end_index] {
            s.add(x);
        }
        s
    };
    let mut state = rule.clone();
    state.status = Status::Ok;
    state.epoch = 0;
    let mut out = vec![];
    let mut evaluations = 0;
    // Evaluation at the end of hour index `i - 1`: the window is samples[i - span .. i].
    for i in (lead as usize)..=samples.len() {
        evaluations += 1;
        let now_sample = window_sum(i);
        let before = (rule.kind == RuleKind::RequestsDrop).then(|| window_sum(i - 7 * 24));
        let m = state.judge(&now_sample, before.as_ref());
        if let Some(to) = state.transition(&m) {
            state.status = to;
            state.epoch += 1;
            state.decided_through = Some(at(i));
            out.push(Transition {
                rule: state.clone(),
                measure: m,
                window_start: at(i) - Duration::hours(span),
                window_end: at(i),
                at: at(i),
            });
        }
    }
    Ok((out, evaluations))
}

http_handler!(
    /// `POST /api/v1/alerts/rules/preview` — a rule's definition in the body (as for a PUT);
    /// nothing is stored.
    preview_rule => preview_rule_route
);

async fn preview_rule_route(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = request_subject(app, req)?;
    let def = definition(object_body(req, MAX_BODY_BYTES)?)?;
    let now = Utc::now();
    let rule = Rule {
        id: "preview".into(),
        kind: def.kind,
        limit: def.limit,
        window_hours: def.window_hours,
        min_requests: def.min_requests,
        filter: def.filter,
        created_at: now,
        updated_at: now,
        rev: 0,
        status: Status::Ok,
        epoch: 0,
        decided_through: None,
    };
    let store = rollups_store(app).await?;
    let (transitions, evaluations) = replay(&store, &Scope::User(user.clone()), &rule, now).await?;
    let notifications: Vec<Value> = transitions
        .iter()
        .map(|t| {
            let job = seam::job(&user, t);
            json!({
                "at": stamp(t.at),
                "type": job.kind,
                "title": job.title,
                "message": job.message,
                "data": job.data,
            })
        })
        .collect();
    let breaches = transitions
        .iter()
        .filter(|t| t.rule.status == Status::Breached)
        .count();
    let stats = store.stats();
    json(
        app,
        StatusCode::OK,
        &json!({
            "rule": view(&rule),
            "from": stamp(now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::days(PREVIEW_DAYS)),
            "to": stamp(now.duration_trunc(Duration::hours(1)).unwrap_or(now)),
            "evaluations": evaluations,
            "breaches": breaches,
            "recoveries": transitions.len() - breaches,
            "notifications": notifications,
            "items_read": stats.items_read,
        }),
    )
}

const HISTORY_CURSOR: &str = "alerts";
const SYSTEM_HISTORY_CURSOR: &str = "alerts-system";

#[derive(Serialize, Deserialize)]
struct Position {
    below: String,
}

http_handler!(
    /// `GET /api/v1/alerts` — newest first: every budget firing and rule transition; `limit`
    /// (1..=100, 50) and `cursor`; admins may add `user_id`, or `system=true` for the firings of
    /// the system-wide budgets.
    history => alert_history
);

async fn alert_history(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (owner, caller, params) = owner_with(app, req, &["limit", "cursor"])?;
    // A system history's cursor is sealed for the admin reading it.
    let (purpose, sealed_for) = match &owner {
        Scope::User(u) => (HISTORY_CURSOR, u.clone()),
        Scope::System => (SYSTEM_HISTORY_CURSOR, caller.user_id.clone()),
    };
    let limit = params.count("limit", 1, 100, 50)?;
    let below = params
        .get("cursor")
        .map(|raw| cursor::open::<Position>(&app.config().cursor_secret, purpose, &sealed_for, raw))
        .transpose()?;
    let page = rollups_store(app)
        .await?
        .alert_history(&owner, limit, below.as_ref().map(|p| p.below.as_str()))
        .await?;
    let next_cursor = page
        .next
        .map(|below| {
            cursor::seal(
                &app.config().cursor_secret,
                purpose,
                &sealed_for,
                &Position { below },
            )
        })
        .transpose()?;
    json(
        app,
        StatusCode::OK,
        &json!({"alerts": page.entries, "limit": limit, "next_cursor": next_cursor}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> PutBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn each_kind_takes_its_own_threshold() {
        let d = definition(body(
            json!({"kind": "error_rate", "threshold_percent": 2.5}),
        ))
        .unwrap();
        assert_eq!(
            (d.kind, d.limit, d.window_hours, d.min_requests),
            (RuleKind::ErrorRate, 250, 1, 50)
        );
        let d = definition(body(
            json!({"kind": "latency_p95", "threshold_ms": 1500, "endpoint": "/v1/chat"}),
        ))
        .unwrap();
        assert_eq!(
            (d.limit, d.filter.endpoint.as_deref()),
            (1500, Some("/v1/chat"))
        );
        let d = definition(body(
            json!({"kind": "requests_drop", "threshold_percent": 50}),
        ))
        .unwrap();
        assert_eq!(d.window_hours, 24);
    }

    #[test]
    fn bad_definitions_name_their_field() {
        for (what, v, field) in [
            (
                "unknown kind",
                json!({"kind": "cost_spike", "threshold_percent": 5}),
                "kind",
            ),
            ("no kind", json!({"threshold_percent": 5}), "kind"),
            (
                "zero",
                json!({"kind": "error_rate", "threshold_percent": 0}),
                "threshold_percent",
            ),
            (
                "above 100%",
                json!({"kind": "error_rate", "threshold_percent": 100.01}),
                "threshold_percent",
            ),
            (
                "three decimals",
                json!({"kind": "error_rate", "threshold_percent": 1.005}),
                "threshold_percent",
            ),
            (
                "negative",
                json!({"kind": "requests_drop", "threshold_percent": -5}),
                "threshold_percent",
            ),
            (
                "wrong threshold",
                json!({"kind": "error_rate", "threshold_ms": 5}),
                "threshold_ms",
            ),
            (
                "latency zero",
                json!({"kind": "latency_p95", "threshold_ms": 0}),
                "threshold_ms",
            ),
            (
                "window",
                json!({"kind": "error_rate", "threshold_percent": 5, "window_hours": 169}),
                "window_hours",
            ),
            (
                "min requests",
                json!({"kind": "error_rate", "threshold_percent": 5, "min_requests": 0}),
                "min_requests",
            ),
            (
                "endpoint and model",
                json!({"kind": "error_rate", "threshold_percent": 5, "endpoint": "/x", "model": "m"}),
                "endpoint",
            ),
        ] {
            match definition(body(v)) {
                Err(ApiError::BadRequest { field: Some(f), .. }) => assert_eq!(f, field, "{what}"),
                other => panic!("{what}: {:?}", other.err()),
            }
        }
    }
}
