//! Deliveries beyond the inbox: the messages the dispatcher puts on `EmailQueue` and
//! `WebhookQueue`, and the log of every attempt (`GET notifications/{id}/deliveries`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::notifications::channels::Channel;
use crate::notifications::notification::{timestamp, NotificationView};

/// One email to send (an `EmailQueue` message body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmailMessage {
    pub to: String,
    pub notification: NotificationView,
}

/// One webhook to deliver to one endpoint (a `WebhookQueue` message body). The endpoint's URL
/// and secret are read when sending, so a deleted or disabled endpoint gets nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookMessage {
    pub endpoint_id: String,
    pub notification: NotificationView,
    /// Set on a resend the user asked for (`POST webhooks/{id}/resend`): that request's id, so
    /// the delivery is made again even though the notification reached the endpoint before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend: Option<String>,
}

/// The body of a webhook delivery (README, "Message contracts").
#[derive(Serialize, Deserialize)]
pub struct WebhookPayload {
    #[serde(rename = "type")]
    pub kind: String,
    pub timestamp: String,
    pub data: NotificationView,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptStatus {
    /// Accepted by SES, or answered 2xx by the endpoint.
    Delivered,
    /// Failed for now; the message will be tried again.
    Retrying,
    /// Failed for good (rejected, invalid recipient, endpoint gone); not retried.
    Failed,
    /// The endpoint resolves to an address webhooks may not reach.
    Refused,
    /// Nothing sent: the endpoint was deleted or disabled.
    Skipped,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::Refused => "refused",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Delivered,
            Self::Retrying,
            Self::Failed,
            Self::Refused,
            Self::Skipped,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// One delivery attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub notification_id: Uuid,
    pub channel: Channel,
    /// The email address, or the endpoint's URL.
    pub target: String,
    /// The endpoint's id, for webhooks.
    pub endpoint_id: Option<String>,
    /// 1 for the first try of this message, then the queue's receive count.
    pub attempt: u32,
    pub status: AttemptStatus,
    pub http_status: Option<u16>,
    /// What went wrong: the SES error code and message, or the HTTP failure.
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Serialize)]
pub struct AttemptView {
    pub channel: &'static str,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    pub attempt: u32,
    pub status: AttemptStatus,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub at: String,
}

impl Attempt {
    pub fn view(&self) -> AttemptView {
        AttemptView {
            channel: self.channel.as_str(),
            target: self.target.clone(),
            endpoint_id: self.endpoint_id.clone(),
            attempt: self.attempt,
            status: self.status,
            http_status: self.http_status,
            error: self.error.clone(),
            at: timestamp(self.at),
        }
    }
}
