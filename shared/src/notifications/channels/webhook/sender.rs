//! `webhook-sender`, the consumer of `WebhookQueue`: one signed POST per message.
//!
//! Signature: Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`), the
//! id the same on every attempt of a notification so receivers can drop repeats. One attempt
//! has 5 s (configurable); only a 2xx answer is success and redirects are not followed.
//!
//! Retries: a failed attempt (non-2xx, timeout, connection failure) is logged as `retrying`,
//! its message is made invisible for the next delay of `WEBHOOK_RETRY_DELAYS` (by default 30 s,
//! 2 min, 10 min, 30 min, 1 h, 2 h, then 4 h) and reported as a batch item failure; at the
//! queue's `maxReceiveCount` (8 attempts, about 7 h 43 min after the first) SQS moves it to
//! `WebhookDeadLetterQueue`. A 410 Gone disables the endpoint and is not retried; an endpoint
//! that resolves to a refused address is logged as `refused` and not retried.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use uuid::Uuid;

use crate::notifications::channels::Channel;
use crate::notifications::delivery::{Attempt, AttemptStatus, WebhookMessage, WebhookPayload};
use crate::notifications::store;
use crate::notifications::store::accounts::Claim;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::handler::SqsFuture;
use crate::platform::sqs::{self, Settled};

/// How long one invocation holds a delivery (longer than the function timeout).
const CLAIM_SECONDS: i64 = 45;
use crate::notifications::channels::webhook;

/// The delay before the attempt after failed attempt number `attempt` (1-based).
pub fn retry_delay(delays: &[u32], attempt: u32) -> u32 {
    let i = (attempt.max(1) as usize - 1).min(delays.len().saturating_sub(1));
    delays.get(i).copied().unwrap_or(30)
}

enum Outcome {
    Done,
    Retry(String),
}

