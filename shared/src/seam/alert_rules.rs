//! Metric alert rules, evaluated on a schedule: the hourly firing of `AlertRulesScheduleFunction`
//! pages through the registry of users with rules and queues them, 25 to a message, on
//! `AlertRulesQueue`; `AlertRulesEvaluatorFunction` evaluates each user of a message. So a run
//! reads nothing of users without rules, and its work spreads over as many invocations as the
//! population needs.
//!
//! One user's evaluation: one read of the rules item, then each rule's window of hourly rollups
//! (and for a drop the same window a week earlier), each distinct window read once. A transition
//! is *claimed* — state moved and the transition parked as pending, in one write conditioned on
//! the version read, with its history entry — before its job is queued; then the pending list
//! is cleared. A crash after the claim leaves it pending, and the next evaluation queues it again
//! under the same job id, which the dispatcher turns into one notification. Overlapping runs and
//! redelivered messages race on that one conditional write, so each transition notifies once.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::analytics::alert_rule::{
    percent_number, percent_text, window, Measure, Rule, RuleKind, Status, Transition,
};
use crate::analytics::ingest::rollups_store;
use crate::analytics::period::cover;
use crate::analytics::rollup::Rollup;
use crate::analytics::store::{Registry, Scope, UsageStore};
use crate::notifications::jobs::NotificationJob;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::keys::RULE_USER_SHARDS;
use crate::platform::dynamodb::StoreError;
use crate::platform::error::ApiError;
use crate::platform::handler::{ScheduleFuture, SqsFuture, Tick};
use crate::platform::sqs::{self, Settled};

/// Users per work message: a message's users are evaluated in one invocation, well inside its
/// timeout (a user takes one rules read and a few rollup Queries).
pub const USERS_PER_MESSAGE: usize = 25;
/// Users of one message evaluated at once.
const USERS_IN_PARALLEL: usize = 8;
/// Rounds of read-decide-write one user may take when other writers keep moving the rules.
const MAX_ROUNDS: usize = 8;

/// One work message: evaluate these users as of `at`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Work {
    pub at: DateTime<Utc>,
    pub users: Vec<String>,
}

/// The deterministic id of a transition's notification.
pub fn job_id(t: &Transition) -> String {
    format!(
        "rule:{}:{}:{}:{}",
        t.rule.id,
        t.rule.rev,
        t.rule.epoch,
        t.rule.status.as_str()
    )
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The measure in words ("7.9%", "2,140 ms").
fn shown(kind: RuleKind, v: i64) -> String {
    match kind {
        RuleKind::ErrorRate | RuleKind::RequestsDrop => percent_text(v),
        RuleKind::LatencyP95 => format!("{v} ms"),
    }
}

fn number(kind: RuleKind, v: i64) -> Value {
    match kind {
        RuleKind::ErrorRate | RuleKind::RequestsDrop => json!(percent_number(v)),
        RuleKind::LatencyP95 => json!(v),
    }
}

fn what(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::ErrorRate => "Error rate",
        RuleKind::LatencyP95 => "p95 latency",
        RuleKind::RequestsDrop => "Requests",
    }
}

/// The fields every record of a transition carries: the notification's `data`, the history
/// entry and the preview.
pub fn facts(t: &Transition) -> Value {
    let r = &t.rule;
    let m = &t.measure;
    let mut data = json!({
        "rule_id": r.id,
        "kind": r.kind.as_str(),
        "status": r.status.as_str(),
        "window_hours": r.window_hours,
        "window_start": stamp(t.window_start),
        "window_end": stamp(t.window_end),
        "requests": m.requests,
        "errors": m.errors,
        "min_requests": r.min_requests,
    });
    let (value_key, limit_key) = match r.kind {
        RuleKind::ErrorRate => ("error_rate_percent", "threshold_percent"),
        RuleKind::LatencyP95 => ("p95_ms", "threshold_ms"),
        RuleKind::RequestsDrop => ("drop_percent", "threshold_percent"),
    };
    if let Some(obj) = data.as_object_mut() {
        obj.insert(
            value_key.into(),
            m.value.map_or(Value::Null, |v| number(r.kind, v)),
        );
        obj.insert(limit_key.into(), number(r.kind, r.limit));
        if let Some(base) = m.baseline_requests {
            obj.insert("baseline_requests".into(), json!(base));
        }
        for (k, v) in [
            ("provider", &r.filter.provider),
            ("model", &r.filter.model),
            ("endpoint", &r.filter.endpoint),
        ] {
            if let Some(v) = v {
                obj.insert(k.into(), json!(v));
            }
        }
    }
    data
}

