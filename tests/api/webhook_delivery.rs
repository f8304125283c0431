//! The webhook sender against a real HTTP receiver on 127.0.0.1 that verifies the Standard
//! Webhooks signature and answers as scripted: signing, retries with growing delays, timeouts,
//! the dead-letter queue, 410 disabling, redirects, and the SSRF guard.

use std::time::{Duration, Instant};

use base64::Engine as _;
use meterbell::notifications::delivery::WebhookMessage;
use meterbell::notifications::store::accounts::Endpoint;
use meterbell_dev::receiver::{verify, Receiver, Reply};
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{
    accounts, app_for, consumer, count, drain, pipeline, queues, send, uid, Queues, TestApi,
};

type Stack = meterbell_dev::stack::LocalStack;

/// A user with one endpoint at a fresh receiver; returns (user, receiver, endpoint id).
async fn subscribed(api: &TestApi, prefix: &str) -> (String, Receiver, String) {
    let u = unique_user(prefix);
    let receiver = Receiver::start(0).await.unwrap();
    let reply = api
        .as_user(&u)
        .create_webhook(&json!({"url": receiver.url("/hooks/meterbell")}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    receiver.set_secret(reply.json["secret"].as_str().unwrap());
    (u, receiver, reply.json["id"].as_str().unwrap().to_owned())
}

async fn notify(stack: &Stack, q: &Queues, u: &str, title: &str) {
    let job = json!({"job_id": format!("{title}-{u}"), "user_id": u, "type": "warning",
        "title": title, "message": "Your credit balance is low.", "data": {"credits_remaining": 500},
        "channels": ["webhook"]});
    send(stack, &q.jobs, &job.to_string()).await;
}

async fn only_notification(api: &TestApi, u: &str) -> Value {
    let inbox = api.as_user(u).whole_inbox("").await;
    assert_eq!(inbox.len(), 1);
    inbox[0].clone()
}

#[tokio::test]
async fn a_webhook_arrives_signed_the_standard_webhooks_way() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (u, receiver, endpoint) = subscribed(&api, "signed").await;
    notify(stack, &q, &u, "Low Credits").await;

    drain(stack, &pipeline(stack, &q, &[]), Duration::from_secs(30)).await;

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert!(
        r.verified,
        "the signature verifies with the secret shown at creation"
    );
    assert_eq!(r.path, "/hooks/meterbell");
    let n = only_notification(&api, &u).await;
    // The id exactly as the API shows it (hyphenated), as the README documents.
    let shown = n["id"].as_str().unwrap();
    assert_eq!(r.id.as_deref(), Some(format!("msg_{shown}").as_str()));
    let ts: i64 = r.timestamp.as_deref().unwrap().parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["type"], "notification.created");
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
    assert_eq!(body["data"], n, "the notification in its seed shape");

    // The receiver's check is real: a changed body or another key fails it.
    let key = base64::engine::general_purpose::STANDARD
        .decode(b"bm90LXRoZS1zZWNyZXQtbm90LXRoZS1zZWNyZXQhIQ==")
        .unwrap();
    let (id, ts, sig) = (
        r.id.as_deref().unwrap(),
        r.timestamp.as_deref().unwrap(),
        r.signature.as_deref().unwrap(),
    );
    assert!(!verify(&key, id, ts, &r.body, sig));

    let log = api
        .as_user(&u)
        .delivery_log(n["id"].as_str().unwrap())
        .await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["channel"], "webhook");
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["http_status"], 204);
    assert_eq!(log[0]["endpoint_id"], endpoint.as_str());
    assert_eq!(log[0]["target"], receiver.url("/hooks/meterbell").as_str());
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_with_growing_delays_until_it_answers() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 5).await;
    let (u, receiver, _) = subscribed(&api, "retried").await;
    receiver.script(&[Reply::Status(500), Reply::Status(503)]);
    notify(stack, &q, &u, "Retry").await;
    let consumers = pipeline(stack, &q, &[("WEBHOOK_RETRY_DELAYS", "1,3")]);

    drain(stack, &consumers, Duration::from_secs(40)).await;

    let got = receiver.received();
    assert_eq!(
        got.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 503, 204]
    );
    assert!(got.iter().all(|r| r.verified && r.id == got[0].id));
    let first_gap = got[1].at.duration_since(got[0].at);
    let second_gap = got[2].at.duration_since(got[1].at);
    assert!(first_gap >= Duration::from_millis(900), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(2_900), "{second_gap:?}");

    let n = only_notification(&api, &u).await;
    let log = api
        .as_user(&u)
        .delivery_log(n["id"].as_str().unwrap())
        .await;
    let summary: Vec<(String, u64, u64)> = log
        .iter()
        .map(|a| {
            (
                a["status"].as_str().unwrap().to_owned(),
                a["http_status"].as_u64().unwrap(),
                a["attempt"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("retrying".to_owned(), 500, 1),
            ("retrying".to_owned(), 503, 2),
            ("delivered".to_owned(), 204, 3)
        ]
    );
    assert_eq!(count(&stack.clients.sqs, &q.webhook_dlq).await, 0);
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_in_time_is_retried() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 5).await;
    let (u, receiver, _) = subscribed(&api, "slow").await;
    receiver.script(&[Reply::Hang(Duration::from_secs(2))]);
    notify(stack, &q, &u, "Slow").await;
    let consumers = pipeline(
        stack,
        &q,
        &[("WEBHOOK_TIMEOUT_MS", "500"), ("WEBHOOK_RETRY_DELAYS", "1")],
    );

    let started = Instant::now();
    drain(stack, &consumers, Duration::from_secs(30)).await;

    let n = only_notification(&api, &u).await;
    let log = api
        .as_user(&u)
        .delivery_log(n["id"].as_str().unwrap())
        .await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["status"], "retrying");
    assert_eq!(log[0]["http_status"], Value::Null);
    assert!(
        log[0]["error"].as_str().unwrap().contains("500 ms"),
        "{log:?}"
    );
    assert_eq!(log[1]["status"], "delivered");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_ends_in_the_dead_letter_queue() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (u, receiver, _) = subscribed(&api, "dead").await;
    receiver.script(&[Reply::Status(500); 6]);
    notify(stack, &q, &u, "Dead").await;
    let consumers = pipeline(stack, &q, &[("WEBHOOK_RETRY_DELAYS", "1")]);

    drain(stack, &consumers, Duration::from_secs(40)).await;

    assert_eq!(receiver.received().len(), 3, "maxReceiveCount attempts");
    assert_eq!(count(&stack.clients.sqs, &q.webhook_dlq).await, 1);
    let n = only_notification(&api, &u).await;
    let log = api
        .as_user(&u)
        .delivery_log(n["id"].as_str().unwrap())
        .await;
    assert_eq!(log.len(), 3);
    assert!(log
        .iter()
        .all(|a| a["status"] == "retrying" && a["http_status"] == 500));
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_is_not_retried() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 5).await;
    let (u, receiver, endpoint) = subscribed(&api, "gone").await;
    receiver.script(&[Reply::Status(410)]);
    notify(stack, &q, &u, "Gone").await;
    let consumers = pipeline(stack, &q, &[("WEBHOOK_RETRY_DELAYS", "1")]);

    drain(stack, &consumers, Duration::from_secs(30)).await;

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(receiver.received().len(), 1);

    let list = api.as_user(&u).webhooks("").await;
    let e = &list.json["webhooks"][0];
    assert_eq!(e["id"], endpoint.as_str());
    assert_eq!(e["enabled"], false);
    assert!(e["disabled_reason"].as_str().unwrap().contains("410"));
    let n = only_notification(&api, &u).await;
    let log = api
        .as_user(&u)
        .delivery_log(n["id"].as_str().unwrap())
        .await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["http_status"], 410);

    // A disabled endpoint gets nothing more.
    notify(stack, &q, &u, "After").await;

    drain(stack, &consumers, Duration::from_secs(30)).await;

    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_a_failure() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 5).await;
    let (u, receiver, _) = subscribed(&api, "redirect").await;
    receiver.script(&[Reply::Redirect(307, "/elsewhere")]);
    notify(stack, &q, &u, "Moved").await;
    let consumers = pipeline(stack, &q, &[("WEBHOOK_RETRY_DELAYS", "1")]);

    drain(stack, &consumers, Duration::from_secs(30)).await;

    let paths: Vec<String> = receiver.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        ["/hooks/meterbell", "/hooks/meterbell"],
        "never /elsewhere"
    );
    let n = only_notification(&api, &u).await;
    let log = api
        .as_user(&u)
        .delivery_log(n["id"].as_str().unwrap())
        .await;
    assert_eq!(log[0]["status"], "retrying");
    assert_eq!(log[0]["http_status"], 307);
    assert_eq!(log[1]["status"], "delivered");
}

