//! Where the two halves meet. The analytics half records what happened and knows nothing of
//! notifications; what in its data needs a person's attention becomes a notification job here,
//! and only here. Today: payment events (each one the built-in payment notification), low
//! balances (`low_credits`: one warning or error per crossing, evaluated after each ingest) and
//! budgets (`budgets`: each threshold once per period, evaluated after each ingest) and metric
//! alert rules (`alert_rules`: each breach and each recovery once, evaluated hourly).

pub mod alert_rules;
pub mod anomalies;
pub mod budgets;
pub mod low_credits;
pub mod reports;

use std::collections::BTreeSet;

use crate::analytics::event::{Detail, PaymentStatus, UsageEvent};
use crate::analytics::store::{Scope, UsageStore};
use crate::notifications::jobs::NotificationJob;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::StoreError;
use crate::platform::error::ApiError;
use crate::platform::sqs;

/// Queues the built-in payment notification of each payment event *before* the event is
/// recorded: if recording then fails, the retry queues it again, and the dispatcher's `job_id`
/// idempotency (`payment:<event_id>`) makes it one notification however often it is queued.
pub async fn announce_payments(app: &App, events: &[UsageEvent]) -> Result<(), ApiError> {
    let jobs: Vec<NotificationJob> = events
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
    sqs::send_json(app.sqs().await, queue, &jobs).await?;
    Ok(())
}

/// Evaluates the low-credit alert of every user `events` touched, right after their ingest
/// committed: one consistent read of each user's totals item (balance, alert state, threshold),
/// and only when a level is crossed the job, then one conditional write of the state. The job
/// goes out *before* the state moves: a crash in between leaves the state as it was, and the
/// retried batch (all duplicates, still evaluated) queues the same job id again, which the
/// dispatcher turns into the one notification. Writers racing on one user queue the same job id;
/// the loser of the conditional write re-reads and finds nothing left to do.
///
/// Returns the users whose totals item says they have budgets, for [`watch_budgets`].
pub async fn watch_credits<'a>(
    app: &App,
    store: &UsageStore,
    events: &'a [UsageEvent],
) -> Result<Vec<&'a UserId>, ApiError> {
    let users: Vec<&UserId> = events
        .iter()
        .map(|e| &e.user_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // A few users at a time: a batch of 100 users should not open 100 requests at once.
    let mut with_budgets = vec![];
    for group in users.chunks(8) {
        let has =
            futures::future::try_join_all(group.iter().map(|user| watch_user(app, store, user)))
                .await?;
        with_budgets.extend(group.iter().zip(has).filter(|(_, h)| *h).map(|(u, _)| *u));
    }
    Ok(with_budgets)
}

/// Rounds of read-decide-write one user may take when other writers keep moving the state; each
/// lost round means someone else advanced it, so a few always suffice.
const MAX_ROUNDS: usize = 8;

/// Returns whether the user has budgets, as the totals item read says.
async fn watch_user(app: &App, store: &UsageStore, user: &UserId) -> Result<bool, ApiError> {
    use low_credits::{decide, job, Level, Mark, Step};
    for _ in 0..MAX_ROUNDS {
        let standing = store.credit_standing(user).await?;
        let mark = match &standing.alert_state {
            None => Mark::default(),
            Some(raw) => Mark {
                level: Level::parse(raw).ok_or_else(|| {
                    StoreError::Corrupt(format!("lc_state is not a level: {raw:?}"))
                })?,
                epoch: standing.alert_epoch,
            },
        };
        let threshold = standing
            .threshold
            .unwrap_or(app.config().low_credit_threshold);
        let balance = standing.totals.balance();
        let (to, epoch) = match decide(balance, threshold, mark) {
            Step::Stay => return Ok(standing.has_budgets),
            Step::Notify(level) => {
                let queue = require(
                    &app.config().resources.notification_jobs_queue_url,
                    "NOTIFICATION_JOBS_QUEUE_URL",
                )?;
                let job = job(user, mark.epoch, level, balance, threshold);
                sqs::send_json(app.sqs().await, queue, &[job]).await?;
                (level, mark.epoch)
            }
            Step::Rearm => (Level::Armed, mark.epoch + 1),
        };
        let moved = store
            .move_credit_alert(
                user,
                standing.alert_state.as_deref(),
                mark.epoch,
                to.as_str(),
                epoch,
            )
            .await?;
        if moved {
            tracing::info!(user = %user, level = to.as_str(), epoch, balance, "low-credit alert state");
            return Ok(standing.has_budgets);
        }
    }
    Err(StoreError::Contention(format!("low-credit alert of {user}")).into())
}

