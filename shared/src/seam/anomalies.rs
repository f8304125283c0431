//! Anomalies becoming notifications: the hourly run. The schedule (`anomaly-scan`) lists the
//! users active on the day of the last complete hour — the day index of the rollups, so users
//! without recent usage cost nothing — and puts them in groups on `AnomalyScanQueue`; the
//! workers (`anomaly-worker`) judge each user (`analytics::anomaly`) and notify.
//!
//! Per user and hour: one Query of the last hour's rollup items; a user idle in that hour stops
//! there, without reading any history. An active one reads the same hour of each baseline week
//! (and, on the run after midnight UTC, the last day and the same weekday of each baseline
//! week). Each anomaly's notification job is queued *before* the anomaly is recorded, under an
//! id made of the anomaly's window and driver (`anomaly:<id>`): a run repeated after a crash
//! queues the same job again, which the dispatcher turns into one notification.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Duration, DurationRound, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::analytics::anomaly::{
    judge, observations, pick, Anomaly, Candidate, Metric, Thresholds, Window,
};
use crate::analytics::period::Cover;
use crate::analytics::rollup::Rollup;
use crate::analytics::store::{Scope, UsageStore};
use crate::notifications::jobs::NotificationJob;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::error::ApiError;
use crate::platform::handler::{ScheduleFuture, SqsFuture, Tick};
use crate::platform::sqs::{self, Settled};

/// Users per message on the scan queue: one worker invocation's share.
pub const USERS_PER_ORDER: usize = 50;
/// Users one worker judges at a time.
const PARALLEL_USERS: usize = 8;

/// One group of users to judge for the hour starting at `hour` (and its day, when `daily`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanOrder {
    pub hour: DateTime<Utc>,
    pub daily: bool,
    pub users: Vec<String>,
}

/// What judging a group did.
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    pub users: usize,
    /// Users idle in the hour: one read each, no history.
    pub idle: usize,
    pub items_read: usize,
    pub read_units: f64,
    /// The anomalies found (recorded and notified), with their user.
    pub anomalies: Vec<(String, Anomaly)>,
}

/// The last complete hour at `now`.
pub fn last_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Duration::hours(1)).unwrap_or(now) - Duration::hours(1)
}

async fn store(app: &App) -> Result<UsageStore, ApiError> {
    let r = &app.config().resources;
    Ok(UsageStore::new(
        app.dynamodb().await.clone(),
        None,
        Some(require(&r.rollups_table, "ROLLUPS_TABLE")?),
        app.config().retention_days,
    ))
}

/// The schedule's work: the orders for the hour before `now`, one per [`USERS_PER_ORDER`]
/// users active that day, on the scan queue, then the platform's own usage judged. Returns the
/// orders queued.
pub async fn run_anomaly_scan(app: &App, now: DateTime<Utc>) -> Result<Vec<ScanOrder>, ApiError> {
    let hour = last_hour(now);
    let store = store(app).await?;
    let day = hour.date_naive();
    let active = store.active_users(&[day]).await?;
    let users: Vec<String> = active
        .get(&day)
        .map(|list| list.iter().map(|u| u.user_id.clone()).collect())
        .unwrap_or_default();
    // The day window is judged once, on the run after the day ends (its last hour is 23:00).
    let daily = hour.hour() == 23;
    let orders: Vec<ScanOrder> = users
        .chunks(USERS_PER_ORDER)
        .map(|group| ScanOrder {
            hour,
            daily,
            users: group.to_vec(),
        })
        .collect();
    if !orders.is_empty() {
        let queue = require(
            &app.config().resources.anomaly_scan_queue_url,
            "ANOMALY_SCAN_QUEUE_URL",
        )?;
        sqs::send_json(app.sqs().await, queue, &orders).await?;
    }
    // The platform's own usage, judged here: a handful of reads over the system rollups.
    let system = scan_owner(app, &store, &Scope::System, hour, daily, now).await?;
    tracing::info!(
        hour = %hour.to_rfc3339(),
        users = users.len(),
        orders = orders.len(),
        daily,
        system_anomalies = system.map_or(0, |found| found.len()),
        "anomaly scan queued"
    );
    Ok(orders)
}

/// The rollup of each window start in `starts` (hours or days), one Query each.
async fn windows(
    store: &UsageStore,
    owner: &Scope,
    window: Window,
    starts: &[DateTime<Utc>],
) -> Result<Vec<Rollup>, ApiError> {
    let mut out = vec![];
    for start in starts {
        let cover = match window {
            Window::Hour => Cover {
                days: vec![],
                hours: vec![*start],
                ..Cover::default()
            },
            Window::Day => Cover {
                days: vec![start.date_naive()],
                ..Cover::default()
            },
        };
        let items = store.rollups(owner, &cover).await?;
        let mut sum = Rollup::default();
        for r in items.values() {
            sum.merge(r);
        }
        out.push(sum);
    }
    Ok(out)
}

