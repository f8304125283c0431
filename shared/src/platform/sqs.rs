//! The SQS toolkit: the batch runner every consumer uses (per-message work in, the runtime's
//! partial-batch response out), batched sends that re-send what SQS refuses, and dead-lettering
//! a message with its reason.

use std::future::Future;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use futures::StreamExt;
use serde::Serialize;

use crate::platform::error::ApiError;

/// SQS takes at most ten entries per batch request.
const ENTRIES_PER_REQUEST: usize = 10;
/// Requests per chunk before entries SQS keeps refusing fail the send.
const SEND_ATTEMPTS: u32 = 4;
/// Message attribute values are limited; a reason is for people, so it is cut short.
const REASON_CHARS: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("{what}: {detail}")]
    Request { what: &'static str, detail: String },
    #[error("SQS refused {0} of the messages repeatedly")]
    Refused(usize),
    #[error("a message could not be encoded: {0}")]
    Encode(String),
}

impl From<SqsError> for ApiError {
    fn from(err: SqsError) -> Self {
        ApiError::Unexpected(err.into())
    }
}

fn request<E: std::error::Error + Send + Sync + 'static>(
    what: &'static str,
) -> impl FnOnce(E) -> SqsError {
    move |e| SqsError::Request {
        what,
        detail: DisplayErrorContext(e).to_string(),
    }
}

/// What a consumer made of one message.
pub enum Settled<T> {
    /// Handled for good (including a message moved to its dead-letter queue).
    Done(T),
    /// Not failed, but to be seen again after the visibility timeout.
    Later(String),
}

/// The result of one batch: the runtime's response plus what the handled messages produced.
pub struct Batch<T> {
    pub response: SqsBatchResponse,
    pub done: Vec<T>,
}

impl<T> Batch<T> {
    /// Reports the message `id` as failed, so SQS delivers it again.
    pub fn retry(&mut self, id: impl Into<String>) {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id.into();
        self.response.batch_item_failures.push(failure);
    }

    pub fn retried(&self) -> usize {
        self.response.batch_item_failures.len()
    }
}

/// Runs `handle` on every message, `parallel` at a time. An error or [`Settled::Later`] reports
/// that message alone as a batch item failure (the function needs `ReportBatchItemFailures`),
/// so the rest of the batch is never redelivered.
pub async fn run_batch<'a, T, F, Fut>(
    records: &'a [SqsMessage],
    parallel: usize,
    handle: F,
) -> Batch<T>
where
    F: Fn(&'a SqsMessage) -> Fut,
    Fut: Future<Output = anyhow::Result<Settled<T>>> + 'a,
{
    // Collected first: a lazy iterator here trips the compiler's Send check of the caller.
    let work: Vec<_> = records
        .iter()
        .map(|record| {
            let fut = handle(record);
            async move { (record.message_id.as_deref().unwrap_or_default(), fut.await) }
        })
        .collect();
    let results: Vec<_> = futures::stream::iter(work)
        .buffer_unordered(parallel.max(1))
        .collect()
        .await;
    let mut batch = Batch {
        response: SqsBatchResponse::default(),
        done: Vec::with_capacity(results.len()),
    };
    for (id, result) in results {
        match result {
            Ok(Settled::Done(value)) => batch.done.push(value),
            Ok(Settled::Later(why)) => {
                tracing::info!(
                    message_id = id,
                    why,
                    "message postponed; SQS delivers it again"
                );
                batch.retry(id);
            }
            Err(e) => {
                tracing::error!(message_id = id, error = %format!("{e:#}"),
                    "message failed; SQS will retry it");
                batch.retry(id);
            }
        }
    }
    batch
}

/// Keeps `record` invisible for `seconds` before SQS delivers it again (a retry schedule of
/// the consumer's own, instead of the queue's fixed visibility timeout).
pub async fn postpone(
    client: &Client,
    queue: &str,
    record: &SqsMessage,
    seconds: u32,
) -> Result<(), SqsError> {
    let receipt = record
        .receipt_handle
        .as_deref()
        .ok_or_else(|| SqsError::Encode("the message has no receipt handle".into()))?;
    client
        .change_message_visibility()
        .queue_url(queue)
        .receipt_handle(receipt)
        .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(request("ChangeMessageVisibility"))?;
    Ok(())
}

/// How many times SQS has delivered `record` (1 on the first delivery).
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Sends each item as one JSON message to `queue`.
pub async fn send_json<T: Serialize>(
    client: &Client,
    queue: &str,
    items: &[T],
) -> Result<(), SqsError> {
    let bodies = items
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SqsError::Encode(e.to_string()))?;
    send_batch(client, queue, &bodies).await
}

/// Sends every body to `queue`, ten per request; the entries SQS reports as failed are sent
/// again, a few times with a growing pause, before this fails.
pub async fn send_batch(client: &Client, queue: &str, bodies: &[String]) -> Result<(), SqsError> {
    for chunk in bodies.chunks(ENTRIES_PER_REQUEST) {
        let mut pending: Vec<(String, &String)> = chunk
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("m{i}"), b))
            .collect();
        for attempt in 0..SEND_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            let entries = pending
                .iter()
                .map(|(id, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(id)
                        .message_body(body.as_str())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SqsError::Encode(e.to_string()))?;
            let out = client
                .send_message_batch()
                .queue_url(queue)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(request("SendMessageBatch"))?;
            let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
            pending.retain(|(id, _)| failed.contains(&id.as_str()));
        }
        if !pending.is_empty() {
            return Err(SqsError::Refused(pending.len()));
        }
    }
    Ok(())
}

/// Moves `record`, a message that can never succeed, to the dead-letter queue `dlq` at once
/// with `why` (its reason attribute and a log line); the consumer then counts it done.
pub async fn dead_letter_record(
    client: &Client,
    dlq: &str,
    record: &SqsMessage,
    why: &str,
) -> Result<(), SqsError> {
    let id = record.message_id.as_deref();
    tracing::warn!(
        reason = why,
        message_id = id.unwrap_or_default(),
        "message dead-lettered"
    );
    dead_letter(
        client,
        dlq,
        record.body.as_deref().unwrap_or_default(),
        why,
        id,
    )
    .await
}

/// Puts `body` on the dead-letter queue `dlq` at once, with its `reason` (and the id of the
/// message it came from, when there was one) as message attributes.
pub async fn dead_letter(
    client: &Client,
    dlq: &str,
    body: &str,
    reason: &str,
    source_message_id: Option<&str>,
) -> Result<(), SqsError> {
    let text = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .map_err(|e| SqsError::Encode(e.to_string()))
    };
    let short: String = reason.chars().take(REASON_CHARS).collect();
    let mut send = client
        .send_message()
        .queue_url(dlq)
        .message_body(body)
        .message_attributes("reason", text(&short)?);
    if let Some(id) = source_message_id {
        send = send.message_attributes("source_message_id", text(id)?);
    }
    send.send()
        .await
        .map_err(request("SendMessage to the dead-letter queue"))?;
    Ok(())
}
