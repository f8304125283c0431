//! Erasing a user: `DELETE /api/v1/me/data` marks the user (no more usage lands for them), writes
//! the erasure record and queues the work on `EraseQueue`; `data-eraser` takes the user apart
//! phase by phase — an inventory for the receipt, raw events, hourly and daily rollups (each
//! item's share subtracted from the system rollups as it is deleted), the notifications and
//! accounts partitions, and last the totals partition, whose deletion lifts the mark. Each
//! invocation works for at most [`WORK_SECONDS`] and queues the rest, so no user is too large for
//! the Lambda timeout; every step is idempotent and the phase moves on conditionally, so a
//! redelivered or duplicated message only repeats harmless work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::analytics::ingest::{rollups_store, usage_store};
use crate::notifications::store::erase::NotificationsInventory;
use crate::notifications::store::{accounts, inbox};
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::attrs::{num, s, time};
use crate::platform::dynamodb::error::{conditional, sdk};
use crate::platform::dynamodb::keys::{PK, SK};
use crate::platform::dynamodb::{Attrs, Item, StoreError, Table};
use crate::platform::error::ApiError;
use crate::platform::handler::SqsFuture;
use crate::platform::sqs::{self, Settled};

/// How long one invocation works before it queues the rest (the function's timeout is 60 s).
pub const WORK_SECONDS: u64 = 40;
/// Items one step reads and removes.
const STEP: usize = 200;
/// How long the erasure receipt is kept.
const RECEIPT_DAYS: i64 = 365;

/// The phases of an erase, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Inventory,
    Events,
    HourlyRollups,
    QuarterRollups,
    DailyRollups,
    Notifications,
    Accounts,
    Totals,
    Done,
}

impl Phase {
    fn next(self) -> Phase {
        match self {
            Phase::Inventory => Phase::Events,
            Phase::Events => Phase::HourlyRollups,
            Phase::HourlyRollups => Phase::QuarterRollups,
            Phase::QuarterRollups => Phase::DailyRollups,
            Phase::DailyRollups => Phase::Notifications,
            Phase::Notifications => Phase::Accounts,
            Phase::Accounts => Phase::Totals,
            Phase::Totals | Phase::Done => Phase::Done,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Phase::Inventory => "inventory",
            Phase::Events => "events",
            Phase::HourlyRollups => "hourly_rollups",
            Phase::QuarterRollups => "quarter_rollups",
            Phase::DailyRollups => "daily_rollups",
            Phase::Notifications => "notifications",
            Phase::Accounts => "accounts",
            Phase::Totals => "totals",
            Phase::Done => "done",
        }
    }

    fn parse(raw: &str) -> Option<Phase> {
        [
            Phase::Inventory,
            Phase::Events,
            Phase::HourlyRollups,
            Phase::QuarterRollups,
            Phase::DailyRollups,
            Phase::Notifications,
            Phase::Accounts,
            Phase::Totals,
            Phase::Done,
        ]
        .into_iter()
        .find(|p| p.as_str() == raw)
    }
}

/// One erasure as recorded (AccountsTable, `ERASURE#<user>` / `<erase id>`): it outlives the
/// user's data as the receipt.
#[derive(Clone, Debug, PartialEq)]
pub struct Erasure {
    pub id: String,
    pub user: UserId,
    pub requested_by: String,
    pub started_at: DateTime<Utc>,
    pub phase: Phase,
    pub finished_at: Option<DateTime<Utc>>,
    /// What the user held when the erase began, by kind (set by the inventory phase).
    pub counts: Option<Value>,
}

impl Erasure {
    pub fn view(&self) -> Value {
        json!({
            "erase_id": self.id,
            "user_id": self.user.as_str(),
            "status": if self.phase == Phase::Done { "done" } else { "running" },
            "phase": self.phase.as_str(),
            "requested_by": self.requested_by,
            "started_at": crate::notifications::notification::timestamp(self.started_at),
            "finished_at": self.finished_at.map(crate::notifications::notification::timestamp),
            "removed": self.counts,
        })
    }
}

fn erasure_pk(user: &UserId) -> String {
    format!("ERASURE#{}", user.as_str())
}

/// Where erasure records live: the accounts table, outside every user partition.
async fn records(app: &App) -> Result<Table, ApiError> {
    let name = require(&app.config().resources.accounts_table, "ACCOUNTS_TABLE")?;
    Ok(Table::new(app.dynamodb().await.clone(), name))
}

