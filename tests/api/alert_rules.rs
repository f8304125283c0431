//! Metric alert rules (README, "Metric alert rules"): `GET/PUT/DELETE /alerts/rules[/{id}]`, the
//! hourly evaluation (schedule → AlertRulesQueue → evaluator), one notification per breach and
//! one per recovery whatever the overlap of runs, the alert history and the 90-day preview. Each
//! test has its own NotificationJobsQueue and AlertRulesQueue.

use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use meterbell_dev::poller::Consumer;
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{
    app_for, consumer, drain, queue_pair, send, AlertHarness, UsageEventBuilder, SCHEDULE,
};

struct Rules {
    h: AlertHarness,
    work: String,
    evaluator: Consumer,
    /// The start of the current hour: events go into the hour before it or into it.
    hour: DateTime<Utc>,
}

impl std::ops::Deref for Rules {
    type Target = AlertHarness;

    fn deref(&self) -> &AlertHarness {
        &self.h
    }
}

impl Rules {
    async fn new() -> Rules {
        Rules::with_jobs_queue(None).await
    }

    /// With the evaluator queueing its jobs on `jobs` instead of the harness's queue.
    async fn with_jobs_queue(jobs: Option<&str>) -> Rules {
        let h = AlertHarness::with(&[]).await;
        let (work, work_dlq) = queue_pair(&h.stack().clients.sqs, "rules", 3, 1).await;
        let jobs = jobs.unwrap_or(&h.q.jobs).to_owned();
        let app = app_for(
            h.stack(),
            "AlertRulesEvaluatorFunction",
            &h.q,
            &[
                ("NOTIFICATION_JOBS_QUEUE_URL", &jobs),
                ("ALERT_RULES_DLQ_URL", &work_dlq),
            ],
        );
        let evaluator = consumer(h.stack(), "AlertRulesEvaluatorFunction", &work, app);
        let now = Utc::now();
        let hour = now.duration_trunc(chrono::Duration::hours(1)).unwrap();
        Rules {
            h,
            work,
            evaluator,
            hour,
        }
    }

    async fn put(&self, user: &str, id: &str, body: Value) -> Value {
        let reply = self
            .api
            .as_user(user)
            .put(&format!("/alerts/rules/{id}"), &body)
            .await;
        assert!([200, 201].contains(&reply.status), "{}", reply.json);
        reply.json
    }

    /// `n` requests of `user` at `at` on `endpoint`, `errors` of them answered 500.
    async fn requests(&self, user: &str, at: DateTime<Utc>, n: usize, errors: usize) {
        let events: Vec<Value> = (0..n)
            .map(|i| {
                UsageEventBuilder::request()
                    .user(user)
                    .at(at)
                    .status_code(if i < errors { 500 } else { 200 })
                    .build()
            })
            .collect();
        for chunk in events.chunks(100) {
            self.post(chunk).await;
        }
    }

    /// Runs the evaluation of `users` as of `at` through AlertRulesQueue and its consumer.
    async fn evaluate(&self, users: &[&str], at: DateTime<Utc>) {
        let body = json!({"at": at.to_rfc3339(), "users": users}).to_string();
        send(self.stack(), &self.work, &body).await;
        drain(
            self.stack(),
            std::slice::from_ref(&self.evaluator),
            Duration::from_secs(20),
        )
        .await;
    }

    /// Runs the dispatcher, then the user's rule notifications, oldest first.
    async fn alerts(&self, user: &str) -> Vec<Value> {
        self.notifications(user, |t| {
            !t.starts_with("Budget") && !t.contains("Credit") && !t.starts_with("Low")
        })
        .await
    }

    fn two_past(&self, hours: i64) -> DateTime<Utc> {
        self.hour + chrono::Duration::hours(hours) + chrono::Duration::minutes(2)
    }
}

