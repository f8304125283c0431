//! Budgets (README, "Budgets"): `GET /budgets`, `PUT/DELETE /budgets/{id}`, and their alerts —
//! every threshold once per period whatever the path (HTTP or queue ingest, a retried batch,
//! concurrent writers), one notification naming all thresholds a jump passes, re-armed by a
//! raised amount, not by a refund, stopped by a deletion. Each test has its own
//! NotificationJobsQueue, drained by the dispatcher into the inbox.

use std::time::Duration;

use meterbell_dev::testing::{app_with, unique_user};
use serde_json::{json, Value};

use crate::helpers::{consumer, drain, send, AlertHarness, UsageEventBuilder};

struct Budgets(AlertHarness);

impl std::ops::Deref for Budgets {
    type Target = AlertHarness;

    fn deref(&self) -> &AlertHarness {
        &self.0
    }
}

impl Budgets {
    async fn new() -> Budgets {
        Budgets(AlertHarness::with(&[]).await)
    }

    /// Credits enough that the low-credit alert stays out of the way.
    async fn funded_user(&self, prefix: &str) -> String {
        let u = unique_user(prefix);
        let purchase = UsageEventBuilder::payment()
            .user(&u)
            .credits(1_000_000)
            .amount("10")
            .build();
        self.post(&[purchase]).await;
        u
    }

    async fn put(&self, user: &str, id: &str, body: Value) -> Value {
        let reply = self
            .api
            .as_user(user)
            .put(&format!("/budgets/{id}"), &body)
            .await;
        assert!([200, 201].contains(&reply.status), "{}", reply.json);
        reply.json
    }

    /// Runs the dispatcher until the jobs queue is empty, then the user's budget notifications,
    /// oldest first.
    async fn alerts(&self, user: &str) -> Vec<Value> {
        self.notifications(user, |title| title.starts_with("Budget "))
            .await
    }
}

fn spend(user: &str, usd: &str) -> Value {
    UsageEventBuilder::request().user(user).cost(usd).build()
}