fn parse(item: &Item) -> Result<Erasure, StoreError> {
    Ok(Erasure {
        id: item.string(SK)?.to_owned(),
        user: UserId::parse(item.string("user_id")?)
            .map_err(|e| StoreError::Corrupt(format!("user_id {e}")))?,
        requested_by: item.string("requested_by")?.to_owned(),
        started_at: item.time("started_at")?,
        phase: Phase::parse(item.string("phase")?)
            .ok_or_else(|| StoreError::Corrupt("phase".into()))?,
        finished_at: item.opt_time("finished_at")?,
        counts: item
            .opt_string("counts")?
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("counts: {e}")))?,
    })
}

/// The user's latest erasure, if any.
pub async fn latest(app: &App, user: &UserId) -> Result<Option<Erasure>, ApiError> {
    let table = records(app).await?;
    let out = table
        .query()
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(erasure_pk(user)))
        .scan_index_forward(false)
        .consistent_read(true)
        .limit(1)
        .send()
        .await
        .map_err(sdk("Query erasures"))?;
    Ok(out
        .items
        .unwrap_or_default()
        .first()
        .map(parse)
        .transpose()?)
}

async fn load(app: &App, user: &UserId, id: &str) -> Result<Option<Erasure>, ApiError> {
    let table = records(app).await?;
    Ok(table
        .get(erasure_pk(user), id, "GetItem erasure")
        .await?
        .as_ref()
        .map(parse)
        .transpose()?)
}

/// One unit of work on `EraseQueue`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Work {
    pub user_id: String,
    pub erase_id: String,
}

/// Starts erasing `user` (or finds the erase already running): the mark on their totals, the
/// record, the first unit of work. Harmless to repeat.
pub async fn start(app: &App, user: &UserId, requested_by: &str) -> Result<Erasure, ApiError> {
    let store = rollups_store(app).await?;
    let fresh = uuid::Uuid::now_v7().simple().to_string();
    let id = store.begin_erase(user, &fresh).await?;
    let table = records(app).await?;
    let now = Utc::now();
    let put = table
        .put()
        .item(PK, s(erasure_pk(user)))
        .item(SK, s(&id))
        .item("user_id", s(user.as_str()))
        .item("requested_by", s(requested_by))
        .item("started_at", time(now))
        .item("phase", s(Phase::Inventory.as_str()))
        .item(
            "expires_at",
            num((now + chrono::Duration::days(RECEIPT_DAYS)).timestamp()),
        )
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    // Already recorded: this erase is running; queue its work again (harmless) in case the
    // earlier request stopped before it did.
    conditional("PutItem erasure", put)?;
    queue(app, user, &id).await?;
    load(app, user, &id)
        .await?
        .ok_or_else(|| ApiError::Unexpected(anyhow::anyhow!("erasure {id} vanished")))
}

async fn queue(app: &App, user: &UserId, id: &str) -> Result<(), ApiError> {
    let q = require(&app.config().resources.erase_queue_url, "ERASE_QUEUE_URL")?;
    let work = Work {
        user_id: user.to_string(),
        erase_id: id.to_owned(),
    };
    sqs::send_json(app.sqs().await, q, &[work]).await?;
    Ok(())
}

/// Moves the record from `from` to `to` (with `extra` attributes set); `false` when another
/// worker moved it first.
async fn advance(
    app: &App,
    e: &Erasure,
    from: Phase,
    to: Phase,
    counts: Option<&Value>,
) -> Result<bool, ApiError> {
    let table = records(app).await?;
    let mut update = table
        .update(erasure_pk(&e.user), &e.id)
        .condition_expression("phase = :from")
        .expression_attribute_values(":from", s(from.as_str()))
        .expression_attribute_values(":to", s(to.as_str()));
    let mut expression = "SET phase = :to".to_owned();
    if let Some(c) = counts {
        expression.push_str(", #counts = :counts");
        update = update
            .expression_attribute_names("#counts", "counts")
            .expression_attribute_values(":counts", s(c.to_string()));
    }
    if to == Phase::Done {
        expression.push_str(", finished_at = :now");
        update = update.expression_attribute_values(":now", time(Utc::now()));
    }
    let result = update.update_expression(expression).send().await;
    Ok(conditional("UpdateItem erasure phase", result)?.is_some())
}

