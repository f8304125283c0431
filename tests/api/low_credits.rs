//! Low-credit alerts (README, "Low credits"): one "Low Credits" warning when the balance falls
//! below the threshold, one "Credits exhausted" error at or below 0, each once per crossing,
//! re-armed only by a balance back above the threshold plus 10%; exactly once across concurrent
//! ingests, duplicate batches and a crash between commit and notify. Each test has its own
//! NotificationJobsQueue, drained by the dispatcher into the inbox.

use std::time::Duration;

use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::UsageEventBuilder;
use crate::helpers::{app_for, consumer, drain, queue_pair, send, AlertHarness, TestApi};

const TITLES: [&str; 2] = ["Low Credits", "Credits exhausted"];

/// The whole API, with the ingest function queueing jobs on this test's queue.
struct Alerts(AlertHarness);

impl std::ops::Deref for Alerts {
    type Target = AlertHarness;

    fn deref(&self) -> &AlertHarness {
        &self.0
    }
}

impl Alerts {
    async fn new() -> Alerts {
        Self::with(&[]).await
    }

    /// With the ingest function's environment changed by `extra`.
    async fn with(extra: &[(&str, &str)]) -> Alerts {
        Alerts(AlertHarness::with(extra).await)
    }

    /// Runs the dispatcher until the jobs queue is empty, then the user's low-credit
    /// notifications, oldest first.
    async fn alerts(&self, user: &str) -> Vec<Value> {
        self.notifications(user, |title| TITLES.contains(&title))
            .await
    }
}

fn purchase(user: &str, credits: i64) -> Value {
    UsageEventBuilder::payment()
        .user(user)
        .credits(credits)
        .amount("10")
        .build()
}

fn usage(user: &str, credits: i64) -> Value {
    UsageEventBuilder::request()
        .user(user)
        .credits(credits)
        .build()
}