/// The thresholds each notification names, in order.
fn crossings(alerts: &[Value]) -> Vec<Vec<i64>> {
    alerts
        .iter()
        .map(|n| {
            n["data"]["thresholds_crossed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_i64().unwrap())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_user_creates_lists_replaces_and_deletes_a_budget() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-crud").await;
    t.post(&[spend(&u, "2.5")]).await;

    let created = t
        .api
        .as_user(&u)
        .put(
            "/budgets/team",
            &json!({"amount_usd": 10, "tz": "Europe/Paris"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    assert_eq!(created.json["amount_usd"], json!(10.0));
    assert_eq!(created.json["period"], "month");
    assert_eq!(created.json["thresholds"], json!([50, 75, 90, 100]));
    assert_eq!(created.json["current"]["spent_usd"], json!(2.5));
    assert_eq!(created.json["current"]["percent"], 25);

    let replaced = t
        .api
        .as_user(&u)
        .put(
            "/budgets/team",
            &json!({"amount_credits": 100, "period": "week", "thresholds": [90, 10, 90]}),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    assert_eq!(replaced.json["thresholds"], json!([10, 90]));
    assert!(replaced.json.get("amount_usd").is_none());

    let list = t.api.as_user(&u).get("/budgets").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json["total"], 1);
    assert_eq!(list.json["budgets"][0]["amount_credits"], 100);
    assert_eq!(list.json["budgets"][0]["current"]["spent_credits"], 7);

    assert_eq!(t.api.as_user(&u).delete("/budgets/team").await.status, 204);
    assert_eq!(t.api.as_user(&u).delete("/budgets/team").await.status, 404);
    assert_eq!(t.api.as_user(&u).get("/budgets").await.json["total"], 0);
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_stores_nothing() {
    let t = Budgets::new().await;
    let u = unique_user("bg-bad");
    for (body, field) in [
        (json!({}), "amount_usd"),
        (json!({"amount_usd": 1, "amount_credits": 1}), "amount_usd"),
        (json!({"amount_usd": 0}), "amount_usd"),
        (json!({"amount_usd": 1.0000001}), "amount_usd"),
        (json!({"amount_credits": -5}), "amount_credits"),
        (json!({"amount_credits": 5, "period": "year"}), "period"),
        (json!({"amount_credits": 5, "tz": "Mars/Olympus"}), "tz"),
        (json!({"amount_credits": 5, "thresholds": []}), "thresholds"),
        (
            json!({"amount_credits": 5, "thresholds": [0]}),
            "thresholds",
        ),
        (
            json!({"amount_credits": 5, "thresholds": [1001]}),
            "thresholds",
        ),
        (
            json!({"amount_credits": 5, "model": "gpt-4o", "endpoint": "/x"}),
            "endpoint",
        ),
        (json!({"amount_credits": 5, "provider": ""}), "provider"),
    ] {
        let reply = t.api.as_user(&u).put("/budgets/b1", &body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.json);
        assert!(
            reply.json.to_string().contains(field),
            "{body}: {}",
            reply.json
        );
    }
    let bad_id = t
        .api
        .as_user(&u)
        .put("/budgets/no%20spaces", &json!({"amount_credits": 5}))
        .await;
    assert_eq!(bad_id.status, 400, "{}", bad_id.json);
    let unknown = t
        .api
        .as_user(&u)
        .put(
            "/budgets/b1",
            &json!({"amount_credits": 5, "colour": "red"}),
        )
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.json);
    assert_eq!(t.api.as_user(&u).get("/budgets").await.json["total"], 0);
}

#[tokio::test]
async fn a_user_may_have_twenty_budgets() {
    let t = Budgets::new().await;
    let u = unique_user("bg-limit");
    for i in 0..20 {
        t.put(&u, &format!("b{i}"), json!({"amount_credits": 100}))
            .await;
    }

    let one_more = t
        .api
        .as_user(&u)
        .put("/budgets/b20", &json!({"amount_credits": 100}))
        .await;

    assert_eq!(one_more.status, 409, "{}", one_more.json);
    // Replacing one of the twenty is still allowed.
    t.put(&u, "b3", json!({"amount_credits": 50})).await;
}

#[tokio::test]
async fn an_admin_manages_any_users_budgets_and_a_user_only_their_own() {
    let t = Budgets::new().await;
    let (u, other) = (unique_user("bg-own"), unique_user("bg-other"));

    let by_admin = t
        .api
        .as_admin()
        .put(
            &format!("/budgets/ops?user_id={u}"),
            &json!({"amount_usd": 5}),
        )
        .await;
    let by_other = t
        .api
        .as_user(&other)
        .put(
            &format!("/budgets/ops?user_id={u}"),
            &json!({"amount_usd": 5}),
        )
        .await;

    assert_eq!(by_admin.status, 201, "{}", by_admin.json);
    assert_eq!(by_other.status, 403, "{}", by_other.json);
    assert_eq!(t.api.as_user(&u).get("/budgets").await.json["total"], 1);
    let listed = t.api.as_admin().get(&format!("/budgets?user_id={u}")).await;
    assert_eq!(listed.json["budgets"][0]["id"], "ops");
    let deleted = t
        .api
        .as_user(&other)
        .delete(&format!("/budgets/ops?user_id={u}"))
        .await;
    assert_eq!(deleted.status, 403);
}

#[tokio::test]
async fn each_threshold_notifies_once_saying_why() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-once").await;
    t.put(&u, "team", json!({"amount_usd": 10})).await;

    t.post(&[spend(&u, "6")]).await;
    let alerts = t.alerts(&u).await;
    assert_eq!(crossings(&alerts), [vec![50]]);
    let first = &alerts[0];
    assert_eq!(first["type"], "warning");
    assert_eq!(first["title"], "Budget team at 60%");
    let data = &first["data"];
    assert_eq!(data["budget_id"], "team");
    assert_eq!(data["spent_usd"], json!(6.0));
    assert_eq!(data["budget_usd"], json!(10.0));
    assert_eq!(data["percent"], 60);
    assert!(data["days_left"].as_i64().unwrap() >= 1);
    assert_eq!(data["top_models"][0]["model"], "gpt-4o");
    assert_eq!(data["top_providers"][0]["provider"], "openai");
    assert_eq!(data["top_endpoints"][0]["endpoint"], "/v1/chat/completions");
    for field in ["period_start", "period_end"] {
        assert!(data[field].is_string(), "{field}");
    }

    // More usage below the next threshold: nothing more.
    t.post(&[spend(&u, "1")]).await;
    assert_eq!(t.alerts(&u).await.len(), 1);

    // Past 100%: an error naming the rest, then silence.
    t.post(&[spend(&u, "3.5")]).await;
    t.post(&[spend(&u, "1")]).await;
    let alerts = t.alerts(&u).await;
    assert_eq!(crossings(&alerts), [vec![50], vec![75, 90, 100]]);
    assert_eq!(alerts[1]["type"], "error");
    assert_eq!(alerts[1]["title"], "Budget team exceeded");
}

#[tokio::test]
async fn a_jump_past_several_thresholds_sends_one_notification_naming_them_all() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-jump").await;
    t.put(
        &u,
        "b",
        json!({"amount_credits": 100, "thresholds": [25, 50, 200]}),
    )
    .await;

    t.post(&[UsageEventBuilder::request().user(&u).credits(120).build()])
        .await;

    let alerts = t.alerts(&u).await;
    assert_eq!(crossings(&alerts), [vec![25, 50]]);
    assert_eq!(alerts[0]["type"], "error");
    assert_eq!(alerts[0]["data"]["spent_credits"], 120);
    assert_eq!(alerts[0]["data"]["budget_credits"], 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_concurrent_writers_crossing_together_name_each_threshold_once() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-race").await;
    t.put(&u, "b", json!({"amount_usd": 10})).await;

    let batches: Vec<Vec<Value>> = (0..6).map(|_| vec![spend(&u, "2")]).collect();
    futures::future::join_all(batches.iter().map(|b| t.post(b))).await;

    let mut named: Vec<i64> = crossings(&t.alerts(&u).await).concat();
    named.sort_unstable();
    assert_eq!(named, [50, 75, 90, 100]);
}

#[tokio::test]
async fn a_batch_committed_before_a_crash_still_alerts_once_when_retried() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-retry").await;
    t.put(&u, "b", json!({"amount_usd": 10})).await;
    let batch = vec![spend(&u, "3"), spend(&u, "3")];
    // The first attempt commits and claims, then cannot queue the job: a crash in between.
    t.post_then_crash(&batch).await;
    assert!(t.alerts(&u).await.is_empty());

    let first = t.post(&batch).await;
    let second = t.post(&batch).await;

    assert_eq!(first["duplicates"], 2);
    assert_eq!(second["duplicates"], 2);
    assert_eq!(crossings(&t.alerts(&u).await), [vec![50]]);
}

#[tokio::test]
async fn usage_from_the_queue_alerts_like_usage_over_http() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-queue").await;
    t.put(&u, "b", json!({"amount_usd": 10})).await;
    let usage_queue = crate::helpers::queue_pair(&t.stack().clients.sqs, "usage", 3, 1)
        .await
        .0;
    let app = app_with(
        t.stack(),
        "UsageConsumerFunction",
        &[("NOTIFICATION_JOBS_QUEUE_URL", t.q.jobs.as_str())],
    )
    .unwrap();
    let usage_consumer = consumer(t.stack(), "UsageConsumerFunction", &usage_queue, app);
    let event = spend(&u, "9");

    send(t.stack(), &usage_queue, &event.to_string()).await;
    send(t.stack(), &usage_queue, &event.to_string()).await;
    drain(t.stack(), &[usage_consumer], Duration::from_secs(20)).await;

    assert_eq!(crossings(&t.alerts(&u).await), [vec![50, 75, 90]]);
}

#[tokio::test]
async fn raising_the_amount_re_arms_but_a_refund_does_not() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-rearm").await;
    t.put(&u, "b", json!({"amount_usd": 10})).await;
    t.post(&[spend(&u, "6")]).await;
    assert_eq!(crossings(&t.alerts(&u).await), [vec![50]]);

    // A refund changes no spend and fires nothing; more usage under 75% neither.
    let refund = UsageEventBuilder::payment()
        .user(&u)
        .status("refunded")
        .credits(10)
        .amount("5")
        .build();
    t.post(&[refund]).await;
    t.post(&[spend(&u, "0.5")]).await;
    assert_eq!(t.alerts(&u).await.len(), 1);

    // $20: 50% is $10, above the $6.50 spent, so it fires again when reached.
    let raised = t.put(&u, "b", json!({"amount_usd": 20})).await;
    assert_eq!(raised["current"]["thresholds_fired"], json!([]));
    t.post(&[spend(&u, "4")]).await;
    assert_eq!(crossings(&t.alerts(&u).await), [vec![50], vec![50]]);
}

#[tokio::test]
async fn a_deleted_budget_alerts_no_more() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-delete").await;
    t.put(&u, "b", json!({"amount_usd": 10})).await;
    assert_eq!(t.api.as_user(&u).delete("/budgets/b").await.status, 204);

    t.post(&[spend(&u, "20")]).await;

    assert!(t.alerts(&u).await.is_empty());
}

