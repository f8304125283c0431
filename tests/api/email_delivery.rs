//! The email sender against moto's SES (and a fake SES on 127.0.0.1 for throttling and 5xx):
//! what is sent, what is logged, what is retried and what is not.

use std::time::Duration;

use meterbell::notifications::delivery::EmailMessage;
use meterbell_dev::poller::Consumer;
use meterbell_dev::receiver::{Receiver, Reply};
use meterbell_dev::stack::LocalStack;
use meterbell_dev::testing::unique_user;
use meterbell_dev::tokens::DEV_EMAIL_SENDER;
use serde_json::json;

use crate::helpers::{
    app_for, app_with_ses, consumer, count, drain, emails_to, pipeline, queues, send, Queues,
    TestApi,
};

/// A new user with an email address in their preferences: (user, address).
async fn with_address(api: &TestApi, prefix: &str) -> (String, String) {
    let u = unique_user(prefix);
    let address = format!("{u}@example.com");
    let reply = api
        .as_user(&u)
        .update_preferences(&json!({"email_address": address}))
        .await;
    assert_eq!(reply.status, 200);
    (u, address)
}

#[tokio::test]
async fn an_email_reaches_ses_with_its_recipient_subject_and_escaped_body() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (u, address) = with_address(&api, "mail").await;
    let job = json!({"job_id": format!("mail-{u}"), "user_id": u, "type": "warning",
        "title": "Low <Credits>", "message": "Tom & Jerry <b>spent</b> it",
        "data": {"credits_remaining": 500}});
    send(stack, &q.jobs, &job.to_string()).await;

    drain(stack, &pipeline(stack, &q, &[]), Duration::from_secs(30)).await;

    let emails = emails_to(&address).await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let (subject, body, source) = &emails[0];
    assert_eq!(subject, "Low <Credits>");
    assert_eq!(source, DEV_EMAIL_SENDER);
    assert!(
        body.contains("Tom &amp; Jerry &lt;b&gt;spent&lt;/b&gt; it"),
        "{body}"
    );
    assert!(body.contains("Low &lt;Credits&gt;"), "{body}");
    assert!(!body.contains("<b>spent"), "{body}");
    assert!(body.contains("credits_remaining"));

    let id = api.as_user(&u).whole_inbox("").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = api.as_user(&u).delivery_log(&id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["channel"], "email");
    assert_eq!(log[0]["target"], address.as_str());
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempt"], 1);
    assert!(log[0]["at"].is_string());
}

#[tokio::test]
async fn a_repeated_email_message_sends_once() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (u, address) = with_address(&api, "repeat").await;
    let created = api.as_admin().notify(&u, "info", "Once").await;
    let message = EmailMessage {
        to: address.clone(),
        notification: serde_json::from_value(created).unwrap(),
    };
    let body = serde_json::to_string(&message).unwrap();
    send(stack, &q.email, &body).await;
    send(stack, &q.email, &body).await;
    let sender = email_sender(stack, &q);

    drain(stack, &[sender], Duration::from_secs(20)).await;

    assert_eq!(emails_to(&address).await.len(), 1);
}

#[tokio::test]
async fn a_rejected_email_is_recorded_as_failed_and_not_retried() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (u, address) = with_address(&api, "rejected").await;
    let job = json!({"job_id": format!("rej-{u}"), "user_id": u, "type": "error",
        "title": "t", "message": "m"});
    send(stack, &q.jobs, &job.to_string()).await;
    let consumers = pipeline(stack, &q, &[("EMAIL_SENDER", "unverified@nowhere.example")]);

    drain(stack, &consumers, Duration::from_secs(30)).await;

    assert!(emails_to(&address).await.is_empty());
    assert_eq!(
        count(&stack.clients.sqs, &q.email_dlq).await,
        0,
        "not retried into the DLQ"
    );
    let id = api.as_user(&u).whole_inbox("").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = api.as_user(&u).delivery_log(&id).await;
    assert_eq!(log.len(), 1, "one attempt only: {log:?}");
    assert_eq!(log[0]["status"], "failed");
    assert!(
        log[0]["error"]
            .as_str()
            .unwrap()
            .contains("MessageRejected"),
        "{log:?}"
    );
}

