//! How a notification leaves the inbox: each channel in one place, its message format and its
//! sender (an SQS consumer) side by side.

pub mod email;
pub mod webhook;

use anyhow::Context;

use crate::notifications::delivery::{EmailMessage, WebhookMessage};
use crate::notifications::notification::NotificationView;
use crate::notifications::preferences::Preferences;
use crate::notifications::store::Accounts;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::names::wire_enum;
use crate::platform::sqs;

wire_enum! {
    /// Delivery channels a user can switch per type (the inbox is always on). The one list of
    /// channels: preferences, job validation and their messages follow it.
    pub enum Channel {
        Email => "email",
        Webhook => "webhook",
    }
}

/// The name jobs use for the inbox, which is not a switchable channel.
pub const IN_APP: &str = "in_app";

/// Queues the delivery of a notification on `channel` (the user's preferences allow it): an
/// email to their address, a webhook message per enabled endpoint. Each channel's sender takes
/// it from there.
pub(crate) async fn enqueue(
    app: &App,
    accounts: &Accounts,
    prefs: &Preferences,
    channel: Channel,
    user: &UserId,
    view: &NotificationView,
) -> anyhow::Result<()> {
    match channel {
        Channel::Email => {
            let Some(to) = &prefs.email_address else {
                return Ok(());
            };
            if prefs.is_suppressed(to) {
                // Not attempted: the address bounced for good or complained. Logged, so the
                // delivery log says why no email went out.
                let attempt = crate::notifications::delivery::Attempt {
                    notification_id: uuid::Uuid::parse_str(&view.id).context("notification id")?,
                    channel: Channel::Email,
                    target: to.to_string(),
                    endpoint_id: None,
                    attempt: 0,
                    status: crate::notifications::delivery::AttemptStatus::Skipped,
                    http_status: None,
                    error: Some(
                        "email to this address is paused after a bounce or complaint".into(),
                    ),
                    at: chrono::Utc::now(),
                };
                accounts
                    .record_attempt(user, &attempt, crate::notifications::store::expires_at(app))
                    .await
                    .context("logging the skipped email")?;
                tracing::info!(user = %user, "email skipped: the address is suppressed");
                return Ok(());
            }
            let queue = require(&app.config().resources.email_queue_url, "EMAIL_QUEUE_URL")?;
            let message = EmailMessage {
                to: to.to_string(),
                notification: view.clone(),
            };
            sqs::send_json(app.sqs().await, queue, &[message]).await?;
        }
        Channel::Webhook => {
            let endpoints = accounts
                .endpoints(user)
                .await
                .context("reading webhook endpoints")?;
            let messages: Vec<WebhookMessage> = endpoints
                .iter()
                .filter(|e| e.enabled && e.accepts(view.kind))
                .map(|e| WebhookMessage {
                    endpoint_id: e.id.clone(),
                    notification: view.clone(),
                    resend: None,
                })
                .collect();
            if !messages.is_empty() {
                let queue = require(
                    &app.config().resources.webhook_queue_url,
                    "WEBHOOK_QUEUE_URL",
                )?;
                sqs::send_json(app.sqs().await, queue, &messages).await?;
            }
        }
    }
    Ok(())
}