async fn deliver_one(app: &App, record: &SqsMessage) -> anyhow::Result<()> {
    let msg: WebhookMessage = serde_json::from_str(record.body.as_deref().unwrap_or_default())
        .context("the message is not a webhook delivery")?;
    let user = UserId::parse(&msg.notification.user_id).map_err(|e| anyhow!("user_id {e}"))?;
    let id = Uuid::parse_str(&msg.notification.id).context("notification id")?;
    let accounts = store::accounts(app).await?;
    let settings = &app.config().notifications;
    let expires = store::expires_at(app);
    let attempt_no = sqs::receive_count(record);
    let mut attempt = Attempt {
        notification_id: id,
        channel: Channel::Webhook,
        target: String::new(),
        endpoint_id: Some(msg.endpoint_id.clone()),
        attempt: attempt_no,
        status: AttemptStatus::Skipped,
        http_status: None,
        error: None,
        at: Utc::now(),
    };
    let endpoint = match accounts.endpoint(&user, &msg.endpoint_id).await? {
        Some(e) if e.enabled => e,
        Some(e) => {
            attempt.target = e.url.clone();
            attempt.error = Some(format!(
                "endpoint is disabled{}",
                e.disabled_reason
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
            accounts.record_attempt(&user, &attempt, expires).await?;
            return Ok(());
        }
        None => {
            attempt.error = Some("endpoint was deleted".into());
            accounts.record_attempt(&user, &attempt, expires).await?;
            return Ok(());
        }
    };
    attempt.target = endpoint.url.clone();
    let target_key = format!("webhook:{}", endpoint.id);
    match accounts
        .claim_delivery(&user, &id, &target_key, CLAIM_SECONDS, expires)
        .await?
    {
        Claim::Claimed => {}
        Claim::Delivered => {
            tracing::info!(notification = %id, "webhook already delivered; skipping the repeat");
            return Ok(());
        }
        Claim::Busy => return Err(anyhow!("another copy of this webhook is being delivered")),
    }
    let outcome = match webhook::parse_url(&endpoint.url, settings.webhook_allow_private_targets) {
        Err(e) => {
            attempt.status = AttemptStatus::Refused;
            attempt.error = Some(e.to_string());
            Outcome::Done
        }
        Ok(url) => post(app, &endpoint.secret, url, &msg, &mut attempt).await?,
    };
    attempt.at = Utc::now();
    accounts
        .settle_delivery(&user, &attempt, &target_key, expires)
        .await?;
    if attempt.status == AttemptStatus::Failed && attempt.http_status == Some(410) {
        accounts
            .disable_endpoint(&user, &endpoint.id, "the endpoint answered 410 Gone")
            .await?;
    }
    match outcome {
        Outcome::Done => Ok(()),
        Outcome::Retry(why) => {
            let delay = retry_delay(&settings.webhook_retry_delays, attempt_no);
            postpone(app, record, delay).await;
            Err(anyhow!("{why}; next attempt in {delay} s"))
        }
    }
}

/// One signed POST; fills `attempt` with what happened.
async fn post(
    app: &App,
    secret: &str,
    url: url::Url,
    msg: &WebhookMessage,
    attempt: &mut Attempt,
) -> anyhow::Result<Outcome> {
    let settings = &app.config().notifications;
    let now = Utc::now();
    let body = serde_json::to_string(&WebhookPayload {
        kind: "notification.created".into(),
        timestamp: crate::notifications::notification::timestamp(now),
        data: msg.notification.clone(),
    })?;
    let msg_id = webhook::message_id(&attempt.notification_id);
    let key = webhook::secret_key(secret).map_err(|e| anyhow!("endpoint secret: {e}"))?;
    let signature = webhook::sign(&key, &msg_id, now.timestamp(), &body).map_err(|e| anyhow!(e))?;
    let client = webhook::client(
        settings.webhook_allow_private_targets,
        Duration::from_millis(settings.webhook_timeout_ms),
    )
    .context("building the webhook client")?;
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", now.timestamp().to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    Ok(match sent {
        Ok(response) => {
            let status = response.status();
            attempt.http_status = Some(status.as_u16());
            if status.is_success() {
                attempt.status = AttemptStatus::Delivered;
                Outcome::Done
            } else if status.as_u16() == 410 {
                attempt.status = AttemptStatus::Failed;
                attempt.error = Some("the endpoint answered 410 Gone; it is now disabled".into());
                Outcome::Done
            } else {
                attempt.status = AttemptStatus::Retrying;
                let why = format!("the endpoint answered {status}");
                attempt.error = Some(why.clone());
                Outcome::Retry(why)
            }
        }
        Err(e) => {
            if let Some(refused) = webhook::refused_in(&e) {
                attempt.status = AttemptStatus::Refused;
                attempt.error = Some(refused.to_string());
                Outcome::Done
            } else {
                let why = if e.is_timeout() {
                    format!("no answer within {} ms", settings.webhook_timeout_ms)
                } else if e.is_connect() {
                    "could not connect to the endpoint".to_owned()
                } else {
                    format!("the request failed: {e}")
                };
                attempt.status = AttemptStatus::Retrying;
                attempt.error = Some(why.clone());
                Outcome::Retry(why)
            }
        }
    })
}

/// Keeps a failed message invisible for `delay` seconds: the growing retry schedule.
async fn postpone(app: &App, record: &SqsMessage, delay: u32) {
    let result = async {
        let queue = require(
            &app.config().resources.webhook_queue_url,
            "WEBHOOK_QUEUE_URL",
        )?;
        sqs::postpone(app.sqs().await, queue, record, delay).await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        // The queue's own visibility timeout applies instead; the retry still happens.
        tracing::warn!(error = %e, "could not set the retry delay");
    }
}

/// The `webhook-sender` function.
pub fn webhook_sender(app: Arc<App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let batch = sqs::run_batch(&event.records, 10, |record| {
            let app = &app;
            async move { deliver_one(app, record).await.map(Settled::Done) }
        })
        .await;
        tracing::info!(
            received = event.records.len(),
            retried = batch.retried(),
            "webhooks handled"
        );
        batch.response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_grows_then_repeats_its_last_step() {
        let d = [30, 120, 600];
        assert_eq!(retry_delay(&d, 1), 30);
        assert_eq!(retry_delay(&d, 2), 120);
        assert_eq!(retry_delay(&d, 3), 600);
        assert_eq!(retry_delay(&d, 9), 600);
        assert_eq!(retry_delay(&d, 0), 30);
    }
}
