//! The dispatcher on NotificationJobsQueue (README, "Message contracts"): in-app item once per job and user,
//! fan-out by channels and preferences, splitting, payment jobs, malformed jobs to the DLQ.
//! Each test has queues of its own, polled as Lambda's event source mapping would.

use std::time::Duration;

use meterbell::analytics::event::PaymentStatus;
use meterbell::notifications::delivery::{EmailMessage, WebhookMessage};
use meterbell::seam::payment_job;
use meterbell_dev::testing::unique_user;
use serde_json::json;

use crate::helpers::{
    accounts, app_for, consumer, count, drain, notifications, queues, send, take_all, uid, Queues,
    TestApi,
};

fn dispatcher(
    stack: &meterbell_dev::stack::LocalStack,
    q: &Queues,
) -> meterbell_dev::poller::Consumer {
    consumer(
        stack,
        "NotificationDispatcherFunction",
        &q.jobs,
        app_for(stack, "NotificationDispatcherFunction", q, &[]),
    )
}

/// A user with an email address and one webhook endpoint; returns (id, address, endpoint).
async fn reachable_user(api: &TestApi, prefix: &str) -> (String, String, String) {
    let u = unique_user(prefix);
    let address = format!("{u}@example.com");
    let reply = api
        .as_user(&u)
        .update_preferences(&json!({"email_address": address}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let reply = api
        .as_user(&u)
        .create_webhook(&json!({"url": "http://127.0.0.1:9/hook"}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let endpoint = reply.json["id"].as_str().unwrap().to_owned();
    (u, address, endpoint)
}

#[tokio::test]
async fn a_job_writes_the_in_app_item_and_enqueues_its_email_and_webhook() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (u, address, endpoint) = reachable_user(&api, "job").await;
    let job = json!({"job_id": format!("job-{u}"), "user_id": u, "type": "warning",
        "title": "Low Credits", "message": "Your credit balance is low (500 credits remaining).",
        "data": {"credits_remaining": 500}, "channels": ["in_app", "email", "webhook"]});
    send(stack, &q.jobs, &job.to_string()).await;

    drain(stack, &[dispatcher(stack, &q)], Duration::from_secs(20)).await;

    let inbox = api.as_user(&u).whole_inbox("").await;
    assert_eq!(inbox.len(), 1);
    let n = &inbox[0];
    assert_eq!(n["title"], "Low Credits");
    assert_eq!(n["type"], "warning");
    assert_eq!(n["data"], json!({"credits_remaining": 500}));
    assert_eq!(n["is_read"], false);

    let emails = take_all(stack, &q.email).await;
    assert_eq!(emails.len(), 1);
    let email: EmailMessage = serde_json::from_str(emails[0].body().unwrap()).unwrap();
    assert_eq!(email.to, address);
    assert_eq!(email.notification.id, n["id"].as_str().unwrap());

    let hooks = take_all(stack, &q.webhook).await;
    assert_eq!(hooks.len(), 1);
    let hook: WebhookMessage = serde_json::from_str(hooks[0].body().unwrap()).unwrap();
    assert_eq!(hook.endpoint_id, endpoint);
    assert_eq!(hook.notification.title, "Low Credits");
}

#[tokio::test]
async fn the_same_job_delivered_twice_notifies_once() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (u, _, _) = reachable_user(&api, "twice").await;
    let job = json!({"job_id": format!("dup-{u}"), "user_id": u, "type": "info",
        "title": "Hello", "message": "Once only"})
    .to_string();
    send(stack, &q.jobs, &job).await;
    send(stack, &q.jobs, &job).await;
    let d = dispatcher(stack, &q);

    drain(stack, std::slice::from_ref(&d), Duration::from_secs(20)).await;

    send(stack, &q.jobs, &job).await;

    drain(stack, &[d], Duration::from_secs(20)).await;

    assert_eq!(api.as_user(&u).whole_inbox("").await.len(), 1);
    assert_eq!(api.as_user(&u).unread().await, 1);
    assert_eq!(take_all(stack, &q.email).await.len(), 1);
    assert_eq!(take_all(stack, &q.webhook).await.len(), 1);
}

#[tokio::test]
async fn each_payment_event_notifies_once_even_when_delivered_twice() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let u = unique_user("payer");
    let who = uid(&u);
    let jobs = [
        payment_job(
            &who,
            &format!("evt_{u}_1"),
            PaymentStatus::Succeeded,
            50_000_000,
            43_478,
        ),
        payment_job(
            &who,
            &format!("evt_{u}_2"),
            PaymentStatus::Failed,
            20_000_000,
            0,
        ),
        payment_job(
            &who,
            &format!("evt_{u}_3"),
            PaymentStatus::Refunded,
            5_500_000,
            0,
        ),
    ];
    for job in jobs.iter().chain(jobs.iter()) {
        send(stack, &q.jobs, &serde_json::to_string(job).unwrap()).await;
    }

    drain(stack, &[dispatcher(stack, &q)], Duration::from_secs(20)).await;

    let inbox = api.as_user(&u).whole_inbox("").await;
    let mut got: Vec<(String, String)> = inbox
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_owned(),
                n["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("error".to_owned(), "Payment failed".to_owned()),
            ("info".to_owned(), "Refund processed".to_owned()),
            ("success".to_owned(), "Payment successful".to_owned()),
        ]
    );
    assert_eq!(api.as_user(&u).unread().await, 3);
    let success = inbox.iter().find(|n| n["type"] == "success").unwrap();
    assert!(success["message"].as_str().unwrap().contains("$50.00"));
    assert_eq!(success["data"]["credits"], 43_478);
}

