//! Usage ingestion, two doors and one rule: `POST /api/v1/usage/events` and the
//! `UsageEventsQueue` consumer both parse events one by one, tell each event's fate, and record
//! the valid ones exactly once (see `store::usage`).

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use chrono::Utc;
use http::StatusCode;
use lambda_http::Request;
use serde::Serialize;
use serde_json::Value;

use super::http_handler;
use crate::app::App;
use crate::auth::Identity;
use crate::config::require;
use crate::domain::Role;
use crate::error::ApiError;
use crate::http::{authenticate, json, json_body, HttpResponse, Params};
use crate::jobs::payment_job;
use crate::store::usage::{Outcome, UsageStore};
use crate::usage::event::{Detail, Rejection, UsageEvent, Window};

pub const MAX_EVENTS: usize = 100;
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
fn events_of(body: Value, allow_single: bool) -> Result<Vec<Value>, String> {
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

fn store(app: &App, client: aws_sdk_dynamodb::Client) -> Result<UsageStore, ApiError> {
    let r = &app.config().resources;
    Ok(UsageStore::new(
        client,
        Some(require(&r.events_table, "EVENTS_TABLE")?),
        Some(require(&r.rollups_table, "ROLLUPS_TABLE")?),
        app.config().retention_days,
    ))
}

/// Parses, announces payments, records; returns each event's fate and the rejected raw events.
pub async fn ingest(
    app: &App,
    raw: &[Value],
) -> Result<(Report, Vec<(Value, Rejection)>), ApiError> {
    let window = Window {
        now: Utc::now(),
        retention_days: app.config().retention_days,
    };
    let mut results = Vec::with_capacity(raw.len());
    let mut valid = vec![];
    let mut positions = vec![];
    let mut rejected_raw = vec![];
    for (index, item) in raw.iter().enumerate() {
        match UsageEvent::parse(item, window) {
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
                rejected_raw.push((item.clone(), r));
            }
        }
    }
    if !valid.is_empty() {
        announce_payments(app, &valid).await?;
        let store = store(app, app.dynamodb().await.clone())?;
        let outcomes = store.record(&valid).await?;
        for (p, outcome) in positions.iter().zip(outcomes) {
            if outcome == Outcome::Duplicate {
                results[*p].status = "duplicate";
            }
        }
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
    Ok((report, rejected_raw))
}

/// Queues the built-in payment notification of each payment event *before* the event is
/// recorded: if recording then fails, the retry queues it again, and the dispatcher's `job_id`
/// idempotency (`payment:<event_id>`) makes it one notification however often it is queued.
async fn announce_payments(app: &App, events: &[UsageEvent]) -> Result<(), ApiError> {
    let jobs: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Payment(p) => Some(payment_job(
                &e.user_id,
                &e.event_id,
                p.status,
                p.amount_micros,
                p.credits,
            )),
            Detail::Request(_) => None,
        })
        .collect();
    if jobs.is_empty() {
        return Ok(());
    }
    let queue = require(
        &app.config().resources.notification_jobs_queue_url,
        "NOTIFICATION_JOBS_QUEUE_URL",
    )?;
    for batch in jobs.chunks(10) {
        let mut entries = vec![];
        for (i, job) in batch.iter().enumerate() {
            let body = serde_json::to_string(job).map_err(|e| ApiError::Unexpected(e.into()))?;
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("j{i}"))
                    .message_body(body)
                    .build()
                    .map_err(|e| ApiError::Unexpected(e.into()))?,
            );
        }
        let out = app
            .sqs()
            .await
            .send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                ApiError::Unexpected(anyhow::anyhow!(
                    "SendMessageBatch payment jobs: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                ))
            })?;
        if !out.failed.is_empty() {
            return Err(ApiError::Unexpected(anyhow::anyhow!(
                "{} payment jobs were not queued",
                out.failed.len()
            )));
        }
    }
    Ok(())
}

http_handler!(
    /// `POST /api/v1/usage/events` (role service or admin): 1–100 events, each answered
    /// accepted, duplicate or rejected with its reason.
    post_usage_events => post_events
);

async fn post_events(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller: Identity = authenticate(app, req)?;
    caller.require_any(&[Role::Service, Role::Admin])?;
    Params::parse(req, &[])?;
    let body: Value = json_body(req, MAX_BODY_BYTES)?;
    let raw = events_of(body, false).map_err(|m| ApiError::invalid("events", m))?;
    let (report, _) = ingest(app, &raw).await?;
    json(app, StatusCode::OK, &report)
}

