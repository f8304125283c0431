//! `POST /api/v1/usage/events`: per-event answers, exactly-once under duplicates and concurrent
//! writers, roles, and every bad-input case. Against DynamoDB Local and moto.

use chrono::{Duration, Utc};
use meterbell_dev::testing::{unique_user, Reply};
use serde_json::{json, Value};

use crate::helpers::{minutes_ago, TestApi, UsageEventBuilder};

/// A request of `user` at the start of the minute `minutes_ago` minutes ago, costing `cost`.
fn event(id: &str, user: &str, minutes_ago_: i64, cost: &str) -> Value {
    UsageEventBuilder::request()
        .id(id)
        .user(user)
        .at(minutes_ago(minutes_ago_))
        .cost(cost)
        .build()
}

/// The user's summary of the last two days; panics unless it is a 200.
async fn summary(api: &TestApi, user: &str) -> Reply {
    let r = api.as_user(user).summary("days=2").await;
    assert_eq!(r.status, 200, "{}", r.json);
    r
}

#[tokio::test]
async fn each_event_of_a_batch_gets_its_own_answer() {
    let api = TestApi::spawn().await;
    let user = unique_user("batch");
    let id = |n: u32| format!("{user}-{n}");
    let bad = UsageEventBuilder::request()
        .id(&id(3))
        .user(&user)
        .at(minutes_ago(1))
        .cost("0.01")
        .set("status_code", json!("two hundred"))
        .build();
    let body = json!({"events": [event(&id(1), &user, 1, "0.01"), event(&id(2), &user, 2, "0.02"), bad, event(&id(1), &user, 1, "0.01")]});

    let reply = api.as_service().post_events(&body).await;

    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(
        (
            reply.json["accepted"].as_u64(),
            reply.json["duplicates"].as_u64(),
            reply.json["rejected"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let statuses: Vec<&str> = reply.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["accepted", "accepted", "rejected", "duplicate"]);
    assert_eq!(reply.json["results"][2]["field"], "status_code");
    assert_eq!(
        summary(&api, &user).await.json["usage"]["total_requests"],
        2
    );
}

#[tokio::test]
async fn summary_counts_a_duplicate_event_once() {
    let api = TestApi::spawn().await;
    let user = unique_user("dup");
    let e = event(&format!("{user}-only"), &user, 3, "0.0150");

    let first = api.as_service().post_events(&json!([e.clone()])).await;
    let again = api.as_service().post_events(&json!([e])).await;
    let s = summary(&api, &user).await;

    assert_eq!(first.json["accepted"], 1);
    assert_eq!(again.json["duplicates"], 1);
    assert_eq!(s.json["usage"]["total_requests"], 1);
    assert_eq!(s.json["usage"]["total_credits"], 7);
}

#[tokio::test]
async fn concurrent_writers_sending_the_same_events_count_each_once() {
    let api = TestApi::spawn().await;
    let user = unique_user("race");
    let events: Vec<Value> = (0..40)
        .map(|i| event(&format!("{user}-{i}"), &user, i % 30, "0.001001"))
        .collect();

    let mut tasks = vec![];
    for w in 0..6 {
        let mut mine = events.clone();
        mine.rotate_left(w * 7);
        let body = json!({"events": mine});
        tasks.push(tokio::spawn(async move {
            let api = TestApi::spawn().await;
            api.as_service().post_events(&body).await.json
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        let r = t.await.unwrap();
        accepted += r["accepted"].as_u64().unwrap();
        assert_eq!(r["rejected"], 0, "{r}");
    }

    assert_eq!(accepted, 40, "every event accepted by exactly one writer");
    let s = summary(&api, &user).await;
    assert_eq!(s.json["usage"]["total_requests"], 40);
    assert_eq!(s.json["usage"]["total_credits"], 40 * 7);
    // 40 × 0.001001 USD = 0.04004 USD, rendered with 2 decimals.
    assert_eq!(s.raw(&["usage", "total_cost_usd"]), "0.04");
    assert_eq!(s.raw(&["usage", "avg_cost_per_request_usd"]), "0.0010");
}

#[tokio::test]
async fn ingest_needs_the_service_or_admin_role() {
    let api = TestApi::spawn().await;
    let body = json!([event("role-1", "u", 1, "0.1")]);

    let user = api.as_user("u").post_events(&body).await;
    let anonymous = api.anonymous().post_events(&body).await;
    let admin = api.as_caller("root", &["admin"]).post_events(&body).await;

    assert_eq!(user.status, 403);
    assert_eq!(anonymous.status, 401);
    assert_eq!(admin.status, 200);
}

#[tokio::test]
async fn malformed_empty_oversized_and_overlong_batches_are_refused() {
    let api = TestApi::spawn().await;
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        ("{not json".into(), 400, None),
        ("[]".into(), 400, Some("events")),
        (json!({"events": "x"}).to_string(), 400, Some("events")),
        (
            json!({"event_id": "single"}).to_string(),
            400,
            Some("events"),
        ),
        (
            json!((0..101)
                .map(|i| event(&format!("many-{i}"), "u", 1, "0.1"))
                .collect::<Vec<_>>())
            .to_string(),
            400,
            Some("events"),
        ),
        (format!("[{}]", "1,".repeat(600_000) + "1"), 413, None),
    ];

    for (body, status, field) in cases {
        let r = api.as_service().post_events_raw(&body).await;

        assert_eq!(
            r.status,
            status,
            "{}: {}",
            &body[..body.len().min(40)],
            r.json
        );
        assert!(r.json["error"]["message"].is_string());
        if let Some(f) = field {
            assert_eq!(r.json["error"]["field"], f);
        }
    }
}

#[tokio::test]
async fn timestamps_too_old_or_in_the_future_are_rejected_with_a_reason() {
    let api = TestApi::spawn().await;
    let old = UsageEventBuilder::request()
        .id("old-1")
        .cost("0.1")
        .at(Utc::now() - Duration::days(500))
        .build();
    let future = UsageEventBuilder::request()
        .id("future-1")
        .cost("0.1")
        .at(Utc::now() + Duration::minutes(10))
        .build();

    let r = api.as_service().post_events(&json!([old, future])).await;

    assert_eq!(r.json["rejected"], 2);
    for result in r.json["results"].as_array().unwrap() {
        assert_eq!(result["field"], "timestamp");
        assert!(
            result["reason"].as_str().unwrap().contains("retention")
                || result["reason"].as_str().unwrap().contains("future")
        );
    }
}

#[tokio::test]
async fn a_payment_event_queues_its_notification_job_keyed_by_the_event() {
    let api = TestApi::spawn().await;
    let user = unique_user("payer");
    let id = format!("{user}-pay");
    let payment = UsageEventBuilder::payment()
        .id(&id)
        .user(&user)
        .at(Utc::now() - Duration::minutes(5))
        .status("succeeded")
        .amount("50")
        .credits(43478)
        .build();

    api.as_service()
        .post_events(&json!([payment.clone()]))
        .await;
    api.as_service().post_events(&json!([payment])).await;

    let s = summary(&api, &user).await;
    assert_eq!(s.json["payments"]["payment_count"], 1);
    assert_eq!(s.raw(&["payments", "total_paid_usd"]), "50.00");
    assert_eq!(s.json["credit_balance"], 43478);
    // Both deliveries queued the same job id; the dispatcher's idempotency makes it one notification.
    let stack = &api.stack;
    let queue = stack.queue_url("NotificationJobsQueue").unwrap().to_owned();
    let mut ids = vec![];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let got = stack
            .clients
            .sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in got.messages.unwrap_or_default() {
            let job: Value = serde_json::from_str(m.body.as_deref().unwrap()).unwrap();
            if job["user_id"] == json!(user) {
                ids.push(job["job_id"].as_str().unwrap().to_owned());
            }
        }
        if ids.len() >= 2 {
            break;
        }
    }
    assert_eq!(ids, vec![format!("payment:{id}"), format!("payment:{id}")]);
}