#[tokio::test]
async fn a_malformed_job_goes_to_the_dead_letter_queue_at_once_without_blocking_its_batch() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 5).await;
    let u = unique_user("batch");
    let good = json!({"job_id": format!("good-{u}"), "user_id": u, "type": "info",
        "title": "Fine", "message": "m"});
    let bad_type = json!({"job_id": format!("bad-{u}"), "user_id": u, "type": "urgent",
        "title": "t", "message": "m"});
    for body in [
        good.to_string(),
        "not json at all".to_owned(),
        bad_type.to_string(),
    ] {
        send(stack, &q.jobs, &body).await;
    }
    let d = dispatcher(stack, &q);
    let mut failed = 0;
    let mut received = 0;
    while received < 3 {
        let (r, f) = d
            .poll_once(&stack.clients.sqs, Duration::from_secs(1))
            .await
            .unwrap();
        received += r;
        failed += f;
    }
    assert_eq!(failed, 0, "malformed jobs are not retried");
    assert_eq!(count(&stack.clients.sqs, &q.jobs).await, 0);
    assert_eq!(api.as_user(&u).whole_inbox("").await.len(), 1);

    let dead = take_all(stack, &q.jobs_dlq).await;
    assert_eq!(dead.len(), 2);
    let mut reasons: Vec<String> = dead
        .iter()
        .map(|m| {
            m.message_attributes().unwrap()["reason"]
                .string_value()
                .unwrap()
                .to_owned()
        })
        .collect();
    reasons.sort();
    assert!(
        reasons.iter().any(|r| r.starts_with("type:")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("JSON object")),
        "{reasons:?}"
    );
    let bodies: Vec<&str> = dead.iter().map(|m| m.body().unwrap()).collect();
    assert!(
        bodies.contains(&"not json at all"),
        "the original body is kept"
    );
}

