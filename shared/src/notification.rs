//! In-app notifications: the domain type and its kinds (seed 000).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::UserId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationType {
    Info,
    Warning,
    Error,
    Success,
}

impl NotificationType {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "info" => Some(Self::Info),
            "warning" => Some(Self::Warning),
            "error" => Some(Self::Error),
            "success" => Some(Self::Success),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Success => "success",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// UUID v7: time-ordered, so the sort key orders a user's inbox newest first.
    pub id: Uuid,
    pub user_id: UserId,
    pub kind: NotificationType,
    pub title: String,
    pub message: String,
    pub data: Option<serde_json::Value>,
    pub is_read: bool,
    pub read_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Notification {
    pub fn new(
        user_id: UserId,
        kind: NotificationType,
        title: &str,
        message: &str,
        data: Option<serde_json::Value>,
    ) -> Self {
        Notification {
            id: Uuid::now_v7(),
            user_id,
            kind,
            title: title.to_owned(),
            message: message.to_owned(),
            data,
            is_read: false,
            read_at: None,
            created_at: Utc::now(),
        }
    }
}
