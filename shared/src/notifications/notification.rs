//! In-app notifications: the domain type, its kinds, the content rules every way of creating one
//! shares (admin route, notification jobs), and the JSON view the API shows (README, "API (v1)").

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::platform::domain::UserId;
use crate::platform::names::wire_enum;

wire_enum! {
    /// A notification's kind. The one list of types: preferences, counters, validation and the
    /// API's messages all follow it.
    pub enum NotificationType {
        Info => "info",
        Warning => "warning",
        Error => "error",
        Success => "success",
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

    /// A new unread notification for `user` with checked content.
    pub fn from_content(user_id: UserId, content: &Content) -> Self {
        Self::new(
            user_id,
            content.kind,
            &content.title,
            &content.message,
            content.data.clone(),
        )
    }

    /// The seed-000 JSON shape.
    pub fn view(&self) -> NotificationView {
        NotificationView {
            id: self.id.to_string(),
            user_id: self.user_id.to_string(),
            kind: self.kind,
            title: self.title.clone(),
            message: self.message.clone(),
            data: self.data.clone(),
            is_read: self.is_read,
            read_at: self.read_at.map(timestamp),
            created_at: timestamp(self.created_at),
        }
    }
}

/// RFC 3339, UTC, milliseconds: the one timestamp format of the API.
/// Serializes a time as [`timestamp`] writes it.
pub fn serialize_timestamp<S: serde::Serializer>(
    t: &DateTime<Utc>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&timestamp(*t))
}

pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A notification as the API, webhooks and queue messages carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationView {
    pub id: String,
    pub user_id: String,
    #[serde(rename = "type")]
    pub kind: NotificationType,
    pub title: String,
    pub message: String,
    pub data: Option<serde_json::Value>,
    pub is_read: bool,
    pub read_at: Option<String>,
    pub created_at: String,
}

/// What a notification says, checked once: a known type, a title and a message within their
/// limits, and `data` a JSON object (or absent) of bounded size.
#[derive(Clone, Debug, PartialEq)]
pub struct Content {
    pub kind: NotificationType,
    pub title: String,
    pub message: String,
    pub data: Option<serde_json::Value>,
}

/// Why content was refused: the field and a message for whoever sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ContentError {
    pub field: &'static str,
    pub message: String,
}

impl Content {
    pub const MAX_TITLE_CHARS: usize = 200;
    pub const MAX_MESSAGE_CHARS: usize = 4_000;
    pub const MAX_DATA_BYTES: usize = 16 * 1024;

    pub fn parse(
        kind: &str,
        title: &str,
        message: &str,
        data: Option<serde_json::Value>,
    ) -> Result<Self, ContentError> {
        let err = |field, message: String| ContentError { field, message };
        let kind = NotificationType::parse(kind).ok_or_else(|| {
            err(
                "type",
                format!(
                    "type must be {}, not {kind:?}",
                    NotificationType::names("or")
                ),
            )
        })?;
        for (field, value, max) in [
            ("title", title, Self::MAX_TITLE_CHARS),
            ("message", message, Self::MAX_MESSAGE_CHARS),
        ] {
            if value.trim().is_empty() {
                return Err(err(field, format!("{field} must not be empty")));
            }
            let chars = value.chars().count();
            if chars > max {
                return Err(err(
                    field,
                    format!("{field} must be at most {max} characters (it has {chars})"),
                ));
            }
            if value
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
            {
                return Err(err(
                    field,
                    format!("{field} must not contain control characters"),
                ));
            }
        }
        let data = match data {
            None | Some(serde_json::Value::Null) => None,
            Some(value @ serde_json::Value::Object(_)) => {
                let size = value.to_string().len();
                if size > Self::MAX_DATA_BYTES {
                    return Err(err(
                        "data",
                        format!(
                            "data must be at most {} bytes of JSON (it has {size})",
                            Self::MAX_DATA_BYTES
                        ),
                    ));
                }
                Some(value)
            }
            Some(_) => return Err(err("data", "data must be a JSON object or null".into())),
        };
        Ok(Content {
            kind,
            title: title.to_owned(),
            message: message.to_owned(),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_within_its_limits_is_accepted() {
        let c =
            Content::parse("warning", "Low Credits", "500 left", Some(json!({"n": 1}))).unwrap();
        assert_eq!(c.kind, NotificationType::Warning);
        assert_eq!(c.data, Some(json!({"n": 1})));
        assert_eq!(
            Content::parse("info", "t", "m", Some(json!(null)))
                .unwrap()
                .data,
            None
        );
    }

    #[test]
    fn each_content_problem_names_its_field() {
        let cases = [
            (Content::parse("urgent", "t", "m", None), "type"),
            (Content::parse("info", " ", "m", None), "title"),
            (Content::parse("info", &"x".repeat(201), "m", None), "title"),
            (Content::parse("info", "t", "", None), "message"),
            (
                Content::parse("info", "t", &"x".repeat(4001), None),
                "message",
            ),
            (Content::parse("info", "t\u{0}", "m", None), "title"),
            (Content::parse("info", "t", "m", Some(json!([1]))), "data"),
            (Content::parse("info", "t", "m", Some(json!("s"))), "data"),
            (
                Content::parse("info", "t", "m", Some(json!({"k": "x".repeat(17_000)}))),
                "data",
            ),
        ];
        for (result, field) in cases {
            assert_eq!(result.unwrap_err().field, field);
        }
    }

    #[test]
    fn the_view_has_the_seed_shape() {
        let n = Notification::new(
            UserId::parse("user123").unwrap(),
            NotificationType::Info,
            "System Maintenance",
            "Scheduled",
            None,
        );
        let v = serde_json::to_value(n.view()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "id",
            "user_id",
            "type",
            "title",
            "message",
            "data",
            "is_read",
            "read_at",
            "created_at",
        ];
        expected.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, expected);
        assert_eq!(v["data"], json!(null));
        assert_eq!(v["read_at"], json!(null));
        assert_eq!(v["type"], "info");
    }
}
