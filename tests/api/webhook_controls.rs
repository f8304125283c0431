//! Webhook controls (README, "Webhook controls"), against a real receiver on 127.0.0.1: the
//! per-endpoint event filter, the test delivery, secret rotation with both secrets signing during
//! the overlap (checked with the Standard Webhooks library), resending a past delivery, and the
//! warning and disabling of an endpoint that keeps failing.

use std::time::Duration;

use meterbell_dev::receiver::{Received, Receiver, Reply};
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{accounts, drain, pipeline, queues, send, uid, Queues, TestApi};

/// A user with one endpoint at a fresh receiver, created with `extra` fields: (user, receiver,
/// endpoint as created, with its secret).
async fn subscribed(api: &TestApi, prefix: &str, extra: Value) -> (String, Receiver, Value) {
    let u = unique_user(prefix);
    let receiver = Receiver::start(0).await.unwrap();
    let mut body = json!({"url": receiver.url("/hooks")});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let reply = api.as_user(&u).create_webhook(&body).await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    receiver.set_secret(reply.json["secret"].as_str().unwrap());
    (u, receiver, reply.json)
}

async fn notify(api: &TestApi, q: &Queues, u: &str, kind: &str, title: &str) {
    let job = json!({"job_id": format!("{title}-{}", uuid::Uuid::new_v4()), "user_id": u,
        "type": kind, "title": title, "message": "From the test.", "channels": ["webhook"]});
    send(&api.stack, &q.jobs, &job.to_string()).await;
}