/// Evaluates the budgets of `users` (those an ingest touched that have budgets, as
/// [`watch_credits`] read), right after their ingest committed — duplicates included, so a
/// retried batch finishes what a crash interrupted: one consistent read of the user's budget
/// item, then the rollups of each distinct period of their budgets.
pub async fn watch_budgets(
    app: &App,
    store: &UsageStore,
    users: &[&UserId],
) -> Result<(), ApiError> {
    for group in users.chunks(8) {
        futures::future::try_join_all(
            group
                .iter()
                .map(|user| watch_user_budgets(app, store, user)),
        )
        .await?;
    }
    Ok(())
}

/// Rounds for one user's budgets: a crossing takes one (claim, then queue and clear), and each
/// lost race one more; concurrent writers each advance the state.
const MAX_BUDGET_ROUNDS: usize = 16;

async fn watch_user_budgets(app: &App, store: &UsageStore, user: &UserId) -> Result<(), ApiError> {
    watch_owner_budgets(app, store, &Scope::User(user.clone()), chrono::Utc::now()).await
}

/// Evaluates the platform's system-wide budgets against the system rollups as of `at`. Run by
/// the hourly schedule, not after each ingest: the platform's spend moves with every batch of
/// every user, and reading the sharded system rollups per batch would cost more than the alert
/// is worth; an hour's delay is the trade.
pub async fn watch_system_budgets(
    app: &App,
    store: &UsageStore,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    watch_owner_budgets(app, store, &Scope::System, at).await
}

async fn watch_owner_budgets(
    app: &App,
    store: &UsageStore,
    owner: &Scope,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), ApiError> {
    use crate::analytics::budget::{Firing, PeriodUsage};
    for _ in 0..MAX_BUDGET_ROUNDS {
        let book = store.budgets(owner, true).await?;
        if book.budgets.is_empty() {
            return Ok(());
        }
        let mut budgets = book.budgets;
        // Claimed firings whose jobs may not be queued yet (a crash after the claim): queue them
        // again under the same ids, clear them, and decide afresh.
        if budgets.iter().any(|b| !b.pending.is_empty()) {
            queue_pending(app, store, owner, book.version, &mut budgets).await?;
            continue;
        }
        let mut usage = PeriodUsage::default();
        let mut firings = vec![];
        for b in &mut budgets {
            let (start, end) = b.window(now);
            let period = usage.of(store, owner, (start, end), true).await?;
            let spent = b.spent(period);
            let fired = b.fired_in(start).to_vec();
            let crossed = budgets::crossed(spent, b.amount.value(), &b.thresholds, &fired);
            if crossed.is_empty() {
                continue;
            }
            let (top_models, top_providers, top_endpoints) = b.tops(period);
            let firing = Firing {
                rev: b.rev,
                period_start: start,
                period_end: end,
                at: now,
                thresholds: crossed.clone(),
                spent,
                amount: b.amount,
                top_models,
                top_providers,
                top_endpoints,
            };
            let mut all = fired;
            all.extend(crossed);
            all.sort_unstable();
            b.fired_period = Some(start);
            b.fired = all;
            b.pending.push(firing.clone());
            firings.push((b.id.clone(), firing));
        }
        if firings.is_empty() {
            return Ok(());
        }
        if store
            .save_budgets(owner, book.version, &budgets, &firings)
            .await?
        {
            tracing::info!(owner = ?owner, firings = firings.len(), "budget thresholds claimed");
            // Claimed at version + 1: queue and clear; if another writer moved on meanwhile, the
            // next round finds whatever is still pending.
            if queue_pending(app, store, owner, book.version + 1, &mut budgets).await? {
                return Ok(());
            }
        }
    }
    Err(StoreError::Contention(format!("budget alerts of {owner:?}")).into())
}

/// Who a budget's notifications go to: its user, or for a system-wide budget the admin who set
/// it (`None`: nobody to tell — an old item without one).
fn recipient(owner: &Scope, b: &crate::analytics::budget::Budget) -> Option<UserId> {
    match owner {
        Scope::User(u) => Some(u.clone()),
        Scope::System => b.notify.as_deref().and_then(|n| UserId::parse(n).ok()),
    }
}

