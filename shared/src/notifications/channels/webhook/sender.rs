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
//!
//! An endpoint that keeps failing: each failed attempt counts, a delivered one resets the count;
//! at [`WARN_AFTER_FAILURES`] in a row its owner gets a warning (inbox and email — not the
//! failing webhook), at [`DISABLE_AFTER_FAILURES`] it is disabled and they are told.
//! During a secret rotation's overlap every delivery is signed with both secrets.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use uuid::Uuid;

use crate::notifications::channels::{Channel, IN_APP};
use crate::notifications::delivery::{Attempt, AttemptStatus, WebhookMessage, WebhookPayload};
use crate::notifications::jobs::NotificationJob;
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
    // A resend is its own delivery: it must not find the original's delivered mark.
    let target_key = match &msg.resend {
        None => format!("webhook:{}", endpoint.id),
        Some(resend) => format!("webhook:{}:resend:{resend}", endpoint.id),
    };
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
        Ok(url) => {
            let secrets = endpoint.signing_secrets(Utc::now());
            post(app, &secrets, url, &msg, &mut attempt).await?
        }
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
    match attempt.status {
        AttemptStatus::Delivered if endpoint.failures > 0 => {
            accounts.clear_failures(&user, &endpoint.id).await?;
        }
        AttemptStatus::Retrying => count_failure(app, &accounts, &user, &endpoint).await?,
        _ => {}
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

/// What one signed POST came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// A 2xx answer.
    Delivered(u16),
    /// 410 Gone: the receiver asks for no more.
    Gone,
    /// Another answer, a timeout or no connection: worth another attempt later.
    Failed { status: Option<u16>, why: String },
    /// The address is one the SSRF guard refuses.
    Refused(String),
}

/// POSTs `body` to `url` signed with `secrets` (Standard Webhooks headers, `msg_id`), under the
/// SSRF guard, the timeout and no redirects.
pub async fn send_signed(
    app: &App,
    secrets: &[&str],
    url: url::Url,
    msg_id: &str,
    body: String,
) -> anyhow::Result<Sent> {
    let settings = &app.config().notifications;
    let now = Utc::now();
    let signature = webhook::signature_header(secrets, msg_id, now.timestamp(), &body)
        .map_err(|e| anyhow!("endpoint secret: {e}"))?;
    let client = webhook::client(
        settings.webhook_allow_private_targets,
        Duration::from_millis(settings.webhook_timeout_ms),
    )
    .context("building the webhook client")?;
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", now.timestamp().to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    Ok(match sent {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                Sent::Delivered(status.as_u16())
            } else if status.as_u16() == 410 {
                Sent::Gone
            } else {
                Sent::Failed {
                    status: Some(status.as_u16()),
                    why: format!("the endpoint answered {status}"),
                }
            }
        }
        Err(e) => match webhook::refused_in(&e) {
            Some(refused) => Sent::Refused(refused.to_string()),
            None => Sent::Failed {
                status: None,
                why: if e.is_timeout() {
                    format!("no answer within {} ms", settings.webhook_timeout_ms)
                } else if e.is_connect() {
                    "could not connect to the endpoint".to_owned()
                } else {
                    format!("the request failed: {e}")
                },
            },
        },
    })
}

/// One signed POST of a notification; fills `attempt` with what happened.
async fn post(
    app: &App,
    secrets: &[&str],
    url: url::Url,
    msg: &WebhookMessage,
    attempt: &mut Attempt,
) -> anyhow::Result<Outcome> {
    let body = serde_json::to_string(&WebhookPayload {
        kind: "notification.created".into(),
        timestamp: crate::notifications::notification::timestamp(Utc::now()),
        data: msg.notification.clone(),
    })?;
    let msg_id = webhook::message_id(&attempt.notification_id);
    Ok(match send_signed(app, secrets, url, &msg_id, body).await? {
        Sent::Delivered(status) => {
            attempt.http_status = Some(status);
            attempt.status = AttemptStatus::Delivered;
            Outcome::Done
        }
        Sent::Gone => {
            attempt.http_status = Some(410);
            attempt.status = AttemptStatus::Failed;
            attempt.error = Some("the endpoint answered 410 Gone; it is now disabled".into());
            Outcome::Done
        }
        Sent::Failed { status, why } => {
            attempt.http_status = status;
            attempt.status = AttemptStatus::Retrying;
            attempt.error = Some(why.clone());
            Outcome::Retry(why)
        }
        Sent::Refused(why) => {
            attempt.status = AttemptStatus::Refused;
            attempt.error = Some(why);
            Outcome::Done
        }
    })
}

/// Failed attempts in a row after which the owner is warned (in the inbox and by email).
pub const WARN_AFTER_FAILURES: i64 = 10;
/// Failed attempts in a row after which the endpoint is disabled.
pub const DISABLE_AFTER_FAILURES: i64 = 25;

/// Counts a failed attempt and, at the marks, warns the owner or disables the endpoint; each
/// mark is reached by exactly one attempt (the count comes back from one atomic `ADD`), and the
/// jobs' ids name the endpoint and the mark, so a redelivered message cannot notify twice.
async fn count_failure(
    app: &App,
    accounts: &crate::notifications::store::Accounts,
    user: &UserId,
    endpoint: &crate::notifications::store::accounts::Endpoint,
) -> anyhow::Result<()> {
    let failures = accounts.count_failure(user, &endpoint.id).await?;
    let job = if failures == WARN_AFTER_FAILURES {
        Some(NotificationJob {
            job_id: format!(
                "webhook-failing:{}:{}",
                endpoint.id,
                endpoint.created_at.timestamp_millis()
            ),
            user_id: Some(user.to_string()),
            user_ids: None,
            kind: "warning".into(),
            title: "Webhook endpoint failing".into(),
            message: format!(
                "The last {failures} deliveries to {} failed. After {DISABLE_AFTER_FAILURES} \
                 failures in a row it will be disabled; a delivered one resets the count.",
                endpoint.url
            ),
            data: Some(
                serde_json::json!({"endpoint_id": endpoint.id, "url": endpoint.url,
                "failures": failures, "disable_after": DISABLE_AFTER_FAILURES}),
            ),
            channels: Some(vec![IN_APP.into(), Channel::Email.as_str().into()]),
        })
    } else if failures >= DISABLE_AFTER_FAILURES
        && accounts
            .disable_endpoint(
                user,
                &endpoint.id,
                &format!("{DISABLE_AFTER_FAILURES} deliveries in a row failed"),
            )
            .await?
    {
        Some(NotificationJob {
            job_id: format!(
                "webhook-disabled:{}:{}",
                endpoint.id,
                endpoint.created_at.timestamp_millis()
            ),
            user_id: Some(user.to_string()),
            user_ids: None,
            kind: "error".into(),
            title: "Webhook endpoint disabled".into(),
            message: format!(
                "{} failed {DISABLE_AFTER_FAILURES} deliveries in a row and is now disabled; \
                 switch it back on with PUT /api/v1/webhooks/{}.",
                endpoint.url, endpoint.id
            ),
            data: Some(
                serde_json::json!({"endpoint_id": endpoint.id, "url": endpoint.url,
                "failures": failures}),
            ),
            channels: Some(vec![IN_APP.into(), Channel::Email.as_str().into()]),
        })
    } else {
        None
    };
    if let Some(job) = job {
        let queue = require(
            &app.config().resources.notification_jobs_queue_url,
            "NOTIFICATION_JOBS_QUEUE_URL",
        )?;
        sqs::send_json(app.sqs().await, queue, &[job]).await?;
    }
    Ok(())
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
