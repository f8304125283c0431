//! Reading and writing item attributes. A stored item is ours, so an attribute that is missing
//! or of the wrong shape means corruption: every reader here says so with a
//! [`StoreError::Corrupt`] naming the attribute, never a silent 0 or "". The one exception is
//! named as such: [`Attrs::counter`], for counters that `ADD` creates on first use.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use super::StoreError;

pub type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub fn num(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A boolean attribute.
pub fn flag(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

/// A timestamp attribute: RFC 3339 in UTC with microseconds, so text order is time order.
pub fn time(at: DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// Typed reads of one item's attributes.
pub trait Attrs {
    fn opt_string(&self, name: &str) -> Result<Option<&str>, StoreError>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError>;
    fn opt_flag(&self, name: &str) -> Result<Option<bool>, StoreError>;

    fn string(&self, name: &str) -> Result<&str, StoreError> {
        self.opt_string(name)?.ok_or_else(|| missing(name))
    }

    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.opt_int(name)?.ok_or_else(|| missing(name))
    }

    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        self.opt_flag(name)?.ok_or_else(|| missing(name))
    }

    fn opt_time(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.opt_string(name)?
            .map(|raw| parse_time(name, raw))
            .transpose()
    }

    fn time(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        self.opt_time(name)?.ok_or_else(|| missing(name))
    }

    /// A counter kept with `ADD`: absent until its first change, so absent is 0.
    fn counter(&self, name: &str) -> Result<u64, StoreError> {
        match self.opt_int(name)? {
            None => Ok(0),
            Some(v) if v < 0 => {
                // A negative counter is a bug elsewhere: clamp for the reader, tell us.
                tracing::error!(counter = name, value = v, "negative counter");
                Ok(0)
            }
            Some(v) => Ok(v as u64),
        }
    }
}

impl Attrs for Item {
    fn opt_string(&self, name: &str) -> Result<Option<&str>, StoreError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v)),
            Some(other) => Err(wrong(name, "a string", other)),
        }
    }

    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(raw)) => raw
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Corrupt(format!("{name} is not a whole number: {raw}"))),
            Some(other) => Err(wrong(name, "a number", other)),
        }
    }

    fn opt_flag(&self, name: &str) -> Result<Option<bool>, StoreError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::Bool(v)) => Ok(Some(*v)),
            Some(other) => Err(wrong(name, "a boolean", other)),
        }
    }
}

fn missing(name: &str) -> StoreError {
    StoreError::Corrupt(format!("the item lacks {name}"))
}

fn wrong(name: &str, expected: &str, got: &AttributeValue) -> StoreError {
    StoreError::Corrupt(format!("{name} is not {expected}: {got:?}"))
}

fn parse_time(name: &str, raw: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("{name} is not a timestamp: {raw:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_counter_that_is_not_a_number_is_reported_as_corrupt() {
        let bad = item(&[("c", s("x")), ("d", AttributeValue::N("1.5".into()))]);

        assert!(matches!(bad.counter("c"), Err(StoreError::Corrupt(_))));
        assert!(matches!(bad.counter("d"), Err(StoreError::Corrupt(_))));
        assert_eq!(item(&[("c", num(7))]).counter("c").unwrap(), 7);
    }

    #[test]
    fn an_absent_counter_is_zero_but_an_absent_attribute_is_corrupt() {
        let empty = Item::new();

        assert_eq!(empty.counter("unread").unwrap(), 0);
        assert!(matches!(empty.string("title"), Err(StoreError::Corrupt(_))));
        assert!(matches!(empty.int("count"), Err(StoreError::Corrupt(_))));
        assert!(matches!(empty.flag("is_read"), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            empty.time("created_at"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_timestamp_round_trips_and_a_bad_one_is_corrupt() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T10:04:05.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let good = item(&[("at", time(at)), ("bad", s("yesterday"))]);

        assert_eq!(good.time("at").unwrap(), at);
        assert!(matches!(good.time("bad"), Err(StoreError::Corrupt(_))));
    }
}