/// A host name (not `localhost`) that resolves to loopback here, if the machine has one.
async fn loopback_name() -> Option<String> {
    let mut names = vec![];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        names.push(h.trim().to_owned());
    }
    names.extend(["ip6-localhost", "ip6-loopback", "localhost.localdomain"].map(String::from));
    for name in names.into_iter().filter(|n| !n.is_empty()) {
        let inward = match tokio::net::lookup_host((name.as_str(), 80)).await {
            Ok(mut addrs) => addrs.all(|a| a.ip().is_loopback()),
            Err(_) => false,
        };
        if inward {
            return Some(name);
        }
    }
    None
}

#[tokio::test]
async fn private_loopback_and_metadata_targets_are_refused_unless_the_deployment_opts_in() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let u = unique_user("ssrf");
    let receiver = Receiver::start(0).await.unwrap();
    let port = receiver.addr.port();
    let mut urls = vec![
        format!("https://127.0.0.1:{port}/"),
        "https://10.0.0.1/hook".to_owned(),
        "https://169.254.169.254/latest/meta-data/".to_owned(),
        format!("https://[::1]:{port}/"),
        format!("https://localhost:{port}/"),
        format!("https://[::ffff:127.0.0.1]:{port}/"),
    ];
    let name = loopback_name().await;
    if let Some(name) = &name {
        urls.push(format!("https://{name}:{port}/"));
    }
    // The route refuses them outright.
    let strict = api.function_with(
        "WebhooksCreateFunction",
        &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")],
    );
    for url in urls
        .iter()
        .filter(|u| !name.as_ref().is_some_and(|n| u.contains(n.as_str())))
    {
        let reply = strict
            .as_user(&u)
            .create_webhook(&json!({"url": url}))
            .await;
        assert_eq!(reply.status, 400, "{url}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], "url");
    }
    // Endpoints stored before (or behind a name that now resolves inward) are refused at
    // delivery: logged once as refused, never retried, nothing reaches the receiver.
    let store = accounts(stack);
    let n = api.as_admin().notify(&u, "info", "probe").await;
    let view: meterbell::notifications::notification::NotificationView =
        serde_json::from_value(n.clone()).unwrap();
    for url in &urls {
        let endpoint = Endpoint {
            id: Endpoint::new_id(),
            user_id: uid(&u),
            url: url.clone(),
            secret: meterbell::notifications::channels::webhook::generate_secret().unwrap(),
            description: None,
            enabled: true,
            disabled_reason: None,
            created_at: chrono::Utc::now(),
            types: None,
            previous_secret: None,
            failures: 0,
        };
        store.create_endpoint(&endpoint).await.unwrap();
        let msg = WebhookMessage {
            endpoint_id: endpoint.id.clone(),
            notification: view.clone(),
            resend: None,
        };
        send(stack, &q.webhook, &serde_json::to_string(&msg).unwrap()).await;
    }
    let sender = consumer(
        stack,
        "WebhookSenderFunction",
        &q.webhook,
        app_for(
            stack,
            "WebhookSenderFunction",
            &q,
            &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")],
        ),
    );

    drain(stack, &[sender], Duration::from_secs(30)).await;

    assert!(receiver.received().is_empty());
    assert_eq!(count(&stack.clients.sqs, &q.webhook_dlq).await, 0);
    let log = api
        .as_user(&u)
        .delivery_log(n["id"].as_str().unwrap())
        .await;
    assert_eq!(log.len(), urls.len(), "{log:?}");
    for attempt in &log {
        assert_eq!(attempt["status"], "refused", "{attempt}");
        assert!(attempt["error"].is_string());
    }
    let refused_targets: Vec<&str> = log.iter().map(|a| a["target"].as_str().unwrap()).collect();
    for url in &urls {
        assert!(
            refused_targets
                .iter()
                .any(|t| t.starts_with(url.trim_end_matches('/'))),
            "{url}"
        );
    }
}