#[tokio::test]
async fn an_invalid_recipient_is_recorded_as_failed_and_not_retried() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let u = unique_user("norecipient");
    let created = api.as_admin().notify(&u, "info", "Hi").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let message = EmailMessage {
        to: "no-at-sign".into(),
        notification: serde_json::from_value(created).unwrap(),
    };
    send(stack, &q.email, &serde_json::to_string(&message).unwrap()).await;
    let sender = email_sender(stack, &q);

    drain(stack, &[sender], Duration::from_secs(20)).await;

    assert_eq!(count(&stack.clients.sqs, &q.email_dlq).await, 0);
    let log = api.as_user(&u).delivery_log(&id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "failed");
    assert!(
        log[0]["error"]
            .as_str()
            .unwrap()
            .contains("InvalidParameterValue"),
        "{log:?}"
    );
}

const THROTTLED: &str = r#"<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Maximum sending rate exceeded.</Message></Error><RequestId>5f1c4bde</RequestId></ErrorResponse>"#;

#[tokio::test]
async fn throttling_and_server_errors_are_retried_then_dead_lettered() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 2).await;
    let fake_ses = Receiver::start(0).await.unwrap();
    fake_ses.script(&[Reply::Body(400, THROTTLED), Reply::Status(503)]);
    let (u, _) = with_address(&api, "throttled").await;
    let created = api.as_admin().notify(&u, "info", "Later").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let message = EmailMessage {
        to: format!("{u}@example.com"),
        notification: serde_json::from_value(created).unwrap(),
    };
    send(stack, &q.email, &serde_json::to_string(&message).unwrap()).await;
    let app = app_with_ses(stack, "EmailSenderFunction", &q, &[], &fake_ses.url(""));
    let sender = consumer(stack, "EmailSenderFunction", &q.email, app);

    drain(stack, &[sender], Duration::from_secs(30)).await;

    assert_eq!(
        fake_ses.received().len(),
        2,
        "tried again after the throttling"
    );
    assert_eq!(
        count(&stack.clients.sqs, &q.email_dlq).await,
        1,
        "then dead-lettered"
    );
    let log = api.as_user(&u).delivery_log(&id).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log.iter().all(|a| a["status"] == "retrying"));
    assert!(
        log[0]["error"].as_str().unwrap().contains("Throttling"),
        "{log:?}"
    );
    assert_eq!(log[0]["attempt"], 1);
    assert_eq!(log[1]["attempt"], 2);
}

/// The email sender as the template configures it, on the test queues.
fn email_sender(stack: &LocalStack, q: &Queues) -> Consumer {
    consumer(
        stack,
        "EmailSenderFunction",
        &q.email,
        app_for(stack, "EmailSenderFunction", q, &[]),
    )
}

#[tokio::test]
async fn every_email_offers_one_click_unsubscribe_from_its_type_and_a_get_changes_nothing() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (u, address) = with_address(&api, "unsub").await;
    let job = json!({"job_id": format!("unsub-{u}"), "user_id": u, "type": "info",
        "title": "Weekly news", "message": "hello"});
    send(stack, &q.jobs, &job.to_string()).await;
    drain(stack, &pipeline(stack, &q, &[]), Duration::from_secs(30)).await;
    let mail = &crate::helpers::mails_to(&address).await[0];
    assert_eq!(
        mail.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let link = mail.header("List-Unsubscribe").unwrap();
    let token = link
        .trim_matches(|c| c == '<' || c == '>')
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();
    let path = format!("/unsubscribe?token={token}");

    let page = api.anonymous().get(&path).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("Unsubscribe from info emails"),
        "{}",
        page.text
    );
    assert!(page
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("content-security-policy")
            && v.contains("default-src 'none'")));
    assert_eq!(
        email_info(&api, &u).await,
        json!(true),
        "a GET changes nothing"
    );
    let done = api
        .anonymous()
        .with_header("content-type", "application/x-www-form-urlencoded")
        .send("POST", &path, Some("List-Unsubscribe=One-Click"))
        .await;
    assert_eq!(done.status, 200);
    assert_eq!(email_info(&api, &u).await, json!(false));
    let prefs = api.as_user(&u).preferences("").await;
    assert_eq!(
        prefs.json["channels"]["email"]["warning"],
        json!(true),
        "other types stay"
    );

    let forged = api
        .anonymous()
        .send(
            "POST",
            &format!("{path}x"),
            Some("List-Unsubscribe=One-Click"),
        )
        .await;
    assert_eq!(forged.status, 400);
    assert_eq!(forged.json["error"]["field"], "token");
}

/// The user's switch of `info` emails.
async fn email_info(api: &TestApi, u: &str) -> serde_json::Value {
    api.as_user(u).preferences("").await.json["channels"]["email"]["info"].clone()
}
