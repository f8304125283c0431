//! `notification-flush`, every five minutes: the batches of waiting deliveries released by the
//! firing's time (one Query per shard of the due index, never a scan), each handled once.
//!
//! - A batch whose user is in quiet hours now (they were set or moved since it was written)
//!   waits until they end.
//! - A digest (`DIGEST#<window>`) is claimed first (`DIGESTSENT#<window>`, conditioned on its
//!   absence and on the batch still being due), so overlapping runs, Lambda's retries of a
//!   firing and the next firing send it once; once claimed, no delivery joins the window (the
//!   dispatcher's write is conditioned on the claim's absence and moves to the next window), so
//!   what the email lists is exactly what waited.
//! - Held deliveries (`HELD#<end of quiet hours>`) go on the email and webhook queues, whose
//!   senders claim each notification and target: a delivery queued twice by two runs goes once.
//!
//! A batch that fails stays due and the run reports the failure (the Errors alarm); the next
//! firing takes it up again.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use uuid::Uuid;

use crate::notifications::channels::email::sender::{self, Outgoing, SesFailure};
use crate::notifications::channels::email::{digest, feedback};
use crate::notifications::channels::{self, Channel};
use crate::notifications::delivery::{Attempt, AttemptStatus};
use crate::notifications::notification::NotificationType;
use crate::notifications::preferences::Preferences;
use crate::notifications::store::accounts::{DigestClaim, DueBatch, Pending, DUE_SHARDS};
use crate::notifications::store::{self, Accounts};
use crate::notifications::timing::{DigestFrequency, Window};
use crate::notifications::unsubscribe;
use crate::platform::app::App;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::keys::{digest_batch, DIGEST_BATCH, HELD_BATCH};
use crate::platform::error::ApiError;
use crate::platform::handler::{ScheduleFuture, Tick};

/// Batches handled at once.
const BATCHES_IN_PARALLEL: usize = 8;

/// What flushing one batch did.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// A digest email went out listing this many notifications.
    DigestSent(usize),
    /// The digest had nothing left to send (types switched off, no address).
    DigestSettled,
    /// Held deliveries put on their queues.
    Released(usize),
    /// Quiet hours hold it longer.
    Rescheduled,
    /// Another run flushed it, or is flushing it right now.
    Elsewhere,
}

/// The `notification-flush` function.
pub fn flush(app: Arc<App>, tick: Tick) -> ScheduleFuture {
    Box::pin(async move {
        let accounts = store::accounts(&app).await?;
        let mut due = vec![];
        for shard in 0..DUE_SHARDS {
            due.extend(accounts.due(shard, tick.at).await?);
        }
        let work: Vec<_> = due
            .iter()
            .map(|b| flush_batch(&app, &accounts, b, tick.at))
            .collect();
        let results: Vec<anyhow::Result<Flushed>> = futures::stream::iter(work)
            .buffered(BATCHES_IN_PARALLEL)
            .collect()
            .await;
        let (mut digests, mut released, mut rescheduled, mut elsewhere, mut failed) =
            (0, 0, 0, 0, 0);
        for (b, result) in due.iter().zip(&results) {
            match result {
                Ok(Flushed::DigestSent(_) | Flushed::DigestSettled) => digests += 1,
                Ok(Flushed::Released(n)) => released += n,
                Ok(Flushed::Rescheduled) => rescheduled += 1,
                Ok(Flushed::Elsewhere) => elsewhere += 1,
                Err(e) => {
                    failed += 1;
                    tracing::error!(user = %b.user, batch = b.batch, error = format!("{e:#}"),
                        "flushing a batch failed; the next run tries again");
                }
            }
        }
        tracing::info!(
            at = %tick.at,
            due = due.len(),
            digests,
            deliveries_released = released,
            rescheduled,
            elsewhere,
            failed,
            "waiting deliveries flushed"
        );
        if failed > 0 {
            return Err(ApiError::Unexpected(anyhow!(
                "{failed} of {} due batches failed",
                due.len()
            )));
        }
        Ok(())
    })
}

/// Flushes one due batch as of `at`.
pub async fn flush_batch(
    app: &App,
    accounts: &Accounts,
    b: &DueBatch,
    at: DateTime<Utc>,
) -> anyhow::Result<Flushed> {
    let prefs = accounts
        .preferences(&b.user)
        .await
        .context("reading preferences")?;
    if let Some(end) = prefs.quiet_end(at) {
        accounts.reschedule(&b.user, &b.batch, end).await?;
        return Ok(Flushed::Rescheduled);
    }
    if let Some(window) = b.batch.strip_prefix(DIGEST_BATCH) {
        flush_digest(app, accounts, &prefs, &b.user, window).await
    } else if b.batch.starts_with(HELD_BATCH) {
        release_held(app, accounts, &prefs, &b.user, &b.batch).await
    } else {
        Err(anyhow!("unknown batch {}", b.batch))
    }
}

/// Puts the held deliveries of `batch` on their queues, as the preferences say now.
async fn release_held(
    app: &App,
    accounts: &Accounts,
    prefs: &Preferences,
    user: &UserId,
    batch: &str,
) -> anyhow::Result<Flushed> {
    let Some(seen) = accounts.due_record(user, batch).await? else {
        return Ok(Flushed::Elsewhere);
    };
    let items = accounts.pending(user, batch).await?;
    let mut queued = 0;
    for p in &items {
        if prefs.allows(p.channel, p.notification.kind) {
            channels::enqueue(app, accounts, prefs, p.channel, user, &p.notification).await?;
            queued += 1;
        }
    }
    accounts.forget_pending(user, &items).await?;
    // A delivery that joined since `seen` keeps the batch due for the next run.
    accounts.settle_batch(user, batch, &seen).await?;
    Ok(Flushed::Released(queued))
}

