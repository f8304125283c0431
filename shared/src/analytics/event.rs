//! Usage events (README, "Message contracts"), parsed one by one so a bad event is rejected with its reason
//! without rejecting its neighbours. Unknown fields are ignored.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::money::parse_usd;
use crate::platform::domain::UserId;

/// Largest cost or payment one event may carry, in USD.
pub const MAX_USD_PER_EVENT: i64 = 1_000_000;
/// How far in the future a timestamp may be (clock skew of upstream systems).
pub const MAX_FUTURE: Duration = Duration::minutes(5);
const MAX_TEXT: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub field: String,
    pub reason: String,
}

fn reject(field: &str, reason: impl Into<String>) -> Rejection {
    Rejection {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UsageEvent {
    pub event_id: String,
    pub user_id: UserId,
    pub timestamp: DateTime<Utc>,
    pub detail: Detail,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    Request(RequestUsage),
    Payment(PaymentUsage),
}

#[derive(Clone, Debug, PartialEq)]
pub struct RequestUsage {
    pub provider: String,
    pub model: String,
    pub endpoint: String,
    pub status_code: u16,
    pub latency_ms: u32,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub credits: i64,
    pub cost_micros: i64,
}

impl RequestUsage {
    /// 4xx and 5xx answers count as errors.
    pub fn is_error(&self) -> bool {
        self.status_code >= 400
    }
}

/// Outcome of a payment usage event, as the ingestion saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Succeeded,
    Failed,
    Refunded,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PaymentUsage {
    pub status: PaymentStatus,
    pub amount_micros: i64,
    pub credits: i64,
}

/// What bounds a timestamp: now and the retention window.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub now: DateTime<Utc>,
    pub retention_days: u32,
}

impl UsageEvent {
    /// The `event_id` of a raw item, for reporting, if it has one.
    pub fn id_of(raw: &Value) -> Option<String> {
        raw.get("event_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// [`Self::parse`], and the values of the deployment's attributed tag keys must be usable
    /// as rollup dimensions.
    pub fn parse_attributed(
        raw: &Value,
        window: Window,
        keys: &crate::analytics::attribution::TagKeys,
    ) -> Result<Self, Rejection> {
        let event = Self::parse(raw, window)?;
        keys.check(&event)
            .map_err(|(field, reason)| Rejection { field, reason })?;
        Ok(event)
    }

    pub fn parse(raw: &Value, window: Window) -> Result<Self, Rejection> {
        let obj = raw
            .as_object()
            .ok_or_else(|| reject("event", "each event must be a JSON object"))?;
        let event_id = event_id(obj)?;
        let user_raw = required_str(obj, "user_id")?;
        let user_id =
            UserId::parse(user_raw).map_err(|why| reject("user_id", format!("user_id {why}")))?;
        let ts_raw = required_str(obj, "timestamp")?;
        let timestamp = DateTime::parse_from_rfc3339(ts_raw)
            .map_err(|_| {
                reject(
                    "timestamp",
                    "timestamp must be RFC 3339, e.g. 2026-11-22T10:04:05Z",
                )
            })?
            .with_timezone(&Utc);
        if timestamp > window.now + MAX_FUTURE {
            return Err(reject(
                "timestamp",
                "timestamp is more than 5 minutes in the future",
            ));
        }
        if timestamp < window.now - Duration::days(i64::from(window.retention_days)) {
            return Err(reject(
                "timestamp",
                format!(
                    "timestamp is older than the {}-day retention",
                    window.retention_days
                ),
            ));
        }
        let detail = match required_str(obj, "kind")? {
            "request" => Detail::Request(request(obj)?),
            "payment" => Detail::Payment(payment(obj)?),
            other => {
                return Err(reject(
                    "kind",
                    format!("kind must be request or payment, not {other:?}"),
                ))
            }
        };
        let description = match obj.get("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() <= 500 => Some(s.clone()),
            Some(Value::String(_)) => {
                return Err(reject(
                    "description",
                    "description must be at most 500 characters",
                ))
            }
            Some(_) => return Err(reject("description", "description must be a string")),
        };
        let tags = tags(obj)?;
        Ok(UsageEvent {
            event_id,
            user_id,
            timestamp,
            detail,
            description,
            tags,
        })
    }
}

fn event_id(obj: &Map<String, Value>) -> Result<String, Rejection> {
    let id = required_str(obj, "event_id")?;
    if id.is_empty() || id.len() > MAX_TEXT {
        return Err(reject("event_id", "event_id must be 1 to 128 characters"));
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
    {
        return Err(reject(
            "event_id",
            "event_id may hold only letters, digits and - _ . :",
        ));
    }
    Ok(id.to_owned())
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(reject(field, format!("{field} is required"))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(reject(field, format!("{field} must be a string"))),
    }
}

/// A name used as a breakdown key: non-empty, printable, no `|` (the rollup separator).
fn dimension(obj: &Map<String, Value>, field: &str) -> Result<String, Rejection> {
    let s = required_str(obj, field)?;
    if s.is_empty() || s.chars().count() > MAX_TEXT {
        return Err(reject(
            field,
            format!("{field} must be 1 to 128 characters"),
        ));
    }
    if s.chars().any(|c| c.is_control() || c == '|') {
        return Err(reject(
            field,
            format!("{field} must not contain control characters or |"),
        ));
    }
    Ok(s.to_owned())
}

fn integer(
    obj: &Map<String, Value>,
    field: &str,
    max: i64,
    default: Option<i64>,
) -> Result<i64, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => {
            default.ok_or_else(|| reject(field, format!("{field} is required")))
        }
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if (0..=max).contains(&v) => Ok(v),
            _ => Err(reject(
                field,
                format!("{field} must be a whole number between 0 and {max}"),
            )),
        },
        Some(_) => Err(reject(field, format!("{field} must be a number"))),
    }
}

fn usd(obj: &Map<String, Value>, field: &str, required: bool) -> Result<i64, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) if required => Err(reject(field, format!("{field} is required"))),
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => {
            parse_usd(n, MAX_USD_PER_EVENT).map_err(|why| reject(field, format!("{field} {why}")))
        }
        Some(_) => Err(reject(field, format!("{field} must be a number of USD"))),
    }
}