/// The notification of one transition: a `warning` on a breach, a `success` on recovery, each
/// saying what was measured, against what, over which hours.
pub fn job(user: &UserId, t: &Transition) -> NotificationJob {
    let r = &t.rule;
    let m = &t.measure;
    let value = m.value.map_or("n/a".to_owned(), |v| shown(r.kind, v));
    let limit = shown(r.kind, r.limit);
    let scope = r.scope_text();
    let hours = if r.window_hours == 1 {
        "hour".to_owned()
    } else {
        format!("{} hours", r.window_hours)
    };
    let until = t.window_end.format("%H:%M UTC");
    let (kind, title, message) = match (r.status, r.kind) {
        (Status::Breached, RuleKind::RequestsDrop) => (
            "warning",
            format!("Requests down {value} {scope}"),
            format!(
                "{} requests in the {hours} to {until}, against {} in the same hours a week \
                 earlier: down {value}, more than the {limit} of rule {}.",
                m.requests,
                m.baseline_requests.unwrap_or(0),
                r.id
            ),
        ),
        (Status::Breached, _) => (
            "warning",
            format!("{} above {limit} {scope}", what(r.kind)),
            format!(
                "{} was {value} over the {hours} to {until} ({} errors in {} requests), above \
                 the {limit} of rule {}.",
                what(r.kind),
                m.errors,
                m.requests,
                r.id
            ),
        ),
        (Status::Ok, RuleKind::RequestsDrop) => (
            "success",
            format!("Recovered: requests {scope}"),
            format!(
                "{} requests in the {hours} to {until}, against {} a week earlier: back within \
                 the {limit} drop of rule {}.",
                m.requests,
                m.baseline_requests.unwrap_or(0),
                r.id
            ),
        ),
        (Status::Ok, _) => (
            "success",
            format!("Recovered: {} {scope}", what(r.kind).to_lowercase()),
            format!(
                "{} is back to {value} over the {hours} to {until} ({} requests), within the \
                 {limit} of rule {}.",
                what(r.kind),
                m.requests,
                r.id
            ),
        ),
    };
    NotificationJob {
        job_id: job_id(t),
        user_id: Some(user.to_string()),
        user_ids: None,
        kind: kind.to_owned(),
        title,
        message,
        data: Some(facts(t)),
        channels: None,
    }
}

/// Summed rollups of windows, each read once however many rules share it.
#[derive(Default)]
pub struct Windows {
    read: BTreeMap<(DateTime<Utc>, DateTime<Utc>), Rollup>,
}

impl Windows {
    pub async fn of(
        &mut self,
        store: &UsageStore,
        user: &UserId,
        w: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<&Rollup, StoreError> {
        use std::collections::btree_map::Entry;
        match self.read.entry(w) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let buckets = store
                    .rollups(&Scope::User(user.clone()), &cover(w.0, w.1))
                    .await?;
                let mut sum = Rollup::default();
                for r in buckets.values() {
                    sum.merge(r);
                }
                Ok(e.insert(sum))
            }
        }
    }
}

/// Measures `rule` as of `at`: its window, and for a drop the same window a week earlier.
pub async fn measure(
    store: &UsageStore,
    user: &UserId,
    windows: &mut Windows,
    rule: &Rule,
    at: DateTime<Utc>,
) -> Result<(Measure, (DateTime<Utc>, DateTime<Utc>)), StoreError> {
    let w = window(at, rule.window_hours);
    let before = if rule.kind == RuleKind::RequestsDrop {
        let week = Duration::days(7);
        Some(
            windows
                .of(store, user, (w.0 - week, w.1 - week))
                .await?
                .clone(),
        )
    } else {
        None
    };
    let now = windows.of(store, user, w).await?;
    Ok((rule.measure(now, before.as_ref()), w))
}