/// Runs phases of `user`'s erase `erase_id` until it is done or the time is up; `true` when the
/// erase is complete.
pub async fn run(
    app: &App,
    user: &UserId,
    erase_id: &str,
    budget: Duration,
) -> Result<bool, ApiError> {
    let user = user.clone();
    let work = Work {
        user_id: user.to_string(),
        erase_id: erase_id.to_owned(),
    };
    let deadline = Instant::now() + budget;
    let usage = usage_store(app).await?;
    let inbox = inbox(app).await?;
    let accounts = accounts(app).await?;
    loop {
        let Some(e) = load(app, &user, &work.erase_id).await? else {
            tracing::warn!(user = %user, erase = work.erase_id, "no such erasure; dropped");
            return Ok(true);
        };
        if e.phase == Phase::Done {
            return Ok(true);
        }
        let (finished, counts) = match e.phase {
            Phase::Inventory => {
                let u = usage.usage_inventory(&user).await?;
                let mut n = NotificationsInventory::default();
                inbox.inventory(&user, &mut n).await?;
                accounts.inventory(&user, &mut n).await?;
                let counts = json!({
                    "usage_events": u.events,
                    "rollup_items": u.rollup_items,
                    "budgets": u.budgets,
                    "alert_rules": u.alert_rules,
                    "alert_history": u.alert_history,
                    "anomalies": u.anomalies,
                    "notifications": n.notifications,
                    "preferences": n.preferences,
                    "webhook_endpoints": n.webhook_endpoints,
                    "delivery_attempts": n.delivery_attempts,
                    "waiting_deliveries": n.waiting_deliveries,
                    "bookkeeping_items": n.bookkeeping,
                });
                (true, Some(counts))
            }
            Phase::Events => (usage.erase_events(&user, STEP).await?.done, None),
            Phase::HourlyRollups => (usage.erase_rollups(&user, 'H', STEP).await?.done, None),
            Phase::QuarterRollups => (usage.erase_rollups(&user, 'Q', STEP).await?.done, None),
            Phase::DailyRollups => (usage.erase_rollups(&user, 'D', STEP).await?.done, None),
            Phase::Notifications => (inbox.erase_page(&user, STEP).await?, None),
            Phase::Accounts => {
                // Out of the report emails' registry first (it lives outside the partition;
                // the preferences item names the zone, and a later step finds it gone).
                accounts.leave_report_registry(&user).await?;
                (accounts.erase_page(&user, STEP).await?, None)
            }
            Phase::Totals => (usage.erase_totals(&user, STEP).await?.done, None),
            Phase::Done => (true, None),
        };
        if finished {
            advance(app, &e, e.phase, e.phase.next(), counts.as_ref()).await?;
            tracing::info!(user = %user, erase = e.id, phase = e.phase.next().as_str(), "erase phase");
        }
        // At least one step per invocation, so even a tiny budget makes progress.
        if Instant::now() >= deadline {
            return Ok(e.phase.next() == Phase::Done && finished);
        }
    }
}

/// `data-eraser`, the consumer of `EraseQueue`: works on each erase for up to [`WORK_SECONDS`],
/// then queues the rest of it. A malformed message goes to the dead-letter queue with its
/// reason; a failure is retried by SQS (every step is safe to repeat).
pub fn eraser(app: Arc<App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let batch = sqs::run_batch(&event.records, 1, |record| {
            let app = &app;
            async move {
                let body = record.body.as_deref().unwrap_or_default();
                let parsed = serde_json::from_str::<Work>(body)
                    .map_err(|e| format!("not an erase message: {e}"))
                    .and_then(|w| {
                        UserId::parse(&w.user_id)
                            .map(|u| (u, w.erase_id))
                            .map_err(|e| format!("user_id {e}"))
                    });
                let (user, erase_id) = match parsed {
                    Ok(w) => w,
                    Err(why) => {
                        let dlq = require(&app.config().resources.erase_dlq_url, "ERASE_DLQ_URL")?;
                        sqs::dead_letter_record(app.sqs().await, dlq, record, &why).await?;
                        return Ok(Settled::Done(()));
                    }
                };
                if !run(app, &user, &erase_id, Duration::from_secs(WORK_SECONDS)).await? {
                    queue(app, &user, &erase_id).await?;
                }
                Ok(Settled::Done(()))
            }
        })
        .await;
        batch.response
    })
}