#[tokio::test]
async fn metadata_addresses_are_refused_even_where_private_targets_are_allowed() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let u = unique_user("metadata");
    let reply = api
        .as_user(&u)
        .create_webhook(&json!({"url": "http://169.254.169.254/latest/meta-data/"}))
        .await;
    assert_eq!(reply.status, 400);
    let n = api.as_admin().notify(&u, "info", "probe").await;
    let endpoint = Endpoint {
        id: Endpoint::new_id(),
        user_id: uid(&u),
        url: "http://169.254.169.254/latest/meta-data/".into(),
        secret: meterbell::notifications::channels::webhook::generate_secret().unwrap(),
        description: None,
        enabled: true,
        disabled_reason: None,
        created_at: chrono::Utc::now(),
        types: None,
        previous_secret: None,
        failures: 0,
    };
    accounts(stack).create_endpoint(&endpoint).await.unwrap();
    let msg = WebhookMessage {
        endpoint_id: endpoint.id,
        notification: serde_json::from_value(n.clone()).unwrap(),
        resend: None,
    };
    send(stack, &q.webhook, &serde_json::to_string(&msg).unwrap()).await;
    let sender = consumer(
        stack,
        "WebhookSenderFunction",
        &q.webhook,
        app_for(stack, "WebhookSenderFunction", &q, &[]),
    );

    drain(stack, &[sender], Duration::from_secs(20)).await;

    let log = api
        .as_user(&u)
        .delivery_log(n["id"].as_str().unwrap())
        .await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "refused");
}