fn request(obj: &Map<String, Value>) -> Result<RequestUsage, Rejection> {
    let endpoint = match obj.get("endpoint") {
        None | Some(Value::Null) => "(none)".to_owned(),
        Some(_) => dimension(obj, "endpoint")?,
    };
    let status_code = integer(obj, "status_code", 599, None)?;
    if status_code < 100 {
        return Err(reject(
            "status_code",
            "status_code must be between 100 and 599",
        ));
    }
    Ok(RequestUsage {
        provider: dimension(obj, "provider")?,
        model: dimension(obj, "model")?,
        endpoint,
        status_code: status_code as u16,
        latency_ms: integer(obj, "latency_ms", 3_600_000, None)? as u32,
        input_tokens: integer(obj, "input_tokens", 1_000_000_000, Some(0))?,
        output_tokens: integer(obj, "output_tokens", 1_000_000_000, Some(0))?,
        credits: integer(obj, "credits", 1_000_000_000_000, Some(0))?,
        cost_micros: usd(obj, "cost_usd", false)?,
    })
}

fn payment(obj: &Map<String, Value>) -> Result<PaymentUsage, Rejection> {
    let status = match required_str(obj, "status")? {
        "succeeded" => PaymentStatus::Succeeded,
        "failed" => PaymentStatus::Failed,
        "refunded" => PaymentStatus::Refunded,
        other => {
            return Err(reject(
                "status",
                format!("status must be succeeded, failed or refunded, not {other:?}"),
            ))
        }
    };
    Ok(PaymentUsage {
        status,
        amount_micros: usd(obj, "amount_usd", true)?,
        credits: integer(obj, "credits", 1_000_000_000_000, Some(0))?,
    })
}

fn tags(obj: &Map<String, Value>) -> Result<BTreeMap<String, String>, Rejection> {
    match obj.get("tags") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => {
            if map.len() > 20 {
                return Err(reject("tags", "at most 20 tags"));
            }
            map.iter()
                .map(|(k, v)| match v {
                    Value::String(s) if k.len() <= MAX_TEXT && s.len() <= 256 => {
                        Ok((k.clone(), s.clone()))
                    }
                    _ => Err(reject(
                        "tags",
                        "tags must map names (≤128 chars) to strings (≤256 chars)",
                    )),
                })
                .collect()
        }
        Some(_) => Err(reject("tags", "tags must be an object of strings")),
    }
}

