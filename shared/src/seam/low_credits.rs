//! Low-credit alerts: the pure decision (which notification, if any, a balance calls for given
//! the alert state stored beside the user's credit totals) and the notification job it becomes.
//!
//! The state is a level (`armed`, `low`, `exhausted`) and an `epoch`. A level worse than the
//! stored one notifies once; the job id names the epoch and the level, so however many writers
//! see the same crossing, the dispatcher's `job_id` idempotency makes it one notification. The
//! state re-arms (and the epoch moves on, giving the next crossing a new job id) only when the
//! balance is back at or above the threshold plus [`rearm_margin`], so a balance hovering at the
//! line does not notify again and again.

use serde_json::json;

use crate::notifications::jobs::NotificationJob;
use crate::platform::domain::UserId;

/// The deployment's default threshold when the template parameter is not set (seed 000).
pub const DEFAULT_THRESHOLD: i64 = 1_000;
/// The largest threshold a deployment or a user may set.
pub const MAX_THRESHOLD: i64 = crate::notifications::preferences::MAX_LOW_CREDIT_THRESHOLD;
/// Re-arming needs the balance this fraction of the threshold above it (10%, at least 1 credit).
pub const REARM_MARGIN_DIVISOR: i64 = 10;

/// How low a balance is, in order: each level is worse than the one before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing sent since the balance was last healthy: the next crossing notifies.
    Armed,
    /// Below the threshold: the "Low Credits" warning was sent.
    Low,
    /// At or below 0: the "Credits exhausted" error was sent.
    Exhausted,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Armed => "armed",
            Level::Low => "low",
            Level::Exhausted => "exhausted",
        }
    }

    pub fn parse(raw: &str) -> Option<Level> {
        match raw {
            "armed" => Some(Level::Armed),
            "low" => Some(Level::Low),
            "exhausted" => Some(Level::Exhausted),
            _ => None,
        }
    }

    /// The level a balance is at against `threshold`.
    pub fn of(balance: i64, threshold: i64) -> Level {
        if balance <= 0 {
            Level::Exhausted
        } else if balance < threshold {
            Level::Low
        } else {
            Level::Armed
        }
    }
}

/// The stored alert state; a user never alerted is `armed` at epoch 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub level: Level,
    pub epoch: i64,
}

impl Default for Mark {
    fn default() -> Self {
        Mark {
            level: Level::Armed,
            epoch: 0,
        }
    }
}

/// What to do about one user's balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing crossed.
    Stay,
    /// Queue the notification of this level, then advance the state to it (same epoch).
    Notify(Level),
    /// The balance is healthy again: back to `armed` with the next epoch.
    Rearm,
}

/// Credits above the threshold a balance must reach to re-arm.
pub fn rearm_margin(threshold: i64) -> i64 {
    (threshold / REARM_MARGIN_DIVISOR).max(1)
}

/// The step a `balance` calls for, given the `threshold` and the stored `mark`.
pub fn decide(balance: i64, threshold: i64, mark: Mark) -> Step {
    let now = Level::of(balance, threshold);
    if now > mark.level {
        Step::Notify(now)
    } else if mark.level != Level::Armed && balance >= threshold + rearm_margin(threshold) {
        Step::Rearm
    } else {
        Step::Stay
    }
}

/// The job of a crossing into `level` (`Low` or `Exhausted`) in `epoch`. Deterministic id: every
/// writer that sees the same crossing queues the same job, and the dispatcher notifies once.
pub fn job(
    user: &UserId,
    epoch: i64,
    level: Level,
    balance: i64,
    threshold: i64,
) -> NotificationJob {
    let (kind, title, message) = match level {
        Level::Exhausted => (
            "error",
            "Credits exhausted",
            format!(
                "You have used all your credits ({balance} credits remaining). \
                 Purchase more credits to keep using the service."
            ),
        ),
        Level::Low | Level::Armed => (
            "warning",
            "Low Credits",
            format!("Your credit balance is low ({balance} credits remaining)."),
        ),
    };
    NotificationJob {
        job_id: format!("low-credits:{user}:{epoch}:{}", level.as_str()),
        user_id: Some(user.to_string()),
        user_ids: None,
        kind: kind.to_owned(),
        title: title.to_owned(),
        message,
        data: Some(json!({"credits_remaining": balance, "threshold": threshold})),
        channels: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::jobs::Job;

    const ARMED: Mark = Mark {
        level: Level::Armed,
        epoch: 3,
    };
    const LOW: Mark = Mark {
        level: Level::Low,
        epoch: 3,
    };
    const EXHAUSTED: Mark = Mark {
        level: Level::Exhausted,
        epoch: 3,
    };

    #[test]
    fn each_crossing_notifies_once_and_only_a_margin_above_re_arms() {
        let t = 1_000;
        for (what, balance, mark, step) in [
            ("healthy", 5_000, ARMED, Step::Stay),
            ("at the threshold is not below it", 1_000, ARMED, Step::Stay),
            ("crossing", 900, ARMED, Step::Notify(Level::Low)),
            ("staying low", 400, LOW, Step::Stay),
            ("hovering just above", 1_050, LOW, Step::Stay),
            ("hovering back below", 990, LOW, Step::Stay),
            ("one below the margin", 1_099, LOW, Step::Stay),
            ("a purchase past the margin", 1_100, LOW, Step::Rearm),
            ("low to exhausted", 0, LOW, Step::Notify(Level::Exhausted)),
            (
                "straight to exhausted: one error",
                -20,
                ARMED,
                Step::Notify(Level::Exhausted),
            ),
            ("staying exhausted", -500, EXHAUSTED, Step::Stay),
            ("exhausted, a small purchase", 600, EXHAUSTED, Step::Stay),
            ("exhausted, a large purchase", 2_000, EXHAUSTED, Step::Rearm),
            (
                "a refund below the line",
                300,
                ARMED,
                Step::Notify(Level::Low),
            ),
        ] {
            assert_eq!(decide(balance, t, mark), step, "{what}");
        }
    }

    #[test]
    fn a_zero_threshold_warns_only_when_exhausted() {
        assert_eq!(decide(1, 0, ARMED), Step::Stay);
        assert_eq!(decide(0, 0, ARMED), Step::Notify(Level::Exhausted));
        assert_eq!(decide(1, 0, EXHAUSTED), Step::Rearm);
        assert_eq!(rearm_margin(0), 1);
        assert_eq!(rearm_margin(1_000), 100);
    }

    #[test]
    fn levels_are_stored_by_name() {
        for level in [Level::Armed, Level::Low, Level::Exhausted] {
            assert_eq!(Level::parse(level.as_str()), Some(level));
        }
        assert_eq!(Level::parse("LOW"), None);
    }

    #[test]
    fn the_jobs_have_the_seed_shape_and_a_deterministic_id() {
        let user = UserId::parse("u1").unwrap();
        let warning = job(&user, 2, Level::Low, 500, 1_000);
        assert_eq!(warning.job_id, "low-credits:u1:2:low");
        assert_eq!(warning.kind, "warning");
        assert_eq!(warning.title, "Low Credits");
        assert_eq!(
            warning.message,
            "Your credit balance is low (500 credits remaining)."
        );
        assert_eq!(
            warning.data,
            Some(json!({"credits_remaining": 500, "threshold": 1000}))
        );
        let error = job(&user, 2, Level::Exhausted, -3, 1_000);
        assert_eq!(error.job_id, "low-credits:u1:2:exhausted");
        assert_eq!(error.kind, "error");
        assert_eq!(error.title, "Credits exhausted");
        for j in [warning, error] {
            Job::validate(j).unwrap();
        }
    }
}