/// Evaluates every rule of `user` as of `at`, notifying each transition once.
pub async fn evaluate_user(
    app: &App,
    store: &UsageStore,
    user: &UserId,
    at: DateTime<Utc>,
) -> Result<usize, ApiError> {
    for _ in 0..MAX_ROUNDS {
        let book = store.alert_rules(user, true).await?;
        if !book.pending.is_empty() {
            queue(app, user, &book.pending).await?;
            store.clear_pending_transitions(user, book.version).await?;
            continue;
        }
        let mut rules = book.rules;
        let mut windows = Windows::default();
        let mut transitions = vec![];
        for rule in &mut rules {
            if !rule.decides(window(at, rule.window_hours).1) {
                continue;
            }
            let (m, (start, end)) = measure(store, user, &mut windows, rule, at).await?;
            let Some(to) = rule.transition(&m) else {
                continue;
            };
            rule.status = to;
            rule.epoch += 1;
            rule.decided_through = Some(end);
            transitions.push(Transition {
                rule: rule.clone(),
                measure: m,
                window_start: start,
                window_end: end,
                at,
            });
        }
        if transitions.is_empty() {
            return Ok(0);
        }
        let history: Vec<(DateTime<Utc>, String, Value)> = transitions
            .iter()
            .map(|t| {
                let mut entry = facts(t);
                entry["kind"] = json!("rule");
                entry["rule_kind"] = json!(t.rule.kind.as_str());
                entry["at"] = json!(stamp(t.at));
                (
                    t.at,
                    format!("RULE#{}#{}#{}", t.rule.id, t.rule.rev, t.rule.epoch),
                    entry,
                )
            })
            .collect();
        if store
            .save_alert_rules(
                user,
                book.version,
                &rules,
                &transitions,
                &history,
                Registry::Leave,
            )
            .await?
        {
            tracing::info!(user = %user, transitions = transitions.len(), "alert rule transitions claimed");
            queue(app, user, &transitions).await?;
            store
                .clear_pending_transitions(user, book.version + 1)
                .await?;
            return Ok(transitions.len());
        }
    }
    Err(StoreError::Contention(format!("alert rules of {user}")).into())
}

async fn queue(app: &App, user: &UserId, transitions: &[Transition]) -> Result<(), ApiError> {
    let jobs: Vec<NotificationJob> = transitions.iter().map(|t| job(user, t)).collect();
    let queue = require(
        &app.config().resources.notification_jobs_queue_url,
        "NOTIFICATION_JOBS_QUEUE_URL",
    )?;
    sqs::send_json(app.sqs().await, queue, &jobs).await?;
    Ok(())
}

/// `alert-rules-schedule`: the system-wide budgets checked, then every user with rules queued
/// for evaluation as of the firing's time, [`USERS_PER_MESSAGE`] to a message. Two runs of one firing queue the same work, which the
/// evaluation's conditional writes make harmless.
pub fn schedule(app: Arc<App>, tick: Tick) -> ScheduleFuture {
    Box::pin(async move {
        let store = rollups_store(&app).await?;
        // The platform's own budgets ride on the same hourly run (see `watch_system_budgets`).
        crate::seam::watch_system_budgets(&app, &store, tick.at).await?;
        let queue = require(
            &app.config().resources.alert_rules_queue_url,
            "ALERT_RULES_QUEUE_URL",
        )?
        .to_owned();
        let mut users_total = 0;
        let mut messages = 0;
        for shard in 0..RULE_USER_SHARDS {
            let mut pages = std::pin::pin!(store.rule_users(shard)?);
            while let Some(page) = pages.try_next().await? {
                let work: Vec<Work> = page
                    .users
                    .chunks(USERS_PER_MESSAGE)
                    .map(|users| Work {
                        at: tick.at,
                        users: users.iter().map(UserId::to_string).collect(),
                    })
                    .collect();
                users_total += page.users.len();
                messages += work.len();
                sqs::send_json(app.sqs().await, &queue, &work).await?;
            }
        }
        let stats = store.stats();
        tracing::info!(
            users = users_total,
            messages,
            read_units = stats.read_units,
            "alert rule evaluations queued"
        );
        Ok(())
    })
}

/// `alert-rules-evaluator`, the consumer of `AlertRulesQueue`: evaluates the users of each
/// message. A malformed message goes to the dead-letter queue at once with its reason; a user
/// whose evaluation fails fails its message, which SQS delivers again (users already evaluated
/// find nothing left to do).
pub fn evaluator(app: Arc<App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let batch = sqs::run_batch(&event.records, 2, |record| {
            let app = &app;
            async move {
                let body = record.body.as_deref().unwrap_or_default();
                let work = match parse_work(body) {
                    Ok(w) => w,
                    Err(why) => {
                        let dlq = require(
                            &app.config().resources.alert_rules_dlq_url,
                            "ALERT_RULES_DLQ_URL",
                        )?;
                        sqs::dead_letter_record(app.sqs().await, dlq, record, &why).await?;
                        return Ok(Settled::Done(0));
                    }
                };
                let store = rollups_store(app).await?;
                let mut transitions = 0;
                for group in work.1.chunks(USERS_IN_PARALLEL) {
                    let done = futures::future::try_join_all(
                        group.iter().map(|u| evaluate_user(app, &store, u, work.0)),
                    )
                    .await?;
                    transitions += done.iter().sum::<usize>();
                }
                let stats = store.stats();
                tracing::info!(
                    users = work.1.len(),
                    transitions,
                    items_read = stats.items_read,
                    read_units = stats.read_units,
                    write_units = stats.write_units,
                    "alert rules evaluated"
                );
                Ok(Settled::Done(transitions))
            }
        })
        .await;
        batch.response
    })
}