fn titles(alerts: &[Value]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_owned(),
                n["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_user_creates_lists_replaces_and_deletes_a_rule() {
    let t = Rules::new().await;
    let u = unique_user("rule-crud");

    let created = t
        .api
        .as_user(&u)
        .put(
            "/alerts/rules/chat-errors",
            &json!({"kind": "error_rate", "threshold_percent": 2.5, "window_hours": 3, "endpoint": "/v1/chat"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json["threshold_percent"], json!(2.5));
    assert_eq!(created.json["min_requests"], 50);
    assert_eq!(created.json["endpoint"], "/v1/chat");
    assert_eq!(created.json["status"], "ok");

    let replaced = t
        .api
        .as_user(&u)
        .put(
            "/alerts/rules/chat-errors",
            &json!({"kind": "latency_p95", "threshold_ms": 1500}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    assert_eq!(replaced.json["threshold_ms"], 1500);
    assert!(replaced.json.get("threshold_percent").is_none());

    let list = t.api.as_user(&u).get("/alerts/rules").await;
    assert_eq!(list.json["total"], 1, "{}", list.json);
    assert_eq!(list.json["rules"][0]["kind"], "latency_p95");
    let someone_else = t
        .api
        .as_user(&unique_user("rule-other"))
        .get("/alerts/rules")
        .await;
    assert_eq!(someone_else.json["total"], 0);
    let by_admin = t
        .api
        .as_admin()
        .get(&format!("/alerts/rules?user_id={u}"))
        .await;
    assert_eq!(by_admin.json["total"], 1);

    assert_eq!(
        t.api
            .as_user(&u)
            .delete("/alerts/rules/chat-errors")
            .await
            .status,
        204
    );
    assert_eq!(
        t.api
            .as_user(&u)
            .delete("/alerts/rules/chat-errors")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn bad_rules_are_refused_naming_the_field_and_nothing_is_stored() {
    let t = Rules::new().await;
    let u = unique_user("rule-bad");
    for (body, field) in [
        (
            json!({"kind": "cost_spike", "threshold_percent": 5}),
            "kind",
        ),
        (
            json!({"kind": "error_rate", "threshold_percent": 0}),
            "threshold_percent",
        ),
        (
            json!({"kind": "error_rate", "threshold_percent": 1001}),
            "threshold_percent",
        ),
        (
            json!({"kind": "latency_p95", "threshold_ms": -1}),
            "threshold_ms",
        ),
        (
            json!({"kind": "error_rate", "threshold_percent": 5, "window_hours": 0}),
            "window_hours",
        ),
        (
            json!({"kind": "error_rate", "threshold_percent": 5, "endpoint": "/a", "provider": "p"}),
            "endpoint",
        ),
    ] {
        let reply = t.api.as_user(&u).put("/alerts/rules/r1", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.json);
        assert_eq!(
            reply.json["error"]["field"], field,
            "{body}: {}",
            reply.json
        );
    }
    let unknown_scope = t
        .api
        .as_user(&u)
        .put(
            "/alerts/rules/r1",
            &json!({"kind": "error_rate", "threshold_percent": 5, "team": "search"}),
        )
        .await;
    assert_eq!(unknown_scope.status, 400, "{}", unknown_scope.json);
    assert!(unknown_scope.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("team"));
    let reserved = t
        .api
        .as_user(&u)
        .put(
            "/alerts/rules/preview",
            &json!({"kind": "error_rate", "threshold_percent": 5}),
        )
        .await;
    // `/alerts/rules/preview` is the preview's own resource: API Gateway (and the local
    // runner) answers a PUT there as an unknown route.
    assert_eq!(reserved.status, 403, "{}", reserved.json);
    assert_eq!(
        t.api.as_user(&u).get("/alerts/rules").await.json["total"],
        0
    );

    for i in 0..20 {
        t.put(
            &u,
            &format!("r{i}"),
            json!({"kind": "error_rate", "threshold_percent": 5}),
        )
        .await;
    }
    let over = t
        .api
        .as_user(&u)
        .put(
            "/alerts/rules/r20",
            &json!({"kind": "error_rate", "threshold_percent": 5}),
        )
        .await;
    assert_eq!(over.status, 409, "{}", over.json);
    assert_eq!(
        t.api.as_user(&u).get("/alerts/rules").await.json["total"],
        20
    );
}

#[tokio::test]
async fn an_error_rate_breach_notifies_once_and_its_recovery_once() {
    let t = Rules::new().await;
    let u = unique_user("rule-errors");
    t.put(
        &u,
        "errors",
        json!({"kind": "error_rate", "threshold_percent": 5, "min_requests": 20}),
    )
    .await;
    // Last hour: 6 errors in 60 requests (10%).
    t.requests(&u, t.hour - chrono::Duration::minutes(30), 60, 6)
        .await;

    t.evaluate(&[&u], t.two_past(0)).await;
    t.evaluate(&[&u], t.two_past(0)).await;
    let breached = t.alerts(&u).await;
    assert_eq!(
        titles(&breached),
        [("warning".into(), "Error rate above 5% overall".into())]
    );
    let data = &breached[0]["data"];
    assert_eq!(data["error_rate_percent"], json!(10.0));
    assert_eq!(data["requests"], 60);
    assert_eq!(data["errors"], 6);
    assert_eq!(data["threshold_percent"], json!(5.0));

    // This hour: healthy traffic; the next run recovers, once.
    t.requests(&u, t.hour, 40, 0).await;
    t.evaluate(&[&u], t.two_past(1)).await;
    t.evaluate(&[&u], t.two_past(1)).await;
    let all = t.alerts(&u).await;
    assert_eq!(
        titles(&all)[1..],
        [("success".into(), "Recovered: error rate overall".into())]
    );
    assert_eq!(
        t.api.as_user(&u).get("/alerts/rules").await.json["rules"][0]["status"],
        "ok"
    );

    let history = t.api.as_user(&u).get("/alerts").await;
    assert_eq!(history.status, 200, "{}", history.json);
    let entries = history.json["alerts"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", history.json);
    assert_eq!(entries[0]["status"], "ok", "newest first");
    assert_eq!(entries[1]["status"], "breached");
    assert_eq!(entries[1]["kind"], "rule");
    assert_eq!(entries[1]["rule_id"], "errors");
}

#[tokio::test]
async fn too_few_requests_decide_nothing() {
    let t = Rules::new().await;
    let u = unique_user("rule-few");
    t.put(
        &u,
        "errors",
        json!({"kind": "error_rate", "threshold_percent": 5}),
    )
    .await;
    t.requests(&u, t.hour - chrono::Duration::minutes(30), 10, 10)
        .await;

    t.evaluate(&[&u], t.two_past(0)).await;

    assert!(t.alerts(&u).await.is_empty());
}

#[tokio::test]
async fn overlapping_runs_and_redelivered_work_notify_once() {
    let t = Rules::new().await;
    let u = unique_user("rule-race");
    t.put(
        &u,
        "errors",
        json!({"kind": "error_rate", "threshold_percent": 5, "min_requests": 10}),
    )
    .await;
    t.requests(&u, t.hour - chrono::Duration::minutes(30), 20, 10)
        .await;

    // Six copies of the same work at once, as overlapping runs and redeliveries would queue.
    for _ in 0..6 {
        send(
            t.stack(),
            &t.work,
            &json!({"at": t.two_past(0).to_rfc3339(), "users": [u]}).to_string(),
        )
        .await;
    }
    let app = t.evaluator.app.clone();
    let racers: Vec<_> = (0..6)
        .map(|_| {
            let c = consumer(
                t.stack(),
                "AlertRulesEvaluatorFunction",
                &t.work,
                app.clone(),
            );
            let sqs = t.stack().clients.sqs.clone();
            tokio::spawn(async move { c.poll_once(&sqs, Duration::ZERO).await.unwrap() })
        })
        .collect();
    for r in racers {
        r.await.unwrap();
    }
    drain(
        t.stack(),
        std::slice::from_ref(&t.evaluator),
        Duration::from_secs(20),
    )
    .await;

    assert_eq!(t.alerts(&u).await.len(), 1);

    // A late copy of an older hour's work cannot undo the newer decision.
    t.evaluate(&[&u], t.two_past(-1)).await;
    assert_eq!(t.alerts(&u).await.len(), 1);
}

#[tokio::test]
async fn a_crash_after_the_claim_is_notified_by_the_next_run() {
    let crashing = Rules::with_jobs_queue(Some("http://127.0.0.1:1/123456789012/missing")).await;
    let u = unique_user("rule-crash");
    crashing
        .put(
            &u,
            "errors",
            json!({"kind": "error_rate", "threshold_percent": 5, "min_requests": 10}),
        )
        .await;
    crashing
        .requests(&u, crashing.hour - chrono::Duration::minutes(30), 20, 10)
        .await;
    let body = json!({"at": crashing.two_past(0).to_rfc3339(), "users": [u]}).to_string();
    send(crashing.stack(), &crashing.work, &body).await;
    let (_, failed) = crashing
        .evaluator
        .poll_once(&crashing.stack().clients.sqs, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        failed, 1,
        "the claim committed, the job could not be queued"
    );

    // The next run (a working one) finds the transition pending and queues it.
    let healthy = app_for(
        crashing.stack(),
        "AlertRulesEvaluatorFunction",
        &crashing.q,
        &[],
    );
    let store = meterbell::analytics::ingest::rollups_store(&healthy)
        .await
        .unwrap();
    let user = meterbell::platform::domain::UserId::parse(&u).unwrap();
    meterbell::seam::alert_rules::evaluate_user(&healthy, &store, &user, crashing.two_past(0))
        .await
        .unwrap();
    meterbell::seam::alert_rules::evaluate_user(&healthy, &store, &user, crashing.two_past(0))
        .await
        .unwrap();

    assert_eq!(titles(&crashing.alerts(&u).await).len(), 1);
}

#[tokio::test]
async fn a_latency_rule_watches_its_own_endpoint() {
    let t = Rules::new().await;
    let u = unique_user("rule-latency");
    t.put(
        &u,
        "slow-chat",
        json!({"kind": "latency_p95", "threshold_ms": 1000, "endpoint": "/v1/chat", "min_requests": 3}),
    )
    .await;
    t.put(
        &u,
        "slow-all",
        json!({"kind": "latency_p95", "threshold_ms": 1000, "min_requests": 5}),
    )
    .await;
    let at = t.hour - chrono::Duration::minutes(20);
    let mut events: Vec<Value> = (0..4)
        .map(|_| {
            UsageEventBuilder::request()
                .user(&u)
                .at(at)
                .endpoint("/v1/chat")
                .latency_ms(3000)
                .build()
        })
        .collect();
    events.extend((0..96).map(|_| {
        UsageEventBuilder::request()
            .user(&u)
            .at(at)
            .endpoint("/v1/embeddings")
            .latency_ms(40)
            .build()
    }));
    t.post(&events).await;

    t.evaluate(&[&u], t.two_past(0)).await;

    let alerts = t.alerts(&u).await;
    assert_eq!(
        titles(&alerts),
        [(
            "warning".into(),
            "p95 latency above 1000 ms on /v1/chat".into()
        )]
    );
    assert!(alerts[0]["data"]["p95_ms"].as_i64().unwrap() > 2800);
}

#[tokio::test]
async fn requests_down_against_the_same_hours_a_week_earlier() {
    let t = Rules::new().await;
    let u = unique_user("rule-drop");
    t.put(
        &u,
        "traffic",
        json!({"kind": "requests_drop", "threshold_percent": 50, "window_hours": 1, "min_requests": 20}),
    )
    .await;
    let week = chrono::Duration::days(7);
    t.requests(&u, t.hour - week - chrono::Duration::minutes(30), 40, 0)
        .await;
    t.requests(&u, t.hour - chrono::Duration::minutes(30), 10, 0)
        .await;

    t.evaluate(&[&u], t.two_past(0)).await;

    let alerts = t.alerts(&u).await;
    assert_eq!(
        titles(&alerts),
        [("warning".into(), "Requests down 75% overall".into())]
    );
    assert_eq!(alerts[0]["data"]["baseline_requests"], 40);
}

#[tokio::test]
async fn the_hourly_schedule_queues_every_user_with_rules_for_the_evaluator() {
    let t = Rules::new().await;
    let u = unique_user("rule-schedule");
    t.put(
        &u,
        "errors",
        json!({"kind": "error_rate", "threshold_percent": 5, "min_requests": 10}),
    )
    .await;
    t.requests(&u, t.hour - chrono::Duration::minutes(30), 20, 5)
        .await;
    let _only_run = SCHEDULE.lock().await;

    t.run_schedule(&t.work, t.two_past(0)).await;
    drain(
        t.stack(),
        std::slice::from_ref(&t.evaluator),
        Duration::from_secs(60),
    )
    .await;

    assert_eq!(
        titles(&t.alerts(&u).await),
        [("warning".into(), "Error rate above 5% overall".into())]
    );
}

#[tokio::test]
async fn the_preview_replays_the_rule_over_the_last_90_days_without_storing_it() {
    let t = Rules::new().await;
    let u = unique_user("rule-preview");
    // Two bad hours with a good one between, ending three hours ago.
    for (hours_ago, errors) in [(6, 0), (5, 10), (4, 0), (3, 10), (2, 0)] {
        t.requests(&u, t.hour - chrono::Duration::hours(hours_ago), 20, errors)
            .await;
    }

    let preview = t
        .api
        .as_user(&u)
        .post(
            "/alerts/rules/preview",
            &json!({"kind": "error_rate", "threshold_percent": 5, "min_requests": 10}),
        )
        .await;

    assert_eq!(preview.status, 200, "{}", preview.json);
    assert_eq!(preview.json["breaches"], 2, "{}", preview.json);
    assert_eq!(preview.json["recoveries"], 2);
    assert_eq!(preview.json["evaluations"], 90 * 24 + 1);
    let sent = preview.json["notifications"].as_array().unwrap();
    assert_eq!(sent[0]["type"], "warning");
    assert_eq!(sent[0]["data"]["error_rate_percent"], json!(50.0));
    assert_eq!(sent[1]["type"], "success");
    assert_eq!(
        t.api.as_user(&u).get("/alerts/rules").await.json["total"],
        0
    );
    let bad = t
        .api
        .as_user(&u)
        .post("/alerts/rules/preview", &json!({"kind": "error_rate"}))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["field"], "threshold_percent");
}