#[tokio::test]
async fn a_filtered_budget_counts_only_its_model() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-filter").await;
    t.put(&u, "claude", json!({"amount_usd": 10, "model": "claude-3"}))
        .await;

    t.post(&[spend(&u, "9")]).await;
    let claude = UsageEventBuilder::request()
        .user(&u)
        .provider("anthropic")
        .model("claude-3")
        .cost("5")
        .build();
    t.post(&[claude]).await;

    let alerts = t.alerts(&u).await;
    assert_eq!(crossings(&alerts), [vec![50]]);
    assert_eq!(alerts[0]["data"]["spent_usd"], json!(5.0));
    assert_eq!(alerts[0]["data"]["top_models"][0]["model"], "claude-3");
}

#[tokio::test]
async fn a_weekly_budget_an_admin_sets_for_a_user_alerts_that_user() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-admin-week").await;
    let made = t
        .api
        .as_admin()
        .put(
            &format!("/budgets/weekly?user_id={u}"),
            &json!({"amount_credits": 10, "period": "week", "tz": "America/New_York"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.json);

    t.post(&[UsageEventBuilder::request().user(&u).credits(8).build()])
        .await;

    let alerts = t.alerts(&u).await;
    assert_eq!(crossings(&alerts), [vec![50, 75]]);
    assert_eq!(alerts[0]["data"]["period"], "week");
    let days_left = alerts[0]["data"]["days_left"].as_i64().unwrap();
    assert!((1..=7).contains(&days_left), "{days_left}");
}

#[tokio::test]
async fn one_budget_is_read_by_its_id() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-get").await;
    t.put(&u, "team", json!({"amount_usd": 10})).await;

    let one = t.api.as_user(&u).get("/budgets/team").await;
    let missing = t.api.as_user(&u).get("/budgets/other").await;
    let not_theirs = t
        .api
        .as_user(&unique_user("bg-get-other"))
        .get("/budgets/team")
        .await;

    assert_eq!(one.status, 200, "{}", one.json);
    assert_eq!(one.json["id"], "team");
    assert_eq!(one.json["current"]["percent"], 0);
    assert_eq!(missing.status, 404);
    assert_eq!(not_theirs.status, 404);
}