fn parse_work(body: &str) -> Result<(DateTime<Utc>, Vec<UserId>), String> {
    let work: Work = serde_json::from_str(body).map_err(|e| format!("not a work message: {e}"))?;
    if work.users.len() > USERS_PER_MESSAGE * 4 {
        return Err(format!("{} users in one message", work.users.len()));
    }
    let users = work
        .users
        .iter()
        .map(|u| UserId::parse(u).map_err(|e| format!("user {u:?}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok((work.at, users))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::budget::Filter;
    use crate::notifications::jobs::Job;

    fn transition(status: Status, kind: RuleKind, value: i64) -> Transition {
        let at: DateTime<Utc> = "2026-11-24T10:02:00Z".parse().unwrap();
        Transition {
            rule: Rule {
                id: "chat-errors".into(),
                kind,
                limit: 500,
                window_hours: 3,
                min_requests: 50,
                filter: Filter {
                    endpoint: Some("/v1/chat".into()),
                    ..Filter::default()
                },
                created_at: at,
                updated_at: at,
                rev: 4,
                status,
                epoch: 1,
                decided_through: None,
            },
            measure: Measure {
                value: Some(value),
                requests: 1_000,
                errors: 79,
                baseline_requests: (kind == RuleKind::RequestsDrop).then_some(2_000),
            },
            window_start: "2026-11-24T07:00:00Z".parse().unwrap(),
            window_end: "2026-11-24T10:00:00Z".parse().unwrap(),
            at,
        }
    }

    #[test]
    fn a_breach_says_what_was_measured_against_what() {
        let user = UserId::parse("u1").unwrap();
        let job = job(
            &user,
            &transition(Status::Breached, RuleKind::ErrorRate, 790),
        );
        assert_eq!(job.job_id, "rule:chat-errors:4:1:breached");
        assert_eq!(job.kind, "warning");
        assert_eq!(job.title, "Error rate above 5% on /v1/chat");
        assert!(
            job.message.contains(
                "Error rate was 7.9% over the 3 hours to 10:00 UTC (79 errors in 1000 requests), \
                 above the 5% of rule chat-errors."
            ),
            "{}",
            job.message
        );
        let data = job.data.clone().unwrap();
        assert_eq!(data["error_rate_percent"], json!(7.9));
        assert_eq!(data["threshold_percent"], json!(5.0));
        assert_eq!(data["endpoint"], json!("/v1/chat"));
        assert_eq!(data["window_start"], json!("2026-11-24T07:00:00Z"));
        Job::validate(job).unwrap();
    }

    #[test]
    fn a_recovery_is_one_success_notice() {
        let user = UserId::parse("u1").unwrap();
        let job = job(&user, &transition(Status::Ok, RuleKind::ErrorRate, 40));
        assert_eq!(job.job_id, "rule:chat-errors:4:1:ok");
        assert_eq!(job.kind, "success");
        assert_eq!(job.title, "Recovered: error rate on /v1/chat");
        Job::validate(job).unwrap();
        let drop = super::job(
            &user,
            &transition(Status::Breached, RuleKind::RequestsDrop, 5_000),
        );
        assert_eq!(drop.title, "Requests down 50% on /v1/chat");
        assert!(drop
            .message
            .contains("against 2000 in the same hours a week earlier"));
        assert_eq!(drop.data.unwrap()["baseline_requests"], json!(2_000));
    }

    #[test]
    fn work_messages_are_checked_before_anything_is_read() {
        assert!(parse_work("{}").is_err());
        assert!(parse_work(r#"{"at":"2026-11-24T10:00:00Z","users":["a#b"]}"#).is_err());
        let (at, users) =
            parse_work(r#"{"at":"2026-11-24T10:00:00Z","users":["u1","u2"]}"#).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-24T10:00:00+00:00");
        assert_eq!(users.len(), 2);
    }
}