/// Unit tests of the domain build their events from JSON, parsed as ingestion would on
/// 2026-11-22 at noon UTC.
#[cfg(test)]
pub(crate) fn fixture(raw: &Value) -> UsageEvent {
    UsageEvent::parse(
        raw,
        Window {
            now: "2026-11-22T12:00:00Z".parse().unwrap(),
            retention_days: 30,
        },
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn window() -> Window {
        Window {
            now: "2026-11-22T12:00:00Z".parse().unwrap(),
            retention_days: 30,
        }
    }

    fn good() -> Value {
        json!({"event_id": "evt_1", "user_id": "user123", "timestamp": "2026-11-22T10:04:05Z",
               "kind": "request", "provider": "openai", "model": "gpt-4o", "endpoint": "/v1/chat/completions",
               "status_code": 200, "latency_ms": 850, "input_tokens": 1200, "output_tokens": 300,
               "credits": 150, "cost_usd": 0.0150, "tags": {"project": "search"}, "description": "LLM completion",
               "unknown_field": true})
    }

    fn rejected_field(mut raw: Value, field: &str, value: Value) -> String {
        raw[field] = value;
        UsageEvent::parse(&raw, window()).unwrap_err().field
    }

    #[test]
    fn the_design_example_parses_with_exact_money() {
        let e = UsageEvent::parse(&good(), window()).unwrap();
        match e.detail {
            Detail::Request(r) => {
                assert_eq!(r.cost_micros, 15_000);
                assert_eq!(r.credits, 150);
                assert!(!r.is_error());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            rejected_field(good(), "event_id", json!("has space")),
            "event_id"
        );
        assert_eq!(rejected_field(good(), "user_id", json!("a#b")), "user_id");
        assert_eq!(
            rejected_field(good(), "timestamp", json!("yesterday")),
            "timestamp"
        );
        assert_eq!(
            rejected_field(good(), "timestamp", json!("2026-11-22T12:06:00Z")),
            "timestamp"
        );
        assert_eq!(
            rejected_field(good(), "timestamp", json!("2026-10-01T00:00:00Z")),
            "timestamp"
        );
        assert_eq!(rejected_field(good(), "kind", json!("refund")), "kind");
        assert_eq!(rejected_field(good(), "provider", json!("a|b")), "provider");
        assert_eq!(
            rejected_field(good(), "status_code", json!(99)),
            "status_code"
        );
        assert_eq!(
            rejected_field(good(), "latency_ms", json!(-1)),
            "latency_ms"
        );
        assert_eq!(rejected_field(good(), "cost_usd", json!("0.1")), "cost_usd");
        assert_eq!(
            rejected_field(good(), "cost_usd", json!(0.0000001)),
            "cost_usd"
        );
        assert_eq!(rejected_field(good(), "credits", json!(1.5)), "credits");
        assert_eq!(rejected_field(good(), "tags", json!({"a": 1})), "tags");
    }

    #[test]
    fn a_payment_needs_a_status_and_an_amount() {
        let p = json!({"event_id": "pay_1", "user_id": "u", "timestamp": "2026-11-22T10:00:00Z",
                       "kind": "payment", "status": "succeeded", "amount_usd": 50, "credits": 43478});
        let e = UsageEvent::parse(&p, window()).unwrap();
        assert_eq!(
            e.detail,
            Detail::Payment(PaymentUsage {
                status: PaymentStatus::Succeeded,
                amount_micros: 50_000_000,
                credits: 43478
            })
        );
        assert_eq!(
            rejected_field(p.clone(), "status", json!("pending")),
            "status"
        );
        let mut no_amount = p;
        no_amount.as_object_mut().unwrap().remove("amount_usd");
        assert_eq!(
            UsageEvent::parse(&no_amount, window()).unwrap_err().field,
            "amount_usd"
        );
    }
}
