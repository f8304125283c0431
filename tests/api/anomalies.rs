//! Anomaly detection (README, "Anomalies"): the hourly run judges each active user's last hour
//! against the same hour of the previous weeks, notifies an "Unusual spend" once naming what
//! drove it, lists it, takes the user's verdict and then keeps quiet about that driver; idle
//! users cost no history read, and small users never alert.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use meterbell::seam::anomalies::{last_hour, run_anomaly_scan, scan_users, ScanOrder};
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{
    app_for, consumer, drain, queue_pair, send, take_all, AlertHarness, UsageEventBuilder,
};

/// `count` gpt-4o requests on /v1/chat/completions costing `usd` each, at `at`.
fn calls(user: &str, count: usize, usd: &str, at: DateTime<Utc>) -> Vec<Value> {
    (0..count)
        .map(|_| {
            UsageEventBuilder::request()
                .user(user)
                .model("gpt-4o")
                .endpoint("/v1/chat/completions")
                .cost(usd)
                .credits(1)
                .at(at)
                .build()
        })
        .collect()
}

struct Anomalies {
    h: AlertHarness,
    hour: DateTime<Utc>,
}

impl Anomalies {
    async fn new() -> Anomalies {
        Anomalies {
            h: AlertHarness::with(&[]).await,
            hour: last_hour(Utc::now()),
        }
    }

    /// A user with credits to spare whose last four weeks held `usual` calls at `usd` in this
    /// hour of the week, and whose last hour holds `now` calls at `now_usd`.
    async fn user(&self, usual: usize, usd: &str, now: usize, now_usd: &str) -> String {
        let user = unique_user("spiky");
        let funds = UsageEventBuilder::payment()
            .user(&user)
            .credits(1_000_000)
            .amount("100")
            .build();
        self.h.post(&[funds]).await;
        for k in 1..=4 {
            let at = self.hour - Duration::days(7 * k) + Duration::minutes(10);
            self.h.post(&calls(&user, usual, usd, at)).await;
        }
        let at = self.hour + Duration::minutes(10);
        for chunk in calls(&user, now, now_usd, at).chunks(100) {
            self.h.post(chunk).await;
        }
        user
    }

    /// The worker's run over `users` for the last hour.
    async fn scan(&self, users: &[&str]) -> meterbell::seam::anomalies::ScanReport {
        let app = app_for(self.h.stack(), "AnomalyWorkerFunction", &self.h.q, &[]);
        let order = ScanOrder {
            hour: self.hour,
            daily: false,
            users: users.iter().map(|u| u.to_string()).collect(),
        };
        scan_users(&app, &order, Utc::now()).await.unwrap()
    }

    async fn unusual_spend(&self, user: &str) -> Vec<Value> {
        self.h
            .notifications(user, |title| title == "Unusual spend")
            .await
    }
}

#[tokio::test]
async fn a_spend_spike_is_notified_once_naming_the_model_and_endpoint_behind_it() {
    let t = Anomalies::new().await;
    let user = t.user(30, "0.1", 100, "0.412").await;

    let first = t.scan(&[&user]).await;
    let again = t.scan(&[&user]).await;

    assert_eq!(first.anomalies.len(), 1, "{first:?}");
    assert_eq!(
        again.anomalies.len(),
        1,
        "a repeated run finds the same anomaly"
    );
    assert_eq!(first.anomalies[0].1.id, again.anomalies[0].1.id);
    let notes = t.unusual_spend(&user).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["type"], "warning");
    assert_eq!(
        notes[0]["message"],
        "gpt-4o on /v1/chat/completions: $41.20 in the last hour against a usual $3.00."
    );
    assert_eq!(
        notes[0]["data"]["anomaly_id"],
        first.anomalies[0].1.id.as_str()
    );
    let listed = t.h.api.as_user(&user).get("/analytics/anomalies").await;
    assert_eq!(listed.status, 200, "{}", listed.json);
    assert_eq!(listed.json["total"], 1);
    let a = &listed.json["anomalies"][0];
    assert_eq!(
        (&a["metric"], &a["driver"], &a["model"], &a["endpoint"]),
        (
            &json!("cost"),
            &json!("model"),
            &json!("gpt-4o"),
            &json!("/v1/chat/completions")
        )
    );
    assert_eq!(
        (a["observed"].as_f64(), a["usual"].as_f64()),
        (Some(41.2), Some(3.0))
    );
    assert_eq!(a["expected"], Value::Null);
}

#[tokio::test]
async fn an_expected_verdict_is_recorded_and_quiets_that_driver() {
    let t = Anomalies::new().await;
    let user = t.user(30, "0.1", 100, "0.412").await;
    let id = t.scan(&[&user]).await.anomalies[0].1.id.clone();

    let verdict =
        t.h.api
            .as_user(&user)
            .put(
                &format!("/analytics/anomalies/{id}"),
                &json!({"expected": true}),
            )
            .await;
    let after = t.scan(&[&user]).await;

    assert_eq!(verdict.status, 200, "{}", verdict.json);
    assert_eq!(verdict.json["expected"], true);
    assert!(verdict.json["quiet_until"].is_string());
    assert!(after.anomalies.is_empty(), "{after:?}");
    let listed = t.h.api.as_user(&user).get("/analytics/anomalies").await;
    assert_eq!(listed.json["anomalies"][0]["expected"], true);
}

#[tokio::test]
async fn an_idle_user_costs_one_empty_read_and_a_small_one_never_alerts() {
    let t = Anomalies::new().await;
    let idle = unique_user("idle");
    let small = t.user(1, "0.01", 10, "20").await;

    let report = t.scan(&[&idle, &small]).await;

    assert_eq!(report.users, 2);
    assert_eq!(report.idle, 1);
    assert!(
        report.anomalies.is_empty(),
        "10 requests are under the minimum volume"
    );
}

