//! `notification-dispatcher`, the consumer of `NotificationJobsQueue` (README, "Message contracts").
//!
//! Per message: a malformed job goes straight to the dead-letter queue with its reason (a
//! message attribute and a log line) and leaves the batch; a job for more than
//! [`Job::USERS_PER_MESSAGE`] users is split into messages of that many (same `job_id`); any
//! other job notifies each of its users once — the in-app item and the job's idempotency record
//! are one transaction — then enqueues the email and webhook messages its channels and the
//! user's preferences call for. A message that fails for another reason is reported as a batch
//! item failure, retried through the visibility timeout and, at the queue's
//! `maxReceiveCount`, moved to the dead-letter queue by SQS.

use std::sync::Arc;

use anyhow::Context;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use futures::StreamExt;

use crate::notifications::channels::Channel;
use crate::notifications::jobs::{Job, NotificationJob};
use crate::notifications::notification::Notification;
use crate::notifications::store;
use crate::notifications::store::inbox::Inserted;
use crate::notifications::waiting;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::handler::SqsFuture;
use crate::platform::sqs::{self, Settled};

/// Jobs of one batch handled at once.
const JOBS_IN_PARALLEL: usize = 4;
/// Users of one job notified at once.
const USERS_IN_PARALLEL: usize = 8;

/// What notifying one user of a job did.
pub(crate) struct Outcome {
    pub notification: Notification,
    /// The job had notified this user before; nothing new was written.
    pub duplicate: bool,
    /// Another invocation is enqueueing this notification's email and webhooks right now; a
    /// queued job should come back later to make sure it finished.
    pub fan_out_elsewhere: bool,
}

/// Notifies `user` of `job` exactly once, however often it is called: the in-app item and
/// the job record in one transaction, then the email and webhook messages. Whoever writes the
/// item holds a lease on the fan-out; a repeat of the job finds it done, or held (and comes
/// back later), or abandoned by a crash (and takes it over).
pub(crate) async fn notify_user(app: &App, job: &Job, user: &UserId) -> anyhow::Result<Outcome> {
    let store = store::inbox(app).await?;
    let fresh = Notification::from_content(user.clone(), &job.content);
    let (notification, duplicate, fan_out) = match store
        .insert_for_job(&fresh, store::expires_at(app), &job.job_id)
        .await
        .context("storing the in-app notification")?
    {
        Inserted::New(n) => (n, false, FanOut::Mine),
        Inserted::Duplicate(record) => {
            let fan_out = if record.fanned_out {
                FanOut::Done
            } else if store.claim_fan_out(user, &job.job_id).await? {
                FanOut::Mine
            } else {
                FanOut::Elsewhere
            };
            let n = Notification {
                id: record.notification_id,
                created_at: record.created_at,
                ..fresh
            };
            (n, true, fan_out)
        }
    };
    if fan_out == FanOut::Mine {
        self::fan_out(app, job, &notification).await?;
        store
            .mark_fanned_out(user, &job.job_id)
            .await
            .context("recording the fan-out")?;
    }
    Ok(Outcome {
        notification,
        duplicate,
        fan_out_elsewhere: fan_out == FanOut::Elsewhere,
    })
}

#[derive(PartialEq, Eq)]
enum FanOut {
    Done,
    Mine,
    Elsewhere,
}

/// Enqueues the deliveries of `n` on every channel the job asks for (all when it names none),
/// each only where the user's preferences switch that channel on for this type, and each when
/// the user's digest and quiet hours say.
async fn fan_out(app: &App, job: &Job, n: &Notification) -> anyhow::Result<()> {
    let wanted: Vec<Channel> = Channel::ALL
        .iter()
        .copied()
        .filter(|c| job.channels.is_none_or(|asked| asked.contains(*c)))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let accounts = store::accounts(app).await?;
    let prefs = accounts
        .preferences(&n.user_id)
        .await
        .context("reading preferences")?;
    let view = n.view();
    for channel in wanted {
        if prefs.allows(channel, n.kind) {
            // Now, or into the user's digest, or held until their quiet hours end.
            waiting::deliver(
                app,
                &accounts,
                &prefs,
                channel,
                &n.user_id,
                &view,
                n.created_at,
            )
            .await?;
        }
    }
    Ok(())
}

