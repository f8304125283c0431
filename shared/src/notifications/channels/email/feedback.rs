//! Deliverability: every email carries SES message tags naming its user and notification, and
//! goes out through the deployment's configuration set, which publishes bounces and complaints
//! (through SNS) to `EmailFeedbackQueue`. `email-feedback` reads them: a permanent bounce or a
//! complaint suppresses the address for that user (email paused, shown in the preferences),
//! records the failure in the notification's delivery log and tells the user in the inbox. A
//! transient bounce changes nothing (SES retried it already). The dispatcher then skips email to
//! a suppressed address and logs the skip; setting the address again lifts the suppression.

use std::sync::Arc;

use anyhow::Context;
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_ses::types::MessageTag;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::notifications::channels::{Channel, IN_APP};
use crate::notifications::delivery::{Attempt, AttemptStatus};
use crate::notifications::jobs::NotificationJob;
use crate::notifications::preferences::Suppression;
use crate::notifications::store;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::handler::SqsFuture;
use crate::platform::sqs::{self, Settled};

const USER_TAG: &str = "meterbell-user";
const NOTIFICATION_TAG: &str = "meterbell-notification";

/// The tags an email is sent with. SES tag values allow letters, digits, `_` and `-` only, so
/// the user id travels base64url-encoded.
pub fn tags(user: &UserId, notification: &Uuid) -> anyhow::Result<Vec<MessageTag>> {
    let mut tags = user_tags(user)?;
    tags.push(
        MessageTag::builder()
            .name(NOTIFICATION_TAG)
            .value(notification.simple().to_string())
            .build()?,
    );
    Ok(tags)
}

/// The tags of an email that belongs to no notification (a usage report).
pub fn user_tags(user: &UserId) -> anyhow::Result<Vec<MessageTag>> {
    Ok(vec![MessageTag::builder()
        .name(USER_TAG)
        .value(URL_SAFE_NO_PAD.encode(user.as_str()))
        .build()?])
}

/// One bounce or complaint that suppresses addresses.
#[derive(Debug, PartialEq)]
pub struct Feedback {
    /// `bounce` or `complaint`.
    pub reason: &'static str,
    pub detail: String,
    pub addresses: Vec<String>,
    pub user: UserId,
    pub notification: Option<Uuid>,
    /// SES's id of the report: names the user's one in-app notice.
    pub feedback_id: String,
    pub at: DateTime<Utc>,
}