/// `UsageEventsQueue` consumer. A message that can never succeed (not JSON, not events, or
/// events that fail validation) goes to the dead-letter queue at once with its reason, rather
/// than being retried. The valid events of the whole batch are recorded together — fewer, fuller
/// transactions — and if that fails for a passing reason every message that carried them is
/// reported failed and retried by SQS; exactly-once recording makes the retry safe.
pub fn usage_consumer(app: std::sync::Arc<App>, event: SqsEvent) -> super::SqsFuture {
    Box::pin(async move {
        let mut failed: Vec<String> = vec![];
        let mut carriers: Vec<String> = vec![];
        let mut events: Vec<Value> = vec![];
        let mut dead = 0;
        for record in &event.records {
            let id = record.message_id.clone().unwrap_or_default();
            match prepare(&app, record).await {
                Ok(valid) if valid.is_empty() => dead += 1,
                Ok(valid) => {
                    events.extend(valid);
                    carriers.push(id);
                }
                Err(e) => {
                    tracing::error!(message_id = id, error = ?e, "usage message failed; SQS will retry it");
                    failed.push(id);
                }
            }
        }
        if !events.is_empty() {
            match ingest(&app, &events).await {
                Ok((report, rejected)) => {
                    tracing::info!(
                        accepted = report.accepted,
                        duplicates = report.duplicates,
                        "usage batch recorded"
                    );
                    if !rejected.is_empty() {
                        // Only an event that aged past retention between the two checks lands here.
                        if let Err(e) = dead_letter_events(&app, rejected).await {
                            tracing::error!(error = ?e, "could not dead-letter late rejections; retrying the batch");
                            failed.append(&mut carriers);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = ?e, messages = carriers.len(), "recording the batch failed; SQS will retry its messages");
                    failed.append(&mut carriers);
                }
            }
        }
        tracing::info!(
            messages = event.records.len(),
            dead_lettered = dead,
            retried = failed.len(),
            "usage batch"
        );
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failed
            .into_iter()
            .map(|id| {
                let mut f = BatchItemFailure::default();
                f.item_identifier = id;
                f
            })
            .collect();
        response
    })
}

/// The valid events of one message; invalid content is dead-lettered with its reason.
async fn prepare(app: &App, record: &SqsMessage) -> Result<Vec<Value>, ApiError> {
    let body = record.body.as_deref().unwrap_or_default();
    let raw = match serde_json::from_str::<Value>(body) {
        Err(e) => {
            dead_letter(app, body, &format!("body is not JSON: {e}")).await?;
            return Ok(vec![]);
        }
        Ok(v) => match events_of(v, true) {
            Err(why) => {
                dead_letter(app, body, &why).await?;
                return Ok(vec![]);
            }
            Ok(list) => list,
        },
    };
    let window = Window {
        now: Utc::now(),
        retention_days: app.config().retention_days,
    };
    let mut valid = vec![];
    let mut rejected = vec![];
    for item in raw {
        match UsageEvent::parse(&item, window) {
            Ok(_) => valid.push(item),
            Err(r) => rejected.push((item, r)),
        }
    }
    if !rejected.is_empty() {
        dead_letter_events(app, rejected).await?;
    }
    Ok(valid)
}

async fn dead_letter_events(app: &App, rejected: Vec<(Value, Rejection)>) -> Result<(), ApiError> {
    let reasons: Vec<String> = rejected
        .iter()
        .map(|(_, r)| format!("{}: {}", r.field, r.reason))
        .collect();
    let events: Vec<Value> = rejected.into_iter().map(|(v, _)| v).collect();
    let body = serde_json::to_string(&events).map_err(|e| ApiError::Unexpected(e.into()))?;
    dead_letter(app, &body, &reasons.join("; ")).await
}

async fn dead_letter(app: &App, body: &str, reason: &str) -> Result<(), ApiError> {
    let dlq = require(
        &app.config().resources.usage_events_dlq_url,
        "USAGE_EVENTS_DLQ_URL",
    )?;
    tracing::warn!(reason, "usage message dead-lettered");
    let reason: String = reason.chars().take(1000).collect();
    app.sqs()
        .await
        .send_message()
        .queue_url(dlq)
        .message_body(body)
        .message_attributes(
            "reason",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(reason)
                .build()
                .map_err(|e| ApiError::Unexpected(e.into()))?,
        )
        .send()
        .await
        .map_err(|e| {
            ApiError::Unexpected(anyhow::anyhow!(
                "SendMessage to DLQ: {}",
                aws_sdk_sqs::error::DisplayErrorContext(e)
            ))
        })?;
    Ok(())
}
