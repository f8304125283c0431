//! Email deliverability (README, "Email deliverability"): SES's bounce and complaint reports, as
//! the configuration set publishes them to EmailFeedbackQueue, pause email to that address for
//! its user, log the failure, tell the user in the inbox; email to a paused address is skipped
//! and logged; setting the address again lifts the pause.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use meterbell_dev::poller::Consumer;
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{
    app_for, consumer, count, drain, emails_to, pipeline, queue_pair, queues, send, Queues, TestApi,
};

struct Feedback {
    api: TestApi,
    q: Queues,
    queue: String,
    dlq: String,
    consumer: Consumer,
}

impl Feedback {
    async fn new() -> Feedback {
        let api = TestApi::spawn().await;
        let q = queues(&api.stack, 3).await;
        let (queue, dlq) = queue_pair(&api.stack.clients.sqs, "feedback", 3, 1).await;
        let app = app_for(
            &api.stack,
            "EmailFeedbackFunction",
            &q,
            &[("EMAIL_FEEDBACK_DLQ_URL", &dlq)],
        );
        let consumer = consumer(&api.stack, "EmailFeedbackFunction", &queue, app);
        Feedback {
            api,
            q,
            queue,
            dlq,
            consumer,
        }
    }

    /// A user with an email address and one emailed notification: (user, address, its id).
    async fn emailed_user(&self, prefix: &str) -> (String, String, String) {
        let u = unique_user(prefix);
        let address = format!("{u}@example.com");
        self.api
            .as_user(&u)
            .update_preferences(&json!({"email_address": address}))
            .await;
        self.job(&u, "first").await;
        let id = self.api.as_user(&u).whole_inbox("").await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (u, address, id)
    }

    async fn job(&self, u: &str, title: &str) {
        let job = json!({"job_id": format!("{title}-{u}"), "user_id": u, "type": "info",
            "title": title, "message": "hello", "channels": ["email"]});
        send(&self.api.stack, &self.q.jobs, &job.to_string()).await;
        self.settle().await;
    }

    async fn report(&self, event: Value) {
        send(&self.api.stack, &self.queue, &event.to_string()).await;
        self.settle().await;
    }

    async fn settle(&self) {
        drain(
            &self.api.stack,
            std::slice::from_ref(&self.consumer),
            Duration::from_secs(30),
        )
        .await;
        drain(
            &self.api.stack,
            &pipeline(&self.api.stack, &self.q, &[]),
            Duration::from_secs(30),
        )
        .await;
    }
}

/// SES's event for `address`, tagged as Meterbell's email of `user` and `notification`.
fn report(kind: &str, bounce_type: &str, user: &str, address: &str, notification: &str) -> Value {
    let mail = json!({"messageId": "m", "destination": [address], "tags": {
        "meterbell-user": [URL_SAFE_NO_PAD.encode(user)],
        "meterbell-notification": [notification.replace('-', "")]}});
    let feedback = format!("fb-{}", uuid::Uuid::new_v4());
    match kind {
        "Bounce" => json!({"eventType": "Bounce", "mail": mail, "bounce": {
            "bounceType": bounce_type, "bounceSubType": "General", "feedbackId": feedback,
            "timestamp": "2026-11-24T10:00:00.000Z",
            "bouncedRecipients": [{"emailAddress": address,
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}}),
        _ => json!({"eventType": "Complaint", "mail": mail, "complaint": {
            "feedbackId": feedback, "timestamp": "2026-11-24T10:00:00.000Z",
            "complaintFeedbackType": "abuse",
            "complainedRecipients": [{"emailAddress": address}]}}),
    }
}

#[tokio::test]
async fn a_hard_bounce_pauses_email_to_the_address_and_tells_the_user() {
    let t = Feedback::new().await;
    let (u, address, first) = t.emailed_user("bounce").await;
    assert_eq!(emails_to(&address).await.len(), 1);

    t.report(report("Bounce", "Permanent", &u, &address, &first))
        .await;
    t.job(&u, "second").await;

    let prefs = t.api.as_user(&u).preferences("").await;
    assert_eq!(
        prefs.json["email_suppressed"]["email_address"],
        address.as_str()
    );
    assert_eq!(prefs.json["email_suppressed"]["reason"], "bounce");
    let inbox = t.api.as_user(&u).whole_inbox("").await;
    let paused: Vec<&Value> = inbox
        .iter()
        .filter(|n| n["title"] == "Email paused")
        .collect();
    assert_eq!(paused.len(), 1, "{inbox:?}");
    assert_eq!(paused[0]["type"], "warning");
    assert_eq!(
        emails_to(&address).await.len(),
        1,
        "the second email was not attempted"
    );
    let log = t.api.as_user(&u).delivery_log(&first).await;
    assert!(
        log.iter()
            .any(|a| a["status"] == "failed"
                && a["error"].as_str().unwrap_or("").contains("550 5.1.1")),
        "{log:?}"
    );
    let second = inbox.iter().find(|n| n["title"] == "second").unwrap();
    let skipped = t
        .api
        .as_user(&u)
        .delivery_log(second["id"].as_str().unwrap())
        .await;
    assert_eq!(skipped[0]["status"], "skipped", "{skipped:?}");
}

#[tokio::test]
async fn a_complaint_pauses_email_and_setting_the_address_again_resumes_it() {
    let t = Feedback::new().await;
    let (u, address, first) = t.emailed_user("complaint").await;

    t.report(report("Complaint", "", &u, &address, &first))
        .await;
    t.report(report("Complaint", "", &u, &address, &first))
        .await;
    t.job(&u, "while paused").await;
    t.api
        .as_user(&u)
        .update_preferences(&json!({"email_address": address}))
        .await;
    t.job(&u, "after resuming").await;

    let inbox = t.api.as_user(&u).whole_inbox("").await;
    assert_eq!(
        inbox
            .iter()
            .filter(|n| n["title"] == "Email paused")
            .count(),
        1,
        "a repeated report pauses nothing new"
    );
    let subjects: Vec<String> = emails_to(&address)
        .await
        .into_iter()
        .map(|(subject, _, _)| subject)
        .collect();
    assert_eq!(subjects, ["first", "after resuming"]);
    let prefs = t.api.as_user(&u).preferences("").await;
    assert!(
        prefs.json.get("email_suppressed").is_none(),
        "{}",
        prefs.json
    );
}

#[tokio::test]
async fn soft_bounces_old_addresses_and_unreadable_reports_pause_nothing() {
    let t = Feedback::new().await;
    let (u, address, first) = t.emailed_user("soft").await;

    t.report(report("Bounce", "Transient", &u, &address, &first))
        .await;
    t.report(report("Bounce", "Permanent", &u, "old@example.com", &first))
        .await;
    send(&t.api.stack, &t.queue, "a report that is not JSON").await;
    t.settle().await;

    let prefs = t.api.as_user(&u).preferences("").await;
    assert!(
        prefs.json.get("email_suppressed").is_none(),
        "{}",
        prefs.json
    );
    assert_eq!(count(&t.api.stack.clients.sqs, &t.dlq).await, 1);
}