/// The anomalies of `window` starting at `start`, given its rollup.
async fn judge_window(
    store: &UsageStore,
    owner: &Scope,
    window: Window,
    start: DateTime<Utc>,
    current: &Rollup,
    t: &Thresholds,
    now: DateTime<Utc>,
) -> Result<Vec<Anomaly>, ApiError> {
    let step = Duration::days(7);
    let starts: Vec<DateTime<Utc>> = (1..=t.baseline_weeks as i32)
        .map(|k| start - step * k)
        .collect();
    let baseline = windows(store, owner, window, &starts).await?;
    let candidates: Vec<Candidate> = observations(current, &baseline)
        .into_iter()
        .filter_map(|(driver, o)| judge(&o, t).map(|finding| Candidate { driver, finding }))
        .collect();
    Ok(pick(&candidates)
        .into_iter()
        .map(|(driver, endpoint, finding)| {
            Anomaly::new(window, start, driver, endpoint, finding, now)
        })
        .collect())
}

/// Judges `owner` (a user, or the platform) for the hour at `hour` (and its day when `daily`);
/// records what it finds and notifies the user (the platform's: the admins of
/// `AnomalyAdminUserIds`, if any). `None` when the owner was idle in the hour and no day is
/// judged: one read, no history.
async fn scan_owner(
    app: &App,
    store: &UsageStore,
    owner: &Scope,
    hour: DateTime<Utc>,
    daily: bool,
    now: DateTime<Utc>,
) -> Result<Option<Vec<Anomaly>>, ApiError> {
    let t = &app.config().anomaly;
    let current = windows(store, owner, Window::Hour, &[hour]).await?;
    let current = current.into_iter().next().unwrap_or_default();
    let mut found = vec![];
    let idle = current.total.requests == 0;
    if !idle {
        found.extend(judge_window(store, owner, Window::Hour, hour, &current, t, now).await?);
    }
    if daily {
        let day = hour.duration_trunc(Duration::days(1)).unwrap_or(hour);
        let today = windows(store, owner, Window::Day, &[day]).await?;
        let today = today.into_iter().next().unwrap_or_default();
        if today.total.requests > 0 {
            found.extend(judge_window(store, owner, Window::Day, day, &today, t, now).await?);
        }
    } else if idle {
        return Ok(None);
    }
    if found.is_empty() {
        return Ok(Some(found));
    }
    let quiet = store.quiets(owner, now).await?;
    found.retain(|a| !quiet.contains_key(&a.quiet_key()));
    let jobs: Vec<NotificationJob> = found
        .iter()
        .filter_map(|a| job(owner, &app.config().anomaly_admins, a))
        .collect();
    if !jobs.is_empty() {
        let queue = require(
            &app.config().resources.notification_jobs_queue_url,
            "NOTIFICATION_JOBS_QUEUE_URL",
        )?;
        sqs::send_json(app.sqs().await, queue, &jobs).await?;
    }
    for a in &found {
        store.record_anomaly(owner, a).await?;
        let who = match owner {
            Scope::User(user) => user.as_str(),
            Scope::System => "the platform",
        };
        tracing::info!(owner = who, anomaly = %a.id, message = %a.message, "anomaly");
    }
    Ok(Some(found))
}

/// The worker's work: judges every user of `order`, a few at a time.
pub async fn scan_users(
    app: &App,
    order: &ScanOrder,
    now: DateTime<Utc>,
) -> Result<ScanReport, ApiError> {
    let store = store(app).await?;
    let mut report = ScanReport::default();
    let users: Vec<UserId> = order
        .users
        .iter()
        .filter_map(|u| UserId::parse(u).ok())
        .collect();
    for group in users.chunks(PARALLEL_USERS) {
        let owners: Vec<Scope> = group.iter().cloned().map(Scope::User).collect();
        let results = futures::future::try_join_all(
            owners
                .iter()
                .map(|owner| scan_owner(app, &store, owner, order.hour, order.daily, now)),
        )
        .await?;
        for (user, result) in group.iter().zip(results) {
            report.users += 1;
            match result {
                None => report.idle += 1,
                Some(found) => report
                    .anomalies
                    .extend(found.into_iter().map(|a| (user.to_string(), a))),
            }
        }
    }
    let stats = store.stats();
    report.items_read = stats.items_read;
    report.read_units = stats.read_units;
    Ok(report)
}

/// The notification of one anomaly: a `warning` naming its driver and figures, to the user,
/// or for the platform's anomalies to `admins` (`None` when there are none).
pub fn job(owner: &Scope, admins: &[UserId], a: &Anomaly) -> Option<NotificationJob> {
    let figure = |v: f64| match a.metric {
        Metric::Cost => json!((v / 1e4).round() / 100.0),
        Metric::Requests => json!(v.round() as i64),
        Metric::ErrorRate => json!((v * 1e4).round() / 1e4),
    };
    let mut data = json!({
        "anomaly_id": a.id,
        "window": a.window.as_str(),
        "window_start": a.window_start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "metric": a.metric.as_str(),
        "driver": a.driver,
        "observed": figure(a.observed),
        "usual": figure(a.usual),
        "score": (a.score * 10.0).round() / 10.0,
    });
    if let Some(e) = &a.endpoint {
        data["endpoint"] = json!(e);
    }
    let (job_id, user_id, user_ids, message) = match owner {
        Scope::User(user) => (
            format!("anomaly:{}", a.id),
            Some(user.to_string()),
            None,
            format!("{}.", a.message),
        ),
        Scope::System => {
            if admins.is_empty() {
                return None;
            }
            data["system"] = json!(true);
            (
                format!("anomaly:system:{}", a.id),
                None,
                Some(admins.iter().map(UserId::to_string).collect()),
                format!("All users together — {}.", a.message),
            )
        }
    };
    Some(NotificationJob {
        job_id,
        user_id,
        user_ids,
        kind: "warning".into(),
        title: a.metric.title().into(),
        message,
        data: Some(data),
        channels: None,
    })
}