fn titles(got: &[Received]) -> Vec<String> {
    got.iter()
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            body["data"]["title"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

/// Whether the Standard Webhooks library accepts `r` under `secret`.
fn verifies_with(secret: &str, r: &Received) -> bool {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("webhook-id", &r.id),
        ("webhook-timestamp", &r.timestamp),
        ("webhook-signature", &r.signature),
    ] {
        headers.insert(name, value.clone().unwrap().parse().unwrap());
    }
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .verify(r.body.as_bytes(), &headers)
        .is_ok()
}

#[tokio::test]
async fn an_endpoint_receives_only_the_types_it_asked_for() {
    let api = TestApi::spawn().await;
    let q = queues(&api.stack, 3).await;
    let (u, receiver, endpoint) = subscribed(&api, "wh-filter", json!({"types": ["error"]})).await;
    assert_eq!(endpoint["types"], json!(["error"]));

    notify(&api, &q, &u, "warning", "Just a warning").await;
    notify(&api, &q, &u, "error", "Something broke").await;
    drain(
        &api.stack,
        &pipeline(&api.stack, &q, &[]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(titles(&receiver.received()), ["Something broke"]);

    let id = endpoint["id"].as_str().unwrap();
    let changed = api
        .as_user(&u)
        .put(&format!("/webhooks/{id}"), &json!({"types": null}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.json);
    assert_eq!(changed.json["types"], Value::Null);
    notify(&api, &q, &u, "warning", "Now warnings too").await;
    drain(
        &api.stack,
        &pipeline(&api.stack, &q, &[]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        titles(&receiver.received()),
        ["Something broke", "Now warnings too"]
    );
}

#[tokio::test]
async fn bad_controls_are_refused_naming_the_field() {
    let api = TestApi::spawn().await;
    let (u, _receiver, endpoint) = subscribed(&api, "wh-bad", json!({})).await;
    let id = endpoint["id"].as_str().unwrap();

    let unknown_type = api
        .as_user(&u)
        .create_webhook(&json!({"url": "https://example.com/h", "types": ["urgent"]}))
        .await;
    let empty = api
        .as_user(&u)
        .put(&format!("/webhooks/{id}"), &json!({"types": []}))
        .await;
    let not_an_id = api
        .as_user(&u)
        .post(
            &format!("/webhooks/{id}/resend"),
            &json!({"notification_id": "nope"}),
        )
        .await;
    let someone_elses = api
        .as_user(&unique_user("wh-other"))
        .post(&format!("/webhooks/{id}/test"), &json!({}))
        .await;

    assert_eq!(unknown_type.status, 400);
    assert_eq!(unknown_type.json["error"]["field"], "types");
    assert_eq!(empty.status, 400);
    assert_eq!(empty.json["error"]["field"], "types");
    assert_eq!(not_an_id.status, 400);
    assert_eq!(not_an_id.json["error"]["field"], "notification_id");
    assert_eq!(someone_elses.status, 404);
}

#[tokio::test]
async fn a_test_delivery_is_signed_and_its_result_returned() {
    let api = TestApi::spawn().await;
    let (u, receiver, endpoint) = subscribed(&api, "wh-test", json!({})).await;
    let id = endpoint["id"].as_str().unwrap();

    let ok = api
        .as_user(&u)
        .post(&format!("/webhooks/{id}/test"), &json!({}))
        .await;
    receiver.script(&[Reply::Status(500)]);
    let failing = api
        .as_user(&u)
        .post(&format!("/webhooks/{id}/test"), &json!({}))
        .await;

    assert_eq!(ok.status, 200, "{}", ok.json);
    assert_eq!(ok.json["delivered"], true);
    assert_eq!(ok.json["http_status"], 204);
    assert_eq!(failing.json["delivered"], false);
    assert_eq!(failing.json["http_status"], 500);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert!(got[0].verified);
    assert!(got[0].body.contains("\"webhook.test\""));
}

#[tokio::test]
async fn after_a_rotation_both_secrets_verify_during_the_overlap() {
    let api = TestApi::spawn().await;
    let q = queues(&api.stack, 3).await;
    let (u, receiver, endpoint) = subscribed(&api, "wh-rotate", json!({})).await;
    let id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap().to_owned();

    let rotated = api
        .as_user(&u)
        .post(&format!("/webhooks/{id}/rotate-secret"), &json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.json);
    let new = rotated.json["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated.json["previous_secret_valid_until"].is_string());
    let listed = api.as_user(&u).webhooks("").await;
    assert!(listed.json["webhooks"][0].get("secret").is_none());
    notify(&api, &q, &u, "info", "After the rotation").await;
    drain(
        &api.stack,
        &pipeline(&api.stack, &q, &[]),
        Duration::from_secs(30),
    )
    .await;

    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert!(
        verifies_with(&old, &got[0]),
        "the old secret still verifies"
    );
    assert!(verifies_with(&new, &got[0]), "the new secret verifies");
    assert!(!verifies_with(
        &meterbell::notifications::channels::webhook::generate_secret().unwrap(),
        &got[0]
    ));
}

#[tokio::test]
async fn a_past_delivery_is_resent_once_per_request() {
    let api = TestApi::spawn().await;
    let q = queues(&api.stack, 3).await;
    let (u, receiver, endpoint) = subscribed(&api, "wh-resend", json!({})).await;
    let id = endpoint["id"].as_str().unwrap();
    notify(&api, &q, &u, "info", "Worth a resend").await;
    drain(
        &api.stack,
        &pipeline(&api.stack, &q, &[]),
        Duration::from_secs(30),
    )
    .await;
    let notification = api.as_user(&u).whole_inbox("").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let resend_route = api.function_with(
        "WebhookResendFunction",
        &[("WEBHOOK_QUEUE_URL", &q.webhook)],
    );
    let resent = resend_route
        .as_user(&u)
        .post(
            &format!("/webhooks/{id}/resend"),
            &json!({"notification_id": notification}),
        )
        .await;
    drain(
        &api.stack,
        &pipeline(&api.stack, &q, &[]),
        Duration::from_secs(30),
    )
    .await;

    assert_eq!(resent.status, 202, "{}", resent.json);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].id, got[1].id,
        "the same webhook-id as the first delivery"
    );
    assert!(got[1].verified);
    let other = unique_user("wh-resend-other");
    let theirs = api.as_admin().notify(&other, "info", "not yours").await;
    let foreign = api
        .as_user(&u)
        .post(
            &format!("/webhooks/{id}/resend"),
            &json!({"notification_id": theirs["id"]}),
        )
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.json);
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_warns_its_owner_then_is_disabled() {
    let api = TestApi::spawn().await;
    let q = queues(&api.stack, 3).await;
    let (u, receiver, endpoint) = subscribed(&api, "wh-failing", json!({})).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    let store = accounts(&api.stack);
    // Nine failures so far; the tenth is the warning mark.
    for _ in 0..9 {
        store.count_failure(&uid(&u), &id).await.unwrap();
    }
    receiver.script(&[Reply::Status(500), Reply::Status(500), Reply::Status(500)]);
    notify(&api, &q, &u, "info", "Into the void").await;
    let consumers = pipeline(&api.stack, &q, &[("WEBHOOK_RETRY_DELAYS", "1")]);
    drain(&api.stack, &consumers, Duration::from_secs(60)).await;

    let inbox = api.as_user(&u).whole_inbox("").await;
    let warnings: Vec<&Value> = inbox
        .iter()
        .filter(|n| n["title"] == "Webhook endpoint failing")
        .collect();
    assert_eq!(warnings.len(), 1, "{inbox:?}");
    assert_eq!(warnings[0]["type"], "warning");
    assert_eq!(warnings[0]["data"]["failures"], 10);

    // On to the disabling mark: the next failure is the 25th.
    let so_far = api.as_user(&u).webhooks("").await.json["webhooks"][0]["failures"]
        .as_i64()
        .unwrap();
    for _ in so_far..24 {
        store.count_failure(&uid(&u), &id).await.unwrap();
    }
    receiver.script(&[Reply::Status(503)]);
    notify(&api, &q, &u, "info", "The last straw").await;
    drain(&api.stack, &consumers, Duration::from_secs(60)).await;

    let listed = api.as_user(&u).webhooks("").await;
    assert_eq!(
        listed.json["webhooks"][0]["enabled"], false,
        "{}",
        listed.json
    );
    let inbox = api.as_user(&u).whole_inbox("").await;
    assert_eq!(
        inbox
            .iter()
            .filter(|n| n["title"] == "Webhook endpoint disabled")
            .count(),
        1
    );
    let on_again = api
        .as_user(&u)
        .put(&format!("/webhooks/{id}"), &json!({"enabled": true}))
        .await;
    assert_eq!(on_again.json["enabled"], true);
    assert_eq!(on_again.json["failures"], 0);
    assert_eq!(on_again.json["disabled_reason"], Value::Null);
}