/// Puts notification jobs on `queue`.
pub(crate) async fn enqueue_jobs(
    app: &App,
    queue: &str,
    jobs: &[NotificationJob],
) -> anyhow::Result<()> {
    Ok(sqs::send_json(app.sqs().await, queue, jobs).await?)
}

/// Moves a malformed job to the dead-letter queue at once, its reason attached.
async fn dead_letter(app: &App, record: &SqsMessage, reason: &str) -> anyhow::Result<()> {
    let dlq = require(
        &app.config().resources.notification_jobs_dlq_url,
        "NOTIFICATION_JOBS_DLQ_URL",
    )?;
    sqs::dead_letter(
        app.sqs().await,
        dlq,
        record.body.as_deref().unwrap_or_default(),
        reason,
        Some(record.message_id.as_deref().unwrap_or("unknown")),
    )
    .await?;
    Ok(())
}

enum Handled {
    Notified(usize),
    Split(usize),
    DeadLettered,
}

async fn handle(app: &App, record: &SqsMessage) -> anyhow::Result<Settled<Handled>> {
    let body = record.body.as_deref().unwrap_or_default();
    let job = match Job::parse(body) {
        Ok(job) => job,
        Err(reason) => {
            tracing::warn!(
                message_id = record.message_id.as_deref().unwrap_or("unknown"),
                reason = %reason,
                "malformed notification job; moved to the dead-letter queue"
            );
            dead_letter(app, record, &reason.to_string()).await?;
            return Ok(Settled::Done(Handled::DeadLettered));
        }
    };
    if job.users.len() > Job::USERS_PER_MESSAGE {
        let queue = require(
            &app.config().resources.notification_jobs_queue_url,
            "NOTIFICATION_JOBS_QUEUE_URL",
        )?;
        let parts = job.split();
        enqueue_jobs(app, queue, &parts).await?;
        return Ok(Settled::Done(Handled::Split(parts.len())));
    }
    let work: Vec<_> = job
        .users
        .iter()
        .map(|u| notify_user(app, &job, u))
        .collect();
    let results: Vec<anyhow::Result<Outcome>> = futures::stream::iter(work)
        .buffer_unordered(USERS_IN_PARALLEL)
        .collect()
        .await;
    let mut notified = 0;
    let mut elsewhere = 0;
    for r in results {
        let outcome = r.with_context(|| format!("job {}", job.job_id.as_str()))?;
        notified += 1;
        elsewhere += usize::from(outcome.fan_out_elsewhere);
    }
    if elsewhere > 0 {
        // A concurrent delivery of this job holds the fan-out; come back after the visibility
        // timeout to find it done, or to take over if that delivery crashed.
        return Ok(Settled::Later(format!(
            "a repeat of this job is fanning out to {elsewhere} users elsewhere"
        )));
    }
    Ok(Settled::Done(Handled::Notified(notified)))
}

/// The `notification-dispatcher` function.
pub fn dispatcher(app: Arc<App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let batch = sqs::run_batch(&event.records, JOBS_IN_PARALLEL, |record| {
            let app = &app;
            async move { handle(app, record).await }
        })
        .await;
        let (mut notified, mut split, mut dead) = (0, 0, 0);
        for handled in &batch.done {
            match handled {
                Handled::Notified(n) => notified += n,
                Handled::Split(n) => split += n,
                Handled::DeadLettered => dead += 1,
            }
        }
        tracing::info!(
            received = event.records.len(),
            users_notified = notified,
            split_into = split,
            dead_lettered = dead,
            failed = batch.retried(),
            "notification jobs handled"
        );
        batch.response
    })
}