/// Queues the jobs of every pending firing of `budgets` (read at `version`), then clears them;
/// `false` when another writer changed the budgets before the clear.
async fn queue_pending(
    app: &App,
    store: &UsageStore,
    owner: &Scope,
    version: i64,
    budgets: &mut [crate::analytics::budget::Budget],
) -> Result<bool, ApiError> {
    let jobs: Vec<NotificationJob> = budgets
        .iter()
        .filter_map(|b| recipient(owner, b).map(|to| (b, to)))
        .flat_map(|(b, to)| {
            b.pending
                .iter()
                .map(move |f| budgets::job(&to, b, f))
                .collect::<Vec<_>>()
        })
        .collect();
    if !jobs.is_empty() {
        let queue = require(
            &app.config().resources.notification_jobs_queue_url,
            "NOTIFICATION_JOBS_QUEUE_URL",
        )?;
        sqs::send_json(app.sqs().await, queue, &jobs).await?;
    }
    for b in budgets.iter_mut() {
        b.pending.clear();
    }
    Ok(store.save_budgets(owner, version, budgets, &[]).await?)
}

/// Sets (`Some`) or clears (`None`) a user's own low-credit threshold where the evaluation after
/// ingest reads it: beside the user's credit totals, so it costs no extra read.
pub async fn set_low_credit_threshold(
    app: &App,
    user: &UserId,
    threshold: Option<i64>,
) -> Result<(), ApiError> {
    let r = &app.config().resources;
    let store = UsageStore::new(
        app.dynamodb().await.clone(),
        None,
        Some(require(&r.rollups_table, "ROLLUPS_TABLE")?),
        app.config().retention_days,
    );
    store.set_credit_threshold(user, threshold).await?;
    Ok(())
}

/// The built-in notification for one payment event. Its `job_id` derives from the event id, so
/// however often the event is delivered, the dispatcher notifies once.
pub fn payment_job(
    user: &UserId,
    event_id: &str,
    status: PaymentStatus,
    amount_micros: i64,
    credits: i64,
) -> NotificationJob {
    let amount = format!(
        "${}.{:02}",
        amount_micros / 1_000_000,
        (amount_micros % 1_000_000).abs() / 10_000
    );
    let (kind, title, message) = match status {
        PaymentStatus::Succeeded => (
            "success",
            "Payment successful",
            format!("We received your payment of {amount}; {credits} credits were added."),
        ),
        PaymentStatus::Failed => (
            "error",
            "Payment failed",
            format!("Your payment of {amount} failed. Please check your payment method."),
        ),
        PaymentStatus::Refunded => (
            "info",
            "Refund processed",
            format!("A refund of {amount} has been processed."),
        ),
    };
    NotificationJob {
        job_id: format!("payment:{event_id}"),
        user_id: Some(user.to_string()),
        user_ids: None,
        kind: kind.to_owned(),
        title: title.to_owned(),
        message,
        data: Some(serde_json::json!({
            "event_id": event_id,
            "status": status,
            "amount_usd": amount_micros as f64 / 1_000_000.0,
            "credits": credits,
        })),
        channels: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::jobs::Job;

    #[test]
    fn a_payment_job_passes_the_dispatchers_checks() {
        let job = payment_job(
            &UserId::parse("u1").unwrap(),
            "evt_1",
            PaymentStatus::Failed,
            1_500_000,
            0,
        );
        let valid = Job::validate(job).unwrap();
        assert_eq!(valid.job_id.as_str(), "payment:evt_1");
        assert_eq!(valid.content.kind.as_str(), "error");
    }

    #[test]
    fn a_payment_job_is_keyed_by_its_event_and_renders_the_amount() {
        let job = payment_job(
            &UserId::parse("u1").unwrap(),
            "evt_9",
            PaymentStatus::Succeeded,
            50_000_000,
            43_478,
        );
        assert_eq!(job.job_id, "payment:evt_9");
        assert_eq!(job.kind, "success");
        assert!(job.message.contains("$50.00"), "{}", job.message);
        let wire = serde_json::to_value(&job).unwrap();
        assert_eq!(wire["type"], "success");
        assert!(wire.get("channels").is_none());
    }
}
