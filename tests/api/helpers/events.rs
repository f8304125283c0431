//! Usage events as the upstream service reports them, built field by field:
//! `UsageEventBuilder::request().id("e1").user("u1").model("gpt-4o").cost("0.0150").at(ts).build()`.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{json, Value};

/// A usage event (`kind` request or payment) as JSON. Unset fields keep the defaults of
/// [`UsageEventBuilder::request`] / [`UsageEventBuilder::payment`].
pub struct UsageEventBuilder {
    event: Value,
}

impl UsageEventBuilder {
    /// A successful request: openai/gpt-4o on /v1/chat/completions, 200, 100 ms, 10 + 5 tokens,
    /// 7 credits, $0, at the start of the current minute.
    pub fn request() -> Self {
        UsageEventBuilder {
            event: json!({"event_id": uuid::Uuid::new_v4().to_string(), "user_id": "u",
                "timestamp": minutes_ago(0).to_rfc3339(), "kind": "request",
                "provider": "openai", "model": "gpt-4o", "endpoint": "/v1/chat/completions",
                "status_code": 200, "latency_ms": 100, "input_tokens": 10, "output_tokens": 5,
                "credits": 7, "cost_usd": 0}),
        }
    }

    /// A payment that succeeded: $0 for 0 credits, at the start of the current minute.
    pub fn payment() -> Self {
        UsageEventBuilder {
            event: json!({"event_id": uuid::Uuid::new_v4().to_string(), "user_id": "u",
                "timestamp": minutes_ago(0).to_rfc3339(), "kind": "payment",
                "status": "succeeded", "credits": 0, "amount_usd": 0}),
        }
    }

    pub fn id(self, id: &str) -> Self {
        self.set("event_id", json!(id))
    }

    pub fn user(self, user: &str) -> Self {
        self.set("user_id", json!(user))
    }

    pub fn at(self, at: DateTime<Utc>) -> Self {
        self.set("timestamp", json!(at.to_rfc3339()))
    }

    pub fn provider(self, provider: &str) -> Self {
        self.set("provider", json!(provider))
    }

    pub fn model(self, model: &str) -> Self {
        self.set("model", json!(model))
    }

    pub fn endpoint(self, endpoint: &str) -> Self {
        self.set("endpoint", json!(endpoint))
    }

    pub fn status_code(self, status: u16) -> Self {
        self.set("status_code", json!(status))
    }

    pub fn latency_ms(self, latency: u32) -> Self {
        self.set("latency_ms", json!(latency))
    }

    pub fn credits(self, credits: i64) -> Self {
        self.set("credits", json!(credits))
    }

    /// The cost as written in the JSON, e.g. `"0.0150"`.
    pub fn cost(self, cost: &str) -> Self {
        self.set("cost_usd", serde_json::from_str(cost).unwrap())
    }

    pub fn tokens(self, input: i64, output: i64) -> Self {
        self.set("input_tokens", json!(input))
            .set("output_tokens", json!(output))
    }

    pub fn description(self, description: &str) -> Self {
        self.set("description", json!(description))
    }

    /// A payment's status: succeeded, failed or refunded.
    pub fn status(self, status: &str) -> Self {
        self.set("status", json!(status))
    }

    /// A payment's amount as written in the JSON, e.g. `"20"`.
    pub fn amount(self, amount: &str) -> Self {
        self.set("amount_usd", serde_json::from_str(amount).unwrap())
    }

    /// Any field, to any JSON value (also wrong ones).
    pub fn set(mut self, field: &str, value: Value) -> Self {
        self.event[field] = value;
        self
    }

    /// Leaves an optional field out.
    pub fn without(mut self, field: &str) -> Self {
        self.event.as_object_mut().unwrap().remove(field);
        self
    }

    pub fn build(self) -> Value {
        self.event
    }
}

/// The start of the minute `n` minutes ago (UTC).
pub fn minutes_ago(n: i64) -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::minutes(1)).unwrap() - Duration::minutes(n)
}

/// Midnight (UTC) `n` days ago.
pub fn midnight_days_ago(n: i64) -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(n)
}