/// Sends the digest of `window_key` once.
async fn flush_digest(
    app: &App,
    accounts: &Accounts,
    prefs: &Preferences,
    user: &UserId,
    window_key: &str,
) -> anyhow::Result<Flushed> {
    let batch = digest_batch(window_key);
    match accounts.claim_digest(user, window_key).await? {
        DigestClaim::Claimed => {}
        DigestClaim::Busy | DigestClaim::Gone => return Ok(Flushed::Elsewhere),
        DigestClaim::Sent => {
            // Sent by a run that stopped before tidying up.
            let left = accounts.pending(user, &batch).await?;
            accounts.forget_pending(user, &left).await?;
            accounts.drop_due(user, &batch).await?;
            return Ok(Flushed::Elsewhere);
        }
    }
    let items = accounts.pending(user, &batch).await?;
    let frequency = Window::from_key(window_key, &prefs.zone())
        .map(|w| w.frequency)
        .unwrap_or(DigestFrequency::Hourly);
    let mut wanted: Vec<&Pending> = items
        .iter()
        .filter(|p| prefs.allows(Channel::Email, p.notification.kind))
        .collect();
    wanted.sort_by(|a, b| a.notification.id.cmp(&b.notification.id));
    let outcome = match &prefs.email_address {
        _ if wanted.is_empty() => Outcome::Nothing,
        None => Outcome::Nothing,
        Some(to) if prefs.is_suppressed(to) => Outcome::Skipped(to.to_string()),
        Some(to) => send(app, user, to.as_str(), frequency, &wanted).await?,
    };
    let label = match &outcome {
        Outcome::Nothing => "nothing to send".to_owned(),
        Outcome::Skipped(_) => "skipped: the address is suppressed".to_owned(),
        Outcome::Sent(_) => "sent".to_owned(),
        Outcome::Failed(_, why) => format!("failed: {why}"),
    };
    accounts
        .digest_sent(user, window_key, &label, wanted.len())
        .await?;
    log_attempts(app, accounts, user, &outcome, &wanted).await?;
    accounts.forget_pending(user, &items).await?;
    accounts.drop_due(user, &batch).await?;
    tracing::info!(user = %user, window = window_key, notifications = wanted.len(),
        outcome = label, "digest");
    Ok(match outcome {
        Outcome::Sent(_) => Flushed::DigestSent(wanted.len()),
        _ => Flushed::DigestSettled,
    })
}

enum Outcome {
    Nothing,
    /// To this address, which is suppressed.
    Skipped(String),
    Sent(String),
    /// To this address, for good.
    Failed(String, String),
}

/// One SES `SendRawEmail` of the digest; a transient failure is an error (the claim expires and
/// a later run sends it), a permanent one an outcome.
async fn send(
    app: &App,
    user: &UserId,
    to: &str,
    frequency: DigestFrequency,
    items: &[&Pending],
) -> anyhow::Result<Outcome> {
    let settings = &app.config().notifications;
    let views: Vec<_> = items.iter().map(|p| p.notification.clone()).collect();
    let rendered = digest::render(frequency, &views);
    let mut kinds: Vec<NotificationType> = views.iter().map(|v| v.kind).collect();
    kinds.sort();
    kinds.dedup();
    // One-click unsubscribe from the types this digest lists.
    let unsubscribe = settings.public_api_url.as_deref().and_then(|base| {
        unsubscribe::token_for(&app.config().cursor_secret, user, &kinds)
            .map(|t| unsubscribe::link(base, &t))
    });
    let result = sender::send_raw(
        app,
        Outgoing {
            to,
            subject: &rendered.subject,
            text: &rendered.text,
            html: &rendered.html,
            unsubscribe: unsubscribe.as_deref(),
            tags: feedback::user_tags(user)?,
        },
    )
    .await?;
    match result {
        Ok(()) => Ok(Outcome::Sent(to.to_owned())),
        Err(SesFailure::Permanent(text)) => Ok(Outcome::Failed(to.to_owned(), text)),
        Err(SesFailure::Transient(text)) => Err(anyhow!("SES: {text}")),
    }
}

/// One attempt per notification of the digest in the delivery log
/// (`GET notifications/{id}/deliveries`).
async fn log_attempts(
    app: &App,
    accounts: &Accounts,
    user: &UserId,
    outcome: &Outcome,
    items: &[&Pending],
) -> anyhow::Result<()> {
    let (target, status, error) = match outcome {
        Outcome::Nothing => return Ok(()),
        Outcome::Sent(to) => (to, AttemptStatus::Delivered, None),
        Outcome::Skipped(to) => (
            to,
            AttemptStatus::Skipped,
            Some("email to this address is paused after a bounce or complaint".to_owned()),
        ),
        Outcome::Failed(to, why) => (to, AttemptStatus::Failed, Some(why.clone())),
    };
    let expires = store::expires_at(app);
    let now = Utc::now();
    let attempts: Vec<Attempt> = items
        .iter()
        .filter_map(|p| Uuid::parse_str(&p.notification.id).ok())
        .map(|notification_id| Attempt {
            notification_id,
            channel: Channel::Email,
            target: target.clone(),
            endpoint_id: None,
            attempt: 1,
            status,
            http_status: None,
            error: error.clone(),
            at: now,
        })
        .collect();
    let writes: Vec<_> = attempts
        .iter()
        .map(|a| accounts.record_attempt(user, a, expires))
        .collect();
    let results: Vec<_> = futures::stream::iter(writes)
        .buffer_unordered(BATCHES_IN_PARALLEL)
        .collect()
        .await;
    for r in results {
        r.context("logging a digest delivery")?;
    }
    Ok(())
}