#[tokio::test]
async fn channels_and_preferences_decide_the_fan_out() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (u, _, enabled) = reachable_user(&api, "prefs").await;
    let second = api
        .as_user(&u)
        .create_webhook(&json!({"url": "http://127.0.0.1:9/other"}))
        .await;
    let disabled = second.json["id"].as_str().unwrap().to_owned();
    accounts(stack)
        .disable_endpoint(&uid(&u), &disabled, "test")
        .await
        .unwrap();
    api.as_user(&u)
        .update_preferences(&json!({"channels": {"email": {"warning": false}}}))
        .await;
    let d = dispatcher(stack, &q);
    let run = |name: &str, kind: &str, channels: Option<serde_json::Value>| {
        let mut job = json!({"job_id": format!("{name}-{u}"), "user_id": u, "type": kind,
            "title": name, "message": "m"});
        if let Some(c) = channels {
            job["channels"] = c;
        }
        job.to_string()
    };
    let cases = [
        // (job, emails expected, webhooks expected)
        (run("warn", "warning", None), 0, 1),
        (run("inapp", "info", Some(json!(["in_app"]))), 0, 0),
        (run("mail", "info", Some(json!(["email"]))), 1, 0),
        (run("all", "error", None), 1, 1),
    ];
    for (job, emails, hooks) in cases {
        send(stack, &q.jobs, &job).await;
        drain(stack, std::slice::from_ref(&d), Duration::from_secs(20)).await;
        let e = take_all(stack, &q.email).await;
        let w = take_all(stack, &q.webhook).await;
        assert_eq!(e.len(), emails, "{job}");
        assert_eq!(w.len(), hooks, "{job}");
        for m in w {
            let hook: WebhookMessage = serde_json::from_str(m.body().unwrap()).unwrap();
            assert_eq!(hook.endpoint_id, enabled, "never the disabled endpoint");
        }
    }
    api.as_user(&u)
        .update_preferences(&json!({"channels": {"webhook": {"info": false}}}))
        .await;
    send(stack, &q.jobs, &run("nohook", "info", None)).await;

    drain(stack, &[d], Duration::from_secs(20)).await;

    assert_eq!(take_all(stack, &q.email).await.len(), 1);
    assert_eq!(take_all(stack, &q.webhook).await.len(), 0);
    assert_eq!(
        api.as_user(&u).whole_inbox("").await.len(),
        5,
        "in-app always"
    );
}

#[tokio::test]
async fn a_job_for_many_users_is_split_and_notifies_each_once() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let users: Vec<String> = (0..250).map(|_| unique_user("many")).collect();
    let ids: Vec<&str> = users.iter().map(String::as_str).collect();
    let job = json!({"job_id": format!("many-{}", ids[0]), "user_ids": ids, "type": "info",
        "title": "Announcement", "message": "To everyone"});
    send(stack, &q.jobs, &job.to_string()).await;

    drain(stack, &[dispatcher(stack, &q)], Duration::from_secs(60)).await;

    let store = notifications(stack);
    for u in &users {
        let c = store.counters(&uid(u)).await.unwrap();
        assert_eq!((c.total, c.unread), (1, 1), "{u}");
    }
}

#[tokio::test]
async fn an_admin_list_is_queued_and_each_user_notified_once() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let users: Vec<String> = (0..150).map(|_| unique_user("listed")).collect();
    let mut ids: Vec<&str> = users.iter().map(String::as_str).collect();
    ids.push(ids[0]); // a repeat counts once
    let create = app_for(stack, "NotificationsCreateFunction", &q, &[]);
    let body = json!({"user_ids": ids, "type": "info", "title": "Maintenance",
        "message": "Tonight", "send_email": false, "send_webhook": false});

    let reply = api
        .function_served_by("NotificationsCreateFunction", create)
        .as_admin()
        .create_notification(&body)
        .await;

    assert_eq!(reply.status, 202, "{}", reply.json);
    assert_eq!(reply.json["status"], "queued");
    assert_eq!(reply.json["user_count"], 150);
    assert_eq!(reply.json["messages"], 2);
    assert!(reply.json["job_id"].as_str().unwrap().starts_with("admin:"));

    drain(stack, &[dispatcher(stack, &q)], Duration::from_secs(60)).await;

    for u in users.iter().take(10) {
        assert_eq!(api.as_user(u).unread().await, 1);
    }
    let store = notifications(stack);
    let mut total = 0;
    for u in &users {
        total += store.counters(&uid(u)).await.unwrap().total;
    }
    assert_eq!(total, 150);
}
