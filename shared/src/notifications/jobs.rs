//! Notification jobs (README, "Message contracts"): what upstream systems and Meterbell itself put on
//! `NotificationJobsQueue` for the dispatcher.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::notifications::channels::{Channel, IN_APP};
use crate::notifications::notification::Content;
use crate::platform::domain::UserId;

/// The wire shape of a job. `user_ids` may replace `user_id`; `channels` absent means "as the
/// user's preferences say"; `job_id` makes the job idempotent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationJob {
    pub job_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ids: Option<Vec<String>>,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
}

/// A job's idempotency key: 1 to 200 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobId(String);

impl JobId {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("job_id must not be empty".into());
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(format!(
                "job_id must be at most {} characters",
                Self::MAX_CHARS
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err("job_id must not contain control characters".into());
        }
        Ok(JobId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The channels a job asks for besides the in-app inbox, which every notification gets (it is
/// the record deliveries hang off). `None` on a [`Job`] means "as each user's preferences say".
/// The channels a job asks for besides the inbox, which every notification reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Channels([bool; Channel::ALL.len()]);

impl Channels {
    /// Only the channels whose flag is set.
    pub fn of(flags: &[(Channel, bool)]) -> Self {
        let mut channels = Channels::default();
        for &(channel, on) in flags {
            channels.0[channel.index()] = on;
        }
        channels
    }

    pub fn parse(names: &[String]) -> Result<Self, String> {
        let mut channels = Channels::default();
        for name in names {
            if name == IN_APP {
                continue;
            }
            let channel = Channel::parse(name).ok_or_else(|| {
                format!(
                    "unknown channel {name:?}; channels are {IN_APP}, {}",
                    Channel::names("and")
                )
            })?;
            channels.0[channel.index()] = true;
        }
        Ok(channels)
    }

    pub fn contains(&self, channel: Channel) -> bool {
        self.0[channel.index()]
    }

    pub fn names(&self) -> Vec<String> {
        let mut out = vec![IN_APP.to_owned()];
        out.extend(
            Channel::ALL
                .iter()
                .filter(|c| self.contains(**c))
                .map(|c| c.as_str().to_owned()),
        );
        out
    }
}

/// A job that passed every check: whom, what, and through which channels.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub job_id: JobId,
    /// Distinct, in the order given.
    pub users: Vec<UserId>,
    pub content: Content,
    pub channels: Option<Channels>,
}

/// Why a job is malformed; it goes to the dead-letter queue with this reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct JobError {
    pub field: String,
    pub message: String,
}

fn job_error(field: &str, message: impl Into<String>) -> JobError {
    JobError {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl Job {
    /// Most users one job may address; larger audiences are several jobs.
    pub const MAX_USERS: usize = 10_000;
    /// Users the dispatcher notifies within one message; larger jobs are split into messages of
    /// this many users (same `job_id`, so a split delivered twice still notifies once).
    pub const USERS_PER_MESSAGE: usize = 100;

    /// Parses a queue message body.
    pub fn parse(body: &str) -> Result<Self, JobError> {
        if !body.trim_start().starts_with('{') {
            return Err(job_error(".", "a job is one JSON object"));
        }
        let mut de = serde_json::Deserializer::from_str(body);
        let wire: NotificationJob = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            job_error(&path, e.into_inner().to_string())
        })?;
        de.end()
            .map_err(|e| job_error(".", format!("trailing data after the job: {e}")))?;
        Self::validate(wire)
    }

    pub fn validate(wire: NotificationJob) -> Result<Self, JobError> {
        let job_id = JobId::parse(&wire.job_id).map_err(|m| job_error("job_id", m))?;
        let raw_users = match (wire.user_id, wire.user_ids) {
            (Some(one), None) => vec![one],
            (None, Some(many)) => many,
            (Some(_), Some(_)) => {
                return Err(job_error("user_ids", "give user_id or user_ids, not both"))
            }
            (None, None) => return Err(job_error("user_id", "user_id or user_ids is required")),
        };
        if raw_users.is_empty() {
            return Err(job_error("user_ids", "user_ids must not be empty"));
        }
        if raw_users.len() > Self::MAX_USERS {
            return Err(job_error(
                "user_ids",
                format!("at most {} users per job", Self::MAX_USERS),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut users = Vec::with_capacity(raw_users.len());
        for raw in &raw_users {
            let user = UserId::parse(raw)
                .map_err(|why| job_error("user_id", format!("user id {raw:?} {why}")))?;
            if seen.insert(user.clone()) {
                users.push(user);
            }
        }
        let content = Content::parse(&wire.kind, &wire.title, &wire.message, wire.data)
            .map_err(|e| job_error(e.field, e.message))?;
        let channels = wire
            .channels
            .map(|names| Channels::parse(&names))
            .transpose()
            .map_err(|m| job_error("channels", m))?;
        Ok(Job {
            job_id,
            users,
            content,
            channels,
        })
    }

    /// The wire form of this job for `users`.
    pub fn to_wire(&self, users: &[UserId]) -> NotificationJob {
        let (user_id, user_ids) = match users {
            [one] => (Some(one.to_string()), None),
            many => (None, Some(many.iter().map(UserId::to_string).collect())),
        };
        NotificationJob {
            job_id: self.job_id.as_str().to_owned(),
            user_id,
            user_ids,
            kind: self.content.kind.as_str().to_owned(),
            title: self.content.title.clone(),
            message: self.content.message.clone(),
            data: self.content.data.clone(),
            channels: self.channels.map(|c| c.names()),
        }
    }

    /// This job as messages of at most [`Job::USERS_PER_MESSAGE`] users each.
    pub fn split(&self) -> Vec<NotificationJob> {
        self.users
            .chunks(Self::USERS_PER_MESSAGE)
            .map(|chunk| self.to_wire(chunk))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Job, JobError> {
        Job::parse(&v.to_string())
    }

    #[test]
    fn the_design_example_job_is_valid() {
        let job = parse(json!({"job_id": "job_123", "user_id": "user123", "type": "warning",
            "title": "Low Credits", "message": "Your credit balance is low (500 credits remaining).",
            "data": {"credits_remaining": 500}, "channels": ["in_app", "email", "webhook"]}))
        .unwrap();
        assert_eq!(job.users, vec![UserId::parse("user123").unwrap()]);
        assert_eq!(
            job.channels,
            Some(Channels::of(&[
                (Channel::Email, true),
                (Channel::Webhook, true)
            ]))
        );
    }

    #[test]
    fn a_job_without_channels_leaves_them_to_preferences_and_duplicates_count_once() {
        let job = parse(
            json!({"job_id": "j", "user_ids": ["a", "b", "a"], "type": "info",
            "title": "t", "message": "m"}),
        )
        .unwrap();
        assert_eq!(job.channels, None);
        assert_eq!(job.users.len(), 2);
    }

    #[test]
    fn each_malformed_job_names_its_problem() {
        let base =
            json!({"job_id": "j", "user_id": "u", "type": "info", "title": "t", "message": "m"});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        let without = |k: &str| {
            let mut b = base.clone();
            b.as_object_mut().unwrap().remove(k);
            b
        };
        let cases = [
            (without("job_id"), "."),
            (with("job_id", json!("")), "job_id"),
            (with("job_id", json!(7)), "job_id"),
            (without("user_id"), "user_id"),
            (with("user_ids", json!(["v"])), "user_ids"),
            (with("user_id", json!("a#b")), "user_id"),
            (with("type", json!("urgent")), "type"),
            (with("title", json!("")), "title"),
            (with("data", json!([1])), "data"),
            (with("channels", json!(["sms"])), "channels"),
            (with("channels", json!("email")), "channels"),
        ];
        for (body, field) in cases {
            let err = parse(body.clone()).unwrap_err();
            assert_eq!(err.field, field, "{body}: {err}");
        }
        assert!(Job::parse("not json").is_err());
        assert!(Job::parse(r#"["j", "u", null, "info", "t", "m"]"#).is_err());
        assert!(Job::parse("{} {}").is_err());
    }

    #[test]
    fn a_large_job_splits_into_messages_that_keep_its_id() {
        let users: Vec<String> = (0..250).map(|i| format!("u{i}")).collect();
        let job = parse(json!({"job_id": "big", "user_ids": users, "type": "info",
            "title": "t", "message": "m", "channels": ["email"]}))
        .unwrap();
        let parts = job.split();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.job_id == "big"));
        let back: usize = parts
            .iter()
            .map(|p| Job::validate(p.clone()).unwrap().users.len())
            .sum();
        assert_eq!(back, 250);
        assert_eq!(
            parts[0].channels,
            Some(vec!["in_app".into(), "email".into()])
        );
    }
}
