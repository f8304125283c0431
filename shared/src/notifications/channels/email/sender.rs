//! `email-sender`, the consumer of `EmailQueue`: one SES `SendRawEmail` per message, with a text
//! and an HTML body, the configured sender and reply-to, and RFC 8058 one-click unsubscribe
//! headers for the notification's type. Every attempt is logged for
//! `GET notifications/{id}/deliveries`.
//!
//! Permanent failures (the message is rejected, the sender is not verified, the recipient is
//! invalid) are recorded as `failed` and not retried. Throttling, SES 5xx and network failures
//! are recorded as `retrying` and reported as batch item failures: SQS redelivers after the
//! visibility timeout and, at `maxReceiveCount`, dead-letters the message.

use std::sync::Arc;

use anyhow::{anyhow, Context};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_ses::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ses::operation::send_raw_email::SendRawEmailError;
use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::RawMessage;
use chrono::Utc;
use uuid::Uuid;

use crate::notifications::channels::email::{self, mime};
use crate::notifications::channels::Channel;
use crate::notifications::delivery::{Attempt, AttemptStatus, EmailMessage};
use crate::notifications::store;
use crate::notifications::store::accounts::Claim;
use crate::notifications::unsubscribe;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::handler::SqsFuture;
use crate::platform::sqs::{self, Settled};

/// How long one invocation holds the sending of an email (longer than the function timeout).
const CLAIM_SECONDS: i64 = 45;

/// SES error codes that no retry can fix.
const PERMANENT: &[&str] = &[
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "MailFromDomainNotVerified",
    "ConfigurationSetDoesNotExist",
    "ConfigurationSetDoesNotExistException",
    "InvalidParameterValue",
];

/// How an SES failure is treated.
#[derive(Debug, PartialEq, Eq)]
pub enum SesFailure {
    Permanent(String),
    Transient(String),
}

/// Sorts an SES error into permanent and transient, with the text recorded for it.
pub fn classify<R: std::fmt::Debug>(err: &SdkError<SendRawEmailError, R>) -> SesFailure {
    match err {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("Unknown");
            let text = match e.err().message() {
                Some(m) => format!("{code}: {m}"),
                None => code.to_owned(),
            };
            if PERMANENT.contains(&code) || matches!(e.err(), SendRawEmailError::MessageRejected(_))
            {
                SesFailure::Permanent(text)
            } else {
                SesFailure::Transient(text)
            }
        }
        SdkError::TimeoutError(_) => SesFailure::Transient("SES did not answer in time".into()),
        other => SesFailure::Transient(format!(
            "SES request failed: {}",
            aws_sdk_ses::error::DisplayErrorContext(other)
        )),
    }
}

/// One email as every sender of ours sends it: MIME built here (for the one-click unsubscribe
/// headers SES's formatted send cannot carry), the deployment's sender, reply-to and
/// configuration set, and the feedback tags that tie a bounce back to the user.
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    pub unsubscribe: Option<&'a str>,
    pub tags: Vec<aws_sdk_ses::types::MessageTag>,
}

/// Sends `mail` with SES `SendRawEmail`. The outer error is a deployment fault (no sender
/// configured); the inner one is SES's answer, classified.
pub async fn send_raw(app: &App, mail: Outgoing<'_>) -> anyhow::Result<Result<(), SesFailure>> {
    let settings = &app.config().notifications;
    let sender = require(&settings.email_sender, "EMAIL_SENDER")?;
    let boundary = format!("meterbell-{}", Uuid::now_v7().simple());
    let raw = mime::render(&mime::Mail {
        from: sender,
        to: mail.to,
        reply_to: settings.email_reply_to.as_deref(),
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        unsubscribe: mail.unsubscribe,
        boundary: &boundary,
    });
    let result = app
        .ses()
        .await
        .send_raw_email()
        .source(sender)
        .destinations(mail.to)
        .raw_message(RawMessage::builder().data(Blob::new(raw)).build()?)
        .set_configuration_set_name(settings.email_configuration_set.clone())
        .set_tags(Some(mail.tags))
        .send()
        .await;
    Ok(result.map(|_| ()).map_err(|e| classify(&e)))
}

/// `Ok` when the message is done (sent, or failed for good); `Err` to retry it.
async fn send_one(app: &App, record: &SqsMessage) -> anyhow::Result<()> {
    let msg: EmailMessage = serde_json::from_str(record.body.as_deref().unwrap_or_default())
        .context("the message is not an email delivery")?;
    let user = UserId::parse(&msg.notification.user_id).map_err(|e| anyhow!("user_id {e}"))?;
    let id = Uuid::parse_str(&msg.notification.id).context("notification id")?;
    let accounts = store::accounts(app).await?;
    let target_key = format!("email:{}", msg.to);
    let expires = store::expires_at(app);
    let settings = &app.config().notifications;
    // A deployment without a sender fails here, before the email is claimed.
    require(&settings.email_sender, "EMAIL_SENDER")?;
    match accounts
        .claim_delivery(&user, &id, &target_key, CLAIM_SECONDS, expires)
        .await?
    {
        Claim::Claimed => {}
        Claim::Delivered => {
            tracing::info!(notification = %id, "email already sent; skipping the repeat");
            return Ok(());
        }
        Claim::Busy => return Err(anyhow!("another copy of this email is being sent")),
    }
    let rendered = email::render(&msg.notification);
    // One-click unsubscribe from this type of email, where the deployment knows its URL.
    let unsubscribe = settings.public_api_url.as_deref().and_then(|base| {
        unsubscribe::token(&app.config().cursor_secret, &user, msg.notification.kind)
            .map(|t| unsubscribe::link(base, &t))
    });
    let result = send_raw(
        app,
        Outgoing {
            to: &msg.to,
            subject: &rendered.subject,
            text: &rendered.text,
            html: &rendered.html,
            unsubscribe: unsubscribe.as_deref(),
            tags: email::feedback::tags(&user, &id)?,
        },
    )
    .await?;
    let mut attempt = Attempt {
        notification_id: id,
        channel: Channel::Email,
        target: msg.to.clone(),
        endpoint_id: None,
        attempt: sqs::receive_count(record),
        status: AttemptStatus::Delivered,
        http_status: None,
        error: None,
        at: Utc::now(),
    };
    let outcome = match result {
        Ok(()) => Ok(()),
        Err(failure) => match failure {
            SesFailure::Permanent(text) => {
                tracing::warn!(notification = %id, error = %text, "email failed for good");
                attempt.status = AttemptStatus::Failed;
                attempt.error = Some(text);
                Ok(())
            }
            SesFailure::Transient(text) => {
                tracing::warn!(notification = %id, error = %text, "email failed; will retry");
                attempt.status = AttemptStatus::Retrying;
                attempt.error = Some(text.clone());
                Err(anyhow!("SES: {text}"))
            }
        },
    };
    accounts
        .settle_delivery(&user, &attempt, &target_key, expires)
        .await?;
    outcome
}

/// The `email-sender` function.
pub fn email_sender(app: Arc<App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let batch = sqs::run_batch(&event.records, 8, |record| {
            let app = &app;
            async move { send_one(app, record).await.map(Settled::Done) }
        })
        .await;
        tracing::info!(
            received = event.records.len(),
            failed = batch.retried(),
            "emails handled"
        );
        batch.response
    })
}