#[tokio::test]
async fn the_hourly_schedule_queues_active_users_and_the_worker_notifies() {
    let t = Anomalies::new().await;
    let user = t.user(30, "0.1", 100, "0.412").await;
    let (scan_queue, _) = queue_pair(&t.h.stack().clients.sqs, "anomaly-scan", 3, 30).await;
    let scanner = app_for(
        t.h.stack(),
        "AnomalyScanFunction",
        &t.h.q,
        &[("ANOMALY_SCAN_QUEUE_URL", scan_queue.as_str())],
    );

    let orders = run_anomaly_scan(&scanner, Utc::now()).await.unwrap();
    let worker = consumer(
        t.h.stack(),
        "AnomalyWorkerFunction",
        &scan_queue,
        app_for(t.h.stack(), "AnomalyWorkerFunction", &t.h.q, &[]),
    );
    drain(t.h.stack(), &[worker], StdDuration::from_secs(120)).await;

    assert!(orders.iter().any(|o| o.users.contains(&user)), "{orders:?}");
    assert!(orders
        .iter()
        .all(|o| o.users.len() <= 50 && o.hour == t.hour));
    assert_eq!(t.unusual_spend(&user).await.len(), 1);
}

#[tokio::test]
async fn bad_verdicts_and_other_users_anomalies_are_refused() {
    let t = Anomalies::new().await;
    let user = t.user(30, "0.1", 100, "0.412").await;
    let id = t.scan(&[&user]).await.anomalies[0].1.id.clone();
    let me = t.h.api.as_user(&user);
    let path = format!("/analytics/anomalies/{id}");

    let wrong_type = me.put(&path, &json!({"expected": "yes"})).await;
    let missing = me.put(&path, &json!({})).await;
    let unknown = me
        .put(
            "/analytics/anomalies/20990101T00-hour-0000000000000000",
            &json!({"expected": true}),
        )
        .await;
    let someone_else =
        t.h.api
            .as_user(&unique_user("nosy"))
            .put(&path, &json!({"expected": true}))
            .await;
    let bad_limit = me.get("/analytics/anomalies?limit=0").await;
    let other_list = me.get("/analytics/anomalies?user_id=someone-else").await;
    let platform_as_user = me.get("/analytics/anomalies?system=true").await;
    let platform =
        t.h.api
            .as_admin()
            .get("/analytics/anomalies?system=true")
            .await;

    assert_eq!(wrong_type.status, 400, "{}", wrong_type.json);
    assert_eq!(wrong_type.json["error"]["field"], "expected");
    assert_eq!(missing.status, 400, "{}", missing.json);
    assert_eq!(unknown.status, 404);
    assert_eq!(
        someone_else.status, 404,
        "another user's anomaly is not found"
    );
    assert_eq!(bad_limit.status, 400);
    assert_eq!(bad_limit.json["error"]["field"], "limit");
    assert_eq!(other_list.status, 403);
    assert_eq!(platform_as_user.status, 403);
    assert_eq!(platform.status, 200, "{}", platform.json);
    assert!(platform.json["anomalies"].is_array());
}

#[tokio::test]
async fn a_malformed_scan_order_goes_to_the_dead_letter_queue_at_once_with_its_reason() {
    let t = Anomalies::new().await;
    let sqs = &t.h.stack().clients.sqs;
    let (scan_queue, _) = queue_pair(sqs, "anomaly-scan", 3, 30).await;
    let (dlq, _) = queue_pair(sqs, "anomaly-scan-dlq", 3, 30).await;
    send(t.h.stack(), &scan_queue, "not an order").await;
    let worker = consumer(
        t.h.stack(),
        "AnomalyWorkerFunction",
        &scan_queue,
        app_for(
            t.h.stack(),
            "AnomalyWorkerFunction",
            &t.h.q,
            &[("ANOMALY_SCAN_DLQ_URL", dlq.as_str())],
        ),
    );

    drain(t.h.stack(), &[worker], StdDuration::from_secs(30)).await;

    let dead = take_all(t.h.stack(), &dlq).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("not an order"));
    let reason = dead[0].message_attributes().unwrap()["reason"]
        .string_value()
        .unwrap();
    assert!(reason.contains("not a scan order"), "{reason}");
}

#[tokio::test]
async fn the_run_after_midnight_judges_the_last_day_against_the_same_weekday() {
    let t = Anomalies::new().await;
    let user = unique_user("daily");
    let yesterday = (Utc::now() - Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    for k in 1..=4 {
        t.h.post(&calls(
            &user,
            30,
            "0.1",
            yesterday - Duration::days(7 * k) + Duration::hours(12),
        ))
        .await;
    }
    t.h.post(&calls(&user, 100, "0.412", yesterday + Duration::hours(12)))
        .await;
    let app = app_for(t.h.stack(), "AnomalyWorkerFunction", &t.h.q, &[]);
    let order = ScanOrder {
        hour: yesterday + Duration::hours(23),
        daily: true,
        users: vec![user.clone()],
    };

    let report = scan_users(&app, &order, Utc::now()).await.unwrap();

    assert_eq!(report.anomalies.len(), 1, "{report:?}");
    let a = &report.anomalies[0].1;
    assert_eq!(a.window.as_str(), "day");
    assert_eq!(a.window_start, yesterday);
    assert_eq!(
        a.message,
        "gpt-4o on /v1/chat/completions: $41.20 in the last day against a usual $3.00"
    );
}