fn titles(alerts: &[Value]) -> Vec<&str> {
    alerts
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn each_crossing_notifies_once_and_a_purchase_past_the_margin_re_arms() {
    let t = Alerts::new().await;
    let u = unique_user("low");
    t.post(&[purchase(&u, 1_500)]).await;
    t.post(&[usage(&u, 600)]).await;

    let alerts = t.alerts(&u).await;

    assert_eq!(titles(&alerts), ["Low Credits"]);
    let warning = &alerts[0];
    assert_eq!(warning["type"], "warning");
    assert_eq!(
        warning["message"],
        "Your credit balance is low (900 credits remaining)."
    );
    assert_eq!(
        warning["data"],
        json!({"credits_remaining": 900, "threshold": 1000})
    );

    // Further usage below the line: nothing more.
    t.post(&[usage(&u, 100)]).await;
    assert_eq!(titles(&t.alerts(&u).await), ["Low Credits"]);

    // Down to 0: one error.
    t.post(&[usage(&u, 500), usage(&u, 300)]).await;
    let alerts = t.alerts(&u).await;
    assert_eq!(titles(&alerts), ["Low Credits", "Credits exhausted"]);
    assert_eq!(alerts[1]["type"], "error");
    assert_eq!(alerts[1]["data"]["credits_remaining"], 0);
    t.post(&[usage(&u, 10)]).await;
    assert_eq!(t.alerts(&u).await.len(), 2);

    // Back to 1,090 (under 1,000 + 10%) and down again: still armed by nothing.
    t.post(&[purchase(&u, 1_100)]).await;
    t.post(&[usage(&u, 200)]).await;
    assert_eq!(t.alerts(&u).await.len(), 2);

    // A purchase past 1,100 re-arms; the next drop warns again.
    t.post(&[purchase(&u, 1_000)]).await;
    t.post(&[usage(&u, 1_000)]).await;
    let alerts = t.alerts(&u).await;
    assert_eq!(
        titles(&alerts),
        ["Low Credits", "Credits exhausted", "Low Credits"]
    );
    assert_eq!(alerts[2]["data"]["credits_remaining"], 890);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_concurrent_ingests_crossing_together_notify_once() {
    let t = Alerts::new().await;
    let u = unique_user("low-race");
    t.post(&[purchase(&u, 1_050)]).await;

    let posts: Vec<Vec<Value>> = (0..6).map(|_| vec![usage(&u, 100)]).collect();
    futures::future::join_all(posts.iter().map(|batch| t.post(batch))).await;

    let alerts = t.alerts(&u).await;
    assert_eq!(titles(&alerts), ["Low Credits"]);
    let left = alerts[0]["data"]["credits_remaining"].as_i64().unwrap();
    assert!((450..=950).contains(&left), "{left}");
}

#[tokio::test]
async fn a_batch_committed_before_a_crash_still_alerts_once_when_retried() {
    let t = Alerts::new().await;
    let u = unique_user("low-retry");
    t.post(&[purchase(&u, 1_200)]).await;
    let batch = vec![usage(&u, 150), usage(&u, 150)];
    // The first attempt commits, then cannot queue the job (its queue is gone): as a crash
    // between the commit and the notification would leave it.
    t.post_then_crash(&batch).await;
    assert!(t.alerts(&u).await.is_empty());

    let first = t.post(&batch).await;
    let second = t.post(&batch).await;

    assert_eq!(first["duplicates"], 2);
    assert_eq!(second["duplicates"], 2);
    let alerts = t.alerts(&u).await;
    assert_eq!(titles(&alerts), ["Low Credits"]);
    assert_eq!(alerts[0]["data"]["credits_remaining"], 900);
}

#[tokio::test]
async fn the_queue_door_alerts_too_and_a_jump_to_zero_sends_only_the_error() {
    let t = Alerts::new().await;
    let stack = t.stack();
    let (usage_queue, _dlq) = queue_pair(&stack.clients.sqs, "usage", 3, 1).await;
    let consumer = consumer(
        stack,
        "UsageConsumerFunction",
        &usage_queue,
        app_for(stack, "UsageConsumerFunction", &t.q, &[]),
    );
    let u = unique_user("low-queue");
    let batch = json!([purchase(&u, 500), usage(&u, 520)]).to_string();
    // The same message twice, as a redelivery brings it.
    send(stack, &usage_queue, &batch).await;
    send(stack, &usage_queue, &batch).await;

    drain(stack, &[consumer], Duration::from_secs(20)).await;

    let alerts = t.alerts(&u).await;
    assert_eq!(titles(&alerts), ["Credits exhausted"]);
    assert_eq!(
        alerts[0]["data"],
        json!({"credits_remaining": -20, "threshold": 1000})
    );
}

#[tokio::test]
async fn a_users_own_threshold_and_the_deployments_default_are_each_respected() {
    let t = Alerts::with(&[("LOW_CREDIT_THRESHOLD", "200")]).await;
    let own = unique_user("low-own");
    let default = unique_user("low-default");
    let reply = t
        .api
        .as_user(&own)
        .update_preferences(&json!({"low_credit_threshold": 5000}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["low_credit_threshold"], 5000);

    t.post(&[purchase(&own, 6_000), purchase(&default, 6_000)])
        .await;
    t.post(&[usage(&own, 1_500), usage(&default, 5_850)]).await;

    let mine = t.alerts(&own).await;
    assert_eq!(titles(&mine), ["Low Credits"]);
    assert_eq!(
        mine[0]["data"],
        json!({"credits_remaining": 4500, "threshold": 5000})
    );
    let theirs = t.alerts(&default).await;
    assert_eq!(titles(&theirs), ["Low Credits"]);
    assert_eq!(
        theirs[0]["data"],
        json!({"credits_remaining": 150, "threshold": 200})
    );
}

#[tokio::test]
async fn the_threshold_preference_is_shown_reset_by_null_and_checked() {
    let api = TestApi::spawn().await;
    let u = unique_user("low-prefs");
    let me = api.as_user(&u);
    assert_eq!(
        me.preferences("").await.json["low_credit_threshold"],
        Value::Null
    );

    let set = me
        .update_preferences(&json!({"low_credit_threshold": 0}))
        .await;
    assert_eq!(set.status, 200, "{}", set.json);
    assert_eq!(me.preferences("").await.json["low_credit_threshold"], 0);
    let reset = me
        .update_preferences(&json!({"low_credit_threshold": null}))
        .await;
    assert_eq!(reset.status, 200, "{}", reset.json);
    assert_eq!(
        me.preferences("").await.json["low_credit_threshold"],
        Value::Null
    );

    for bad in [json!(-1), json!(1_000_000_001), json!(2.5), json!("500")] {
        let reply = me
            .update_preferences(&json!({"low_credit_threshold": bad}))
            .await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], "low_credit_threshold");
    }
}