/// What an `EmailFeedbackQueue` message holds: `Ok(None)` for a report that suppresses nothing
/// (a transient bounce, a delivery, an email without our tags); `Err` for one that cannot be
/// read. The SES event is the body itself (SNS raw delivery) or an SNS envelope's `Message`.
pub fn parse(body: &str) -> Result<Option<Feedback>, String> {
    let mut event: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if event.get("Type").and_then(Value::as_str) == Some("Notification") {
        let inner = event
            .get("Message")
            .and_then(Value::as_str)
            .ok_or("an SNS notification without a Message")?;
        event = serde_json::from_str(inner).map_err(|e| format!("SNS Message is not JSON: {e}"))?;
    }
    // Configuration-set events say `eventType`; identity notifications `notificationType`.
    let kind = event
        .get("eventType")
        .or_else(|| event.get("notificationType"))
        .and_then(Value::as_str)
        .ok_or("neither eventType nor notificationType")?;
    let (reason, report, recipients) = match kind {
        "Bounce" => {
            let bounce = &event["bounce"];
            if bounce["bounceType"].as_str() != Some("Permanent") {
                return Ok(None);
            }
            ("bounce", bounce, "bouncedRecipients")
        }
        "Complaint" => ("complaint", &event["complaint"], "complainedRecipients"),
        _ => return Ok(None),
    };
    let tag = |name: &str| {
        event["mail"]["tags"][name]
            .as_array()
            .and_then(|v| v.first())
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let Some(user_tag) = tag(USER_TAG) else {
        return Ok(None);
    };
    let user = URL_SAFE_NO_PAD
        .decode(&user_tag)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|u| UserId::parse(&u).ok())
        .ok_or("the user tag is not a user id")?;
    let addresses: Vec<String> = report[recipients]
        .as_array()
        .ok_or_else(|| format!("no {recipients}"))?
        .iter()
        .filter_map(|r| r["emailAddress"].as_str().map(str::to_owned))
        .collect();
    let detail = match reason {
        "bounce" => report[recipients][0]["diagnosticCode"]
            .as_str()
            .or(report["bounceSubType"].as_str())
            .unwrap_or("permanent bounce")
            .to_owned(),
        _ => report["complaintFeedbackType"]
            .as_str()
            .unwrap_or("marked as spam")
            .to_owned(),
    };
    Ok(Some(Feedback {
        reason,
        detail,
        addresses,
        user,
        notification: tag(NOTIFICATION_TAG).and_then(|t| Uuid::parse_str(&t).ok()),
        feedback_id: report["feedbackId"]
            .as_str()
            .ok_or("no feedbackId")?
            .to_owned(),
        at: report["timestamp"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
    }))
}

/// Suppresses the reported addresses of the user, logs the failure, tells the user once.
async fn apply(app: &App, f: &Feedback) -> anyhow::Result<()> {
    let accounts = store::accounts(app).await?;
    for address in &f.addresses {
        let suppression = Suppression {
            email_address: address.clone(),
            reason: f.reason.to_owned(),
            detail: f.detail.clone(),
            at: f.at,
        };
        let paused = accounts.suppress_email(&f.user, &suppression).await?;
        if let Some(notification) = f.notification {
            let attempt = Attempt {
                notification_id: notification,
                channel: Channel::Email,
                target: address.clone(),
                endpoint_id: None,
                attempt: 0,
                status: AttemptStatus::Failed,
                http_status: None,
                error: Some(format!("{}: {}", f.reason, f.detail)),
                at: f.at,
            };
            accounts
                .record_attempt(&f.user, &attempt, store::expires_at(app))
                .await?;
        }
        if !paused {
            continue;
        }
        tracing::warn!(user = %f.user, reason = f.reason, "email address suppressed");
        let why = match f.reason {
            "bounce" => "bounced for good",
            _ => "was reported as spam by its recipient",
        };
        let job = NotificationJob {
            job_id: format!("email-suppressed:{}", f.feedback_id),
            user_id: Some(f.user.to_string()),
            user_ids: None,
            kind: "warning".into(),
            title: "Email paused".into(),
            message: format!(
                "Our email to {address} {why}, so we stopped sending email there. Set your email \
                 address again in the notification preferences to resume."
            ),
            data: Some(json!({"email_address": address, "reason": f.reason, "detail": f.detail})),
            channels: Some(vec![IN_APP.into()]),
        };
        let queue = require(
            &app.config().resources.notification_jobs_queue_url,
            "NOTIFICATION_JOBS_QUEUE_URL",
        )?;
        sqs::send_json(app.sqs().await, queue, &[job]).await?;
    }
    Ok(())
}

/// `email-feedback`, the consumer of `EmailFeedbackQueue`.
pub fn email_feedback(app: Arc<App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let batch = sqs::run_batch(&event.records, 4, |record| {
            let app = &app;
            async move {
                let body = record.body.as_deref().unwrap_or_default();
                match parse(body) {
                    Ok(Some(f)) => apply(app, &f).await.context("applying email feedback")?,
                    Ok(None) => {}
                    Err(why) => {
                        let dlq = require(
                            &app.config().resources.email_feedback_dlq_url,
                            "EMAIL_FEEDBACK_DLQ_URL",
                        )?;
                        sqs::dead_letter_record(app.sqs().await, dlq, record, &why).await?;
                    }
                }
                Ok(Settled::Done(()))
            }
        })
        .await;
        batch.response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounce(kind: &str, user: &str) -> String {
        json!({
            "eventType": "Bounce",
            "bounce": {"bounceType": kind, "bounceSubType": "General", "feedbackId": "fb-1",
                "timestamp": "2026-11-24T10:00:00.000Z",
                "bouncedRecipients": [{"emailAddress": "gone@example.com", "action": "failed",
                    "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
            "mail": {"messageId": "m-1", "destination": ["gone@example.com"],
                "tags": {USER_TAG: [URL_SAFE_NO_PAD.encode(user)],
                         NOTIFICATION_TAG: ["019ab3c45d6e7f809a1b2c3d4e5f6a7b"]}}
        })
        .to_string()
    }

    #[test]
    fn a_permanent_bounce_names_the_user_and_address_from_the_tags() {
        let f = parse(&bounce("Permanent", "user.one@corp"))
            .unwrap()
            .unwrap();
        assert_eq!(f.user.as_str(), "user.one@corp");
        assert_eq!(f.reason, "bounce");
        assert_eq!(f.addresses, ["gone@example.com"]);
        assert_eq!(f.detail, "smtp; 550 5.1.1 user unknown");
        assert!(f.notification.is_some());
    }

    #[test]
    fn transient_bounces_and_untagged_mail_suppress_nothing() {
        assert_eq!(parse(&bounce("Transient", "u1")), Ok(None));
        let untagged = json!({"eventType": "Complaint", "complaint": {"feedbackId": "x",
            "complainedRecipients": [{"emailAddress": "a@b.c"}]}, "mail": {"tags": {}}});
        assert_eq!(parse(&untagged.to_string()), Ok(None));
        assert!(parse("not json").is_err());
    }

    #[test]
    fn an_sns_envelope_is_opened() {
        let envelope = json!({"Type": "Notification", "Message": bounce("Permanent", "u1")});
        assert!(parse(&envelope.to_string()).unwrap().is_some());
    }
}
