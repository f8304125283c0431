//! The ingest path, two doors and one rule: `POST /api/v1/usage/events` (`routes::ingest`) and
//! the `UsageEventsQueue` consumer (`consumer`) both parse events one by one, tell each event's
//! fate, and record the valid ones exactly once (see `store`).

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use crate::analytics::event::{Rejection, UsageEvent, Window};
use crate::analytics::store::{Outcome, UsageStore};
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::error::ApiError;
use crate::seam;

pub const MAX_EVENTS: usize = 100;

/// Why an event of a user whose data is being erased is refused.
pub const ERASING_REASON: &str =
    "this user's data is being erased; send the event again once the erase is done";
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Serialize, Debug)]
pub struct EventResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

/// The events of a body: a JSON array, or `{"events": [...]}`, or (queue only) one event.
pub(crate) fn events_of(body: Value, allow_single: bool) -> Result<Vec<Value>, String> {
    let list = match body {
        Value::Array(list) => list,
        Value::Object(mut obj) if obj.contains_key("events") => match obj.remove("events") {
            Some(Value::Array(list)) => list,
            _ => return Err("events must be an array".into()),
        },
        Value::Object(obj) if allow_single => vec![Value::Object(obj)],
        _ => return Err("body must be an array of events or {\"events\": [...]}".into()),
    };
    if list.is_empty() || list.len() > MAX_EVENTS {
        return Err(format!(
            "a batch holds 1 to {MAX_EVENTS} events, not {}",
            list.len()
        ));
    }
    Ok(list)
}

/// The usage store of this deployment (events and rollups tables).
pub async fn usage_store(app: &App) -> Result<UsageStore, ApiError> {
    let r = &app.config().resources;
    Ok(UsageStore::new(
        app.dynamodb().await.clone(),
        Some(require(&r.events_table, "EVENTS_TABLE")?),
        Some(require(&r.rollups_table, "ROLLUPS_TABLE")?),
        app.config().retention_days,
    )
    .attributing(&app.config().tag_keys))
}

/// The usage store over the rollups table alone: what every reader and alert evaluation needs.
pub async fn rollups_store(app: &App) -> Result<UsageStore, ApiError> {
    let r = &app.config().resources;
    Ok(UsageStore::new(
        app.dynamodb().await.clone(),
        None,
        Some(require(&r.rollups_table, "ROLLUPS_TABLE")?),
        app.config().retention_days,
    ))
}

/// What one ingest did: each event's fate, and the raw events it rejected with their reasons.
pub struct Ingested {
    pub report: Report,
    pub rejected: Vec<RejectedEvent>,
}

pub struct RejectedEvent {
    pub raw: Value,
    pub why: Rejection,
}

/// Parses, announces payments, records; returns each event's fate and the rejected raw events.
pub async fn ingest(app: &App, raw: &[Value]) -> Result<Ingested, ApiError> {
    let window = Window {
        now: Utc::now(),
        retention_days: app.config().retention_days,
    };
    let mut results = Vec::with_capacity(raw.len());
    let mut valid = vec![];
    let mut positions = vec![];
    let mut rejected_raw = vec![];
    for (index, item) in raw.iter().enumerate() {
        match UsageEvent::parse_attributed(item, window, &app.config().tag_keys) {
            Ok(e) => {
                positions.push(results.len());
                results.push(EventResult {
                    index,
                    event_id: Some(e.event_id.clone()),
                    status: "accepted",
                    field: None,
                    reason: None,
                });
                valid.push(e);
            }
            Err(r) => {
                results.push(EventResult {
                    index,
                    event_id: UsageEvent::id_of(item),
                    status: "rejected",
                    field: Some(r.field.clone()),
                    reason: Some(r.reason.clone()),
                });
                rejected_raw.push(RejectedEvent {
                    raw: item.clone(),
                    why: r,
                });
            }
        }
    }
    if !valid.is_empty() {
        seam::announce_payments(app, &valid).await?;
        let store = usage_store(app).await?;
        let outcomes = store.record(&valid).await?;
        let mut recorded = vec![];
        for ((p, outcome), e) in positions.iter().zip(outcomes).zip(valid) {
            match outcome {
                Outcome::Accepted => recorded.push(e),
                Outcome::Duplicate => {
                    results[*p].status = "duplicate";
                    recorded.push(e);
                }
                Outcome::Erasing => {
                    let why = Rejection {
                        field: "user_id".into(),
                        reason: ERASING_REASON.into(),
                    };
                    results[*p].status = "rejected";
                    results[*p].field = Some(why.field.clone());
                    results[*p].reason = Some(why.reason.clone());
                    rejected_raw.push(RejectedEvent {
                        raw: raw[results[*p].index].clone(),
                        why,
                    });
                }
            }
        }
        let valid = recorded;
        // Every touched user, duplicates included: a batch retried after a crash between its
        // commit and this point must still raise the alert.
        let with_budgets = seam::watch_credits(app, &store, &valid).await?;
        seam::watch_budgets(app, &store, &with_budgets).await?;
        let stats = store.stats();
        tracing::info!(
            events = valid.len(),
            write_units = stats.write_units,
            transactions = stats.transactions,
            "usage recorded"
        );
    }
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    let report = Report {
        accepted: count("accepted"),
        duplicates: count("duplicate"),
        rejected: count("rejected"),
        results,
    };
    Ok(Ingested {
        report,
        rejected: rejected_raw,
    })
}
