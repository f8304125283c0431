//! Where the two halves meet. The analytics half records what happened and knows nothing of
//! notifications; what in its data needs a person's attention becomes a notification job here,
//! and only here. Today: payment events (each one the built-in payment notification) and
//! low balances (`low_credits`: one warning or error per crossing, evaluated after each ingest).

pub mod low_credits;

use crate::analytics::event::{Detail, PaymentStatus, UsageEvent};
use crate::notifications::jobs::NotificationJob;
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::error::ApiError;
use crate::platform::sqs;

/// Queues the built-in payment notification of each payment event *before* the event is
/// recorded: if recording then fails, the retry queues it again, and the dispatcher's `job_id`
/// idempotency (`payment:<event_id>`) makes it one notification however often it is queued.
pub async fn announce_payments(app: &App, events: &[UsageEvent]) -> Result<(), ApiError> {
    let jobs: Vec<NotificationJob> = events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Payment(p) => Some(payment_job(
                &e.user_id,
                &e.event_id,
                p.status,
                p.amount_micros,
                p.credits,
            )),
            Detail::Request(_) => None,
        })
        .collect();
    if jobs.is_empty() {
        return Ok(());
    }
    let queue = require(
        &app.config().resources.notification_jobs_queue_url,
        "NOTIFICATION_JOBS_QUEUE_URL",
    )?;
    sqs::send_json(app.sqs().await, queue, &jobs).await?;
    Ok(())
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
    use crate::notifications::jobs::Job;

    #[test]
    fn a_payment_job_passes_the_dispatchers_checks() {
        let job = payment_job(
            &UserId::parse("u1").unwrap(),
            "evt_1",
            PaymentStatus::Failed,
            1_500_000,
            0,
        );
        let valid = Job::validate(job).unwrap();
        assert_eq!(valid.job_id.as_str(), "payment:evt_1");
        assert_eq!(valid.content.kind.as_str(), "error");
    }

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
