//! What the alert tests share: the whole API with the ingest function queueing its notification
//! jobs on the test's own queue, and the dispatcher run until that queue is empty.

use std::time::Duration;

use meterbell_dev::poller::Consumer;
use meterbell_dev::stack::LocalStack;
use serde_json::{json, Value};

use super::{app_for, consumer, drain, queues, Queues, TestApi};

/// Held by every test that runs the hourly schedule: each run also checks the platform's
/// system-wide budgets, which all tests share, so two runs at once could each claim the other's
/// firing onto their own queue.
pub static SCHEDULE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct AlertHarness {
    pub api: TestApi,
    /// The ingest route, queueing jobs on `q.jobs`.
    pub ingest: TestApi,
    pub q: Queues,
}

impl AlertHarness {
    /// With the ingest function's environment changed by `extra`.
    pub async fn with(extra: &[(&str, &str)]) -> AlertHarness {
        let api = TestApi::spawn().await;
        let q = queues(&api.stack, 3).await;
        let mut overrides = vec![("NOTIFICATION_JOBS_QUEUE_URL", q.jobs.as_str())];
        overrides.extend_from_slice(extra);
        let ingest = api.function_with("UsageIngestFunction", &overrides);
        AlertHarness { api, ingest, q }
    }

    pub fn stack(&self) -> &LocalStack {
        &self.api.stack
    }

    /// Posts one batch through `POST usage/events`; panics unless it is a 200.
    pub async fn post(&self, events: &[Value]) -> Value {
        let reply = self
            .ingest
            .as_service()
            .post_events(&json!({ "events": events }))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        reply.json
    }

    /// Posts `events` through an ingest function whose jobs queue is unreachable, so the batch
    /// commits and then cannot queue its notification — as a crash in between would leave it;
    /// panics unless the answer is a 500.
    pub async fn post_then_crash(&self, events: &[Value]) {
        let broken = self.api.function_with(
            "UsageIngestFunction",
            &[(
                "NOTIFICATION_JOBS_QUEUE_URL",
                "http://127.0.0.1:1/123456789012/missing",
            )],
        );
        let reply = broken
            .as_service()
            .post_events(&json!({ "events": events }))
            .await;
        assert_eq!(reply.status, 500, "{}", reply.json);
    }

    /// Runs the hourly schedule as of `at`, with its jobs on the harness's queue and its work on
    /// `work`.
    pub async fn run_schedule(&self, work: &str, at: chrono::DateTime<chrono::Utc>) {
        let app = app_for(
            self.stack(),
            "AlertRulesScheduleFunction",
            &self.q,
            &[("ALERT_RULES_QUEUE_URL", work)],
        );
        let Some(meterbell::functions::Handler::Schedule(run)) =
            meterbell::functions::by_binary("alert-rules-schedule")
        else {
            panic!("alert-rules-schedule is not a scheduled handler");
        };
        run(
            app,
            meterbell::platform::handler::Tick {
                at,
                id: "test".into(),
            },
        )
        .await
        .unwrap();
    }

    pub fn dispatcher(&self) -> Consumer {
        consumer(
            self.stack(),
            "NotificationDispatcherFunction",
            &self.q.jobs,
            app_for(self.stack(), "NotificationDispatcherFunction", &self.q, &[]),
        )
    }

    /// Runs the dispatcher until the jobs queue is empty, then `user`'s notifications whose
    /// title `matches`, oldest first.
    pub async fn notifications(&self, user: &str, matches: impl Fn(&str) -> bool) -> Vec<Value> {
        drain(self.stack(), &[self.dispatcher()], Duration::from_secs(20)).await;
        let mut inbox: Vec<Value> = self
            .api
            .as_user(user)
            .whole_inbox("")
            .await
            .into_iter()
            .filter(|n| matches(n["title"].as_str().unwrap_or("")))
            .collect();
        inbox.reverse();
        inbox
    }
}