/// `anomaly-scan`: the hourly schedule.
pub fn anomaly_scan(app: Arc<App>, tick: Tick) -> ScheduleFuture {
    Box::pin(async move { run_anomaly_scan(&app, tick.at).await.map(|_| ()) })
}

/// `anomaly-worker`: `AnomalyScanQueue`'s consumer. A malformed order goes to the dead-letter
/// queue at once with its reason; a failed one is retried by SQS (what it already notified is
/// not notified twice) and dead-lettered after `QueueMaxReceiveCount` deliveries.
pub fn anomaly_worker(app: Arc<App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let batch = sqs::run_batch(&event.records, 1, |record| {
            let app = &app;
            async move {
                let body = record.body.as_deref().unwrap_or_default();
                let order = match parse_order(body) {
                    Ok(order) => order,
                    Err(why) => {
                        let dlq = require(
                            &app.config().resources.anomaly_scan_dlq_url,
                            "ANOMALY_SCAN_DLQ_URL",
                        )?;
                        sqs::dead_letter_record(app.sqs().await, dlq, record, &why).await?;
                        return Ok(Settled::Done(()));
                    }
                };
                let report = scan_users(app, &order, Utc::now())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                tracing::info!(
                    hour = %order.hour.to_rfc3339(),
                    users = report.users,
                    idle = report.idle,
                    items_read = report.items_read,
                    read_units = report.read_units,
                    anomalies = report.anomalies.len(),
                    "anomaly scan order"
                );
                Ok(Settled::Done(()))
            }
        })
        .await;
        batch.response
    })
}

/// An order as the schedule writes it: valid user ids, at most a few groups' worth.
fn parse_order(body: &str) -> Result<ScanOrder, String> {
    let order: ScanOrder =
        serde_json::from_str(body).map_err(|e| format!("not a scan order: {e}"))?;
    if order.users.len() > USERS_PER_ORDER * 4 {
        return Err(format!("{} users in one order", order.users.len()));
    }
    if let Some(bad) = order.users.iter().find(|u| UserId::parse(u).is_err()) {
        return Err(format!("user {bad:?} is not a user id"));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_orders_are_refused_with_their_reason() {
        assert!(parse_order("not json")
            .unwrap_err()
            .contains("not a scan order"));
        let bad_user = r#"{"hour":"2026-11-24T10:00:00Z","daily":false,"users":["a#b"]}"#;
        assert!(parse_order(bad_user).unwrap_err().contains("a#b"));
        let fine = r#"{"hour":"2026-11-24T10:00:00Z","daily":true,"users":["u1"]}"#;
        assert_eq!(parse_order(fine).unwrap().users, ["u1"]);
    }

    #[test]
    fn a_users_anomaly_tells_the_user_and_the_platforms_tells_the_admins_if_any() {
        use crate::analytics::anomaly::{Driver, Finding};
        let at: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        let finding = Finding {
            metric: Metric::Cost,
            observed: 41.2e6,
            usual: 3.1e6,
            score: 12.0,
        };
        let driver = Driver::Model {
            provider: "openai".into(),
            model: "gpt-4o".into(),
        };
        let a = Anomaly::new(Window::Hour, at, driver, None, finding, at);
        let user = UserId::parse("u1").unwrap();
        let own = job(&Scope::User(user), &[], &a).unwrap();
        assert_eq!(own.user_id.as_deref(), Some("u1"));
        assert_eq!(own.title, "Unusual spend");
        assert_eq!(
            own.message,
            "gpt-4o: $41.20 in the last hour against a usual $3.10."
        );
        assert_eq!(own.job_id, format!("anomaly:{}", a.id));
        assert!(job(&Scope::System, &[], &a).is_none());
        let ops = [UserId::parse("ops").unwrap()];
        let platform = job(&Scope::System, &ops, &a).unwrap();
        assert_eq!(platform.user_ids, Some(vec!["ops".to_owned()]));
        assert!(platform.message.starts_with("All users together — gpt-4o"));
    }

    #[test]
    fn the_last_hour_is_the_last_complete_one() {
        let at: DateTime<Utc> = "2026-11-24T10:05:00Z".parse().unwrap();
        assert_eq!(last_hour(at).to_rfc3339(), "2026-11-24T09:00:00+00:00");
    }
}
