//! Notification jobs (DESIGN §3): what upstream systems and Meterbell itself put on
//! `NotificationJobsQueue` for the dispatcher.

use serde::{Deserialize, Serialize};

use crate::domain::UserId;

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

/// Outcome of a payment usage event, as the ingestion saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Succeeded,
    Failed,
    Refunded,
}

/// The built-in notification for one payment event. Its `job_id` derives from the event id, so
/// however often the event is delivered, the dispatcher notifies once.
pub fn payment_job(
    user: &UserId,
    event_id: &str,
    status: PaymentStatus,
    amount_micros: i64,
    credits: i64,
) -> NotificationJob {
    let amount = format!(
        "${}.{:02}",
        amount_micros / 1_000_000,
        (amount_micros % 1_000_000).abs() / 10_000
    );
    let (kind, title, message) = match status {
        PaymentStatus::Succeeded => (
            "success",
            "Payment successful",
            format!("We received your payment of {amount}; {credits} credits were added."),
        ),
        PaymentStatus::Failed => (
            "error",
            "Payment failed",
            format!("Your payment of {amount} failed. Please check your payment method."),
        ),
        PaymentStatus::Refunded => (
            "info",
            "Refund processed",
            format!("A refund of {amount} has been processed."),
        ),
    };
    NotificationJob {
        job_id: format!("payment:{event_id}"),
        user_id: Some(user.to_string()),
        user_ids: None,
        kind: kind.to_owned(),
        title: title.to_owned(),
        message,
        data: Some(serde_json::json!({
            "event_id": event_id,
            "status": status,
            "amount_usd": amount_micros as f64 / 1_000_000.0,
            "credits": credits,
        })),
        channels: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_job_is_keyed_by_its_event_and_renders_the_amount() {
        let job = payment_job(
            &UserId::parse("u1").unwrap(),
            "evt_9",
            PaymentStatus::Succeeded,
            50_000_000,
            43_478,
        );
        assert_eq!(job.job_id, "payment:evt_9");
        assert_eq!(job.kind, "success");
        assert!(job.message.contains("$50.00"), "{}", job.message);
        let wire = serde_json::to_value(&job).unwrap();
        assert_eq!(wire["type"], "success");
        assert!(wire.get("channels").is_none());
    }
}