#[tokio::test]
async fn the_preview_replays_a_budget_over_the_last_90_days_without_storing_it() {
    let t = Budgets::new().await;
    let u = t.funded_user("bg-preview").await;
    let two_days_ago = crate::helpers::midnight_days_ago(2);
    t.post(&[
        UsageEventBuilder::request()
            .user(&u)
            .cost("30")
            .at(two_days_ago + chrono::Duration::hours(10))
            .build(),
        UsageEventBuilder::request()
            .user(&u)
            .cost("30")
            .at(two_days_ago + chrono::Duration::hours(11))
            .build(),
        UsageEventBuilder::request()
            .user(&u)
            .cost("10")
            .at(two_days_ago + chrono::Duration::hours(30))
            .build(),
    ])
    .await;

    let preview = t
        .api
        .as_user(&u)
        .post(
            "/budgets/preview",
            &json!({"amount_usd": 50, "period": "day"}),
        )
        .await;

    assert_eq!(preview.status, 200, "{}", preview.json);
    let sent = preview.json["notifications"].as_array().unwrap();
    assert_eq!(
        crossings(sent),
        vec![vec![50], vec![75, 90, 100]],
        "{}",
        preview.json
    );
    assert_eq!(sent[0]["type"], "warning");
    assert_eq!(sent[1]["type"], "error");
    assert_eq!(sent[1]["data"]["spent_usd"], json!(60.0));
    assert_eq!(
        sent[1]["at"],
        (two_days_ago + chrono::Duration::hours(12))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    );
    assert!(preview.json["periods"].as_u64().unwrap() >= 90);
    assert_eq!(t.api.as_user(&u).get("/budgets").await.json["total"], 0);
    let bad = t
        .api
        .as_user(&u)
        .post("/budgets/preview", &json!({"amount_usd": 0}))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["field"], "amount_usd");
}

