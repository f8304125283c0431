//! Attribution by tag: the deployment declares a few tag keys (template parameter
//! `AttributedTagKeys`, e.g. `project,team,feature`) and ingestion rolls usage up per value of
//! each, as it does per model. Other tags are kept on the raw event only.
//!
//! The declared set is small and fixed per deployment because every declared key adds counters
//! to the rollup items an event rewrites; an open set would let one client's tags inflate every
//! write.

use super::event::{Detail, UsageEvent};
use crate::platform::config::ConfigError;

/// At most this many keys: each one adds counters to every model item an event touches.
pub const MAX_KEYS: usize = 5;
/// A value that is rolled up is a dimension like a model name: bounded, printable, no `|`.
const MAX_VALUE_CHARS: usize = 128;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TagKeys(Vec<String>);

impl TagKeys {
    /// From the comma-separated list (`project,team`); empty means no attribution.
    pub fn parse(raw: Option<&str>) -> Result<Self, ConfigError> {
        let mut keys: Vec<String> = vec![];
        for key in raw.unwrap_or("").split(',').map(str::trim) {
            if key.is_empty() {
                continue;
            }
            if key.len() > 32
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(ConfigError(format!(
                    "ATTRIBUTED_TAG_KEYS: {key:?} must be 1 to 32 letters, digits, _ - or ."
                )));
            }
            if !keys.iter().any(|k| k == key) {
                keys.push(key.to_owned());
            }
        }
        if keys.len() > MAX_KEYS {
            return Err(ConfigError(format!(
                "ATTRIBUTED_TAG_KEYS names {} keys; at most {MAX_KEYS} may be attributed",
                keys.len()
            )));
        }
        Ok(TagKeys(keys))
    }

    pub fn declared(&self, key: &str) -> bool {
        self.0.iter().any(|k| k == key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The (key, value) pairs of `event` that are rolled up: requests only (a payment belongs
    /// to the account, not to a project).
    pub fn of<'e>(&self, event: &'e UsageEvent) -> Vec<(&'e str, &'e str)> {
        if !matches!(event.detail, Detail::Request(_)) {
            return vec![];
        }
        event
            .tags
            .iter()
            .filter(|(k, v)| self.declared(k) && valid_value(v))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Why `event` cannot be attributed, naming the field (`tags.project`): a declared key's
    /// value must be a usable dimension, or the rollups would store something no filter can
    /// name.
    pub fn check(&self, event: &UsageEvent) -> Result<(), (String, String)> {
        for (k, v) in &event.tags {
            if self.declared(k) && !valid_value(v) {
                return Err((
                    format!("tags.{k}"),
                    format!(
                        "tag {k} is attributed, so its value must be 1 to {MAX_VALUE_CHARS} characters without control characters or |"
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn valid_value(v: &str) -> bool {
    !v.is_empty()
        && v.chars().count() <= MAX_VALUE_CHARS
        && !v.chars().any(|c| c.is_control() || c == '|')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(tags: serde_json::Value) -> UsageEvent {
        let raw = json!({"event_id": "e", "user_id": "u", "timestamp": "2026-11-22T10:04:05Z",
            "kind": "request", "provider": "openai", "model": "gpt-4o", "status_code": 200,
            "latency_ms": 10, "tags": tags});
        crate::analytics::event::fixture(&raw)
    }

    #[test]
    fn keys_are_a_short_clean_list() {
        let keys = TagKeys::parse(Some(" project, team ,,project")).unwrap();
        assert_eq!(keys.iter().collect::<Vec<_>>(), ["project", "team"]);
        assert!(TagKeys::parse(None).unwrap().is_empty());
        assert!(TagKeys::parse(Some("a|b")).is_err());
        assert!(TagKeys::parse(Some("a,b,c,d,e,f")).is_err());
    }

    #[test]
    fn only_declared_keys_of_requests_are_rolled_up() {
        let keys = TagKeys::parse(Some("project,team")).unwrap();
        let e = event(json!({"project": "search", "region": "eu"}));
        assert_eq!(keys.of(&e), [("project", "search")]);
    }

    #[test]
    fn a_declared_key_with_an_unusable_value_names_the_tag() {
        let keys = TagKeys::parse(Some("project")).unwrap();
        let (field, _) = keys.check(&event(json!({"project": "a|b"}))).unwrap_err();
        assert_eq!(field, "tags.project");
        assert!(keys.check(&event(json!({"other": "a|b"}))).is_ok());
    }
}
