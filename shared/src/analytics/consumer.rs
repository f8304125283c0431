//! The `UsageEventsQueue` consumer: the queue door of the ingest path.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use serde_json::Value;

use crate::analytics::event::{UsageEvent, Window};
use crate::analytics::ingest::{events_of, ingest, RejectedEvent};
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::error::ApiError;
use crate::platform::handler::SqsFuture;
use crate::platform::sqs::{self, Settled};

/// `UsageEventsQueue` consumer. A message that can never succeed (not JSON, not events, or
/// events that fail validation) goes to the dead-letter queue at once with its reason, rather
/// than being retried. The valid events of the whole batch are recorded together — fewer, fuller
/// transactions — and if that fails for a passing reason every message that carried them is
/// reported failed and retried by SQS; exactly-once recording makes the retry safe.
pub fn usage_consumer(app: Arc<App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let mut batch = sqs::run_batch(&event.records, 1, |record| {
            let app = &app;
            async move {
                let valid = prepare(app, record).await?;
                Ok(Settled::Done(Carried {
                    message_id: record.message_id.clone().unwrap_or_default(),
                    events: valid,
                }))
            }
        })
        .await;
        let dead = batch.done.iter().filter(|c| c.events.is_empty()).count();
        let carriers: Vec<String> = batch
            .done
            .iter()
            .filter(|c| !c.events.is_empty())
            .map(|c| c.message_id.clone())
            .collect();
        let events: Vec<Value> = batch.done.drain(..).flat_map(|c| c.events).collect();
        if !events.is_empty() {
            match ingest(&app, &events).await {
                Ok(ingested) => {
                    tracing::info!(
                        accepted = ingested.report.accepted,
                        duplicates = ingested.report.duplicates,
                        "usage batch recorded"
                    );
                    if !ingested.rejected.is_empty() {
                        // Only an event that aged past retention between the two checks lands here.
                        if let Err(e) = dead_letter_events(&app, ingested.rejected).await {
                            tracing::error!(error = ?e, "could not dead-letter late rejections; retrying the batch");
                            carriers.into_iter().for_each(|id| batch.retry(id));
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = ?e, messages = carriers.len(), "recording the batch failed; SQS will retry its messages");
                    carriers.into_iter().for_each(|id| batch.retry(id));
                }
            }
        }
        tracing::info!(
            messages = event.records.len(),
            dead_lettered = dead,
            retried = batch.retried(),
            "usage batch"
        );
        batch.response
    })
}

/// One message's valid events (none when it was dead-lettered).
struct Carried {
    message_id: String,
    events: Vec<Value>,
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
        match UsageEvent::parse_attributed(&item, window, &app.config().tag_keys) {
            Ok(_) => valid.push(item),
            Err(why) => rejected.push(RejectedEvent { raw: item, why }),
        }
    }
    if !rejected.is_empty() {
        dead_letter_events(app, rejected).await?;
    }
    Ok(valid)
}

async fn dead_letter_events(app: &App, rejected: Vec<RejectedEvent>) -> Result<(), ApiError> {
    let reasons: Vec<String> = rejected
        .iter()
        .map(|r| format!("{}: {}", r.why.field, r.why.reason))
        .collect();
    let events: Vec<Value> = rejected.into_iter().map(|r| r.raw).collect();
    let body = serde_json::to_string(&events).map_err(|e| ApiError::Unexpected(e.into()))?;
    dead_letter(app, &body, &reasons.join("; ")).await
}

async fn dead_letter(app: &App, body: &str, reason: &str) -> Result<(), ApiError> {
    let dlq = require(
        &app.config().resources.usage_events_dlq_url,
        "USAGE_EVENTS_DLQ_URL",
    )?;
    tracing::warn!(reason, "usage message dead-lettered");
    sqs::dead_letter(app.sqs().await, dlq, body, reason, None).await?;
    Ok(())
}