#[tokio::test]
async fn an_admin_sets_a_system_wide_budget_checked_by_the_hourly_run() {
    let _only_run = crate::helpers::SCHEDULE.lock().await;
    let t = Budgets::new().await;
    let admin = unique_user("bg-sys-admin");
    let model = format!("model-{}", unique_user("sys"));
    let (work, _) = crate::helpers::queue_pair(&t.stack().clients.sqs, "sys-work", 3, 1).await;
    let put = t
        .api
        .as_caller(&admin, &["admin"])
        .put(
            "/budgets/platform?system=true",
            &json!({"amount_usd": 100, "model": model}),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.json);
    for (user, usd) in [("bg-sys-a", "35"), ("bg-sys-b", "25")] {
        let u = t.funded_user(user).await;
        t.post(&[UsageEventBuilder::request()
            .user(&u)
            .model(&model)
            .cost(usd)
            .build()])
            .await;
    }

    t.run_schedule(&work, chrono::Utc::now()).await;
    t.run_schedule(&work, chrono::Utc::now()).await;

    let alerts = t
        .notifications(&admin, |title| title.starts_with("System budget"))
        .await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["title"], "System budget platform at 60%");
    assert_eq!(alerts[0]["data"]["thresholds_crossed"], json!([50]));
    assert_eq!(alerts[0]["data"]["system"], json!(true));
    let listed = t
        .api
        .as_caller(&admin, &["admin"])
        .get("/budgets/platform?system=true")
        .await;
    assert_eq!(
        listed.json["current"]["spent_usd"],
        json!(60.0),
        "{}",
        listed.json
    );
    assert_eq!(listed.json["current"]["thresholds_fired"], json!([50]));
    let history = t
        .api
        .as_caller(&admin, &["admin"])
        .get("/alerts?system=true&limit=100")
        .await;
    assert_eq!(history.status, 200, "{}", history.json);
    assert!(history.json["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "system_budget" && e["budget_id"] == "platform"));
    let by_user = t.api.as_user(&admin).get("/alerts?system=true").await;
    assert_eq!(by_user.status, 403);
    assert_eq!(
        t.api
            .as_caller(&admin, &["admin"])
            .delete("/budgets/platform?system=true")
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn only_an_admin_manages_system_wide_budgets_and_never_per_endpoint() {
    let t = Budgets::new().await;
    let user = unique_user("bg-sys-user");
    let admin = t.api.as_caller("bg-sys-root", &["admin"]);

    let by_user = t
        .api
        .as_user(&user)
        .put("/budgets/x?system=true", &json!({"amount_usd": 1}))
        .await;
    let with_user_id = admin
        .put(
            &format!("/budgets/x?system=true&user_id={user}"),
            &json!({"amount_usd": 1}),
        )
        .await;
    let per_endpoint = admin
        .put(
            "/budgets/x?system=true",
            &json!({"amount_usd": 1, "endpoint": "/v1/chat"}),
        )
        .await;

    assert_eq!(by_user.status, 403, "{}", by_user.json);
    assert_eq!(with_user_id.status, 400);
    assert_eq!(with_user_id.json["error"]["field"], "system");
    assert_eq!(per_endpoint.status, 400);
    assert_eq!(per_endpoint.json["error"]["field"], "endpoint");
    assert_eq!(
        t.api
            .as_user(&user)
            .get("/budgets/x?system=true")
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn a_daily_budget_in_kolkata_counts_from_the_local_midnight_on_the_half_hour() {
    use chrono::TimeZone;
    let t = Budgets::new().await;
    let u = t.funded_user("bg-kolkata").await;
    let kolkata = chrono_tz::Asia::Kolkata;
    let today = kolkata
        .from_utc_datetime(&chrono::Utc::now().naive_utc())
        .date_naive();
    let midnight = kolkata
        .from_local_datetime(&today.and_hms_opt(0, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&chrono::Utc);
    let before = UsageEventBuilder::request()
        .user(&u)
        .cost("5")
        .at(midnight - chrono::Duration::minutes(1))
        .build();
    let after = UsageEventBuilder::request()
        .user(&u)
        .cost("1")
        .at(midnight
            .max(chrono::Utc::now() - chrono::Duration::seconds(1))
            .min(midnight + chrono::Duration::minutes(1)))
        .build();
    t.post(&[before, after]).await;

    let budget = t
        .put(
            &u,
            "daily",
            json!({"amount_usd": 10, "period": "day", "tz": "Asia/Kolkata"}),
        )
        .await;

    assert_eq!(budget["tz"], "Asia/Kolkata", "{budget}");
    assert_eq!(budget["current"]["spent_usd"], json!(1.0), "{budget}");
}
