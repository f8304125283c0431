//! Budget alerts: the pure decision (which thresholds a period's spend has newly crossed) and the
//! notification job a firing becomes.
//!
//! Every threshold fires at most once per period: the fired set is kept per period on the
//! budget, and a firing is *claimed* (the fired set grows and the firing is parked as pending)
//! in one conditional write before its job is queued; the job is then queued and the pending
//! firing cleared. Claiming first matters here, unlike the low-credit alert: one job names
//! several thresholds, and a writer that queued first and then lost the race would name
//! thresholds the winner names too. A crash after the claim leaves the firing pending; the next
//! evaluation (the retried batch) queues it again under the same job id, which the dispatcher
//! turns into one notification.

use serde_json::{json, Value};

use crate::analytics::budget::{days_left, Amount, Budget, BudgetPeriod, Firing};
use crate::analytics::money::format_usd;
use crate::notifications::jobs::NotificationJob;
use crate::platform::domain::UserId;

/// Whether `spent` has reached `threshold` percent of `amount` (exact: no rounding).
pub fn reached(spent: i64, amount: i64, threshold: u32) -> bool {
    i128::from(spent) * 100 >= i128::from(amount) * i128::from(threshold)
}

/// The thresholds `spent` has reached that have not fired yet, in ascending order.
pub fn crossed(spent: i64, amount: i64, thresholds: &[u32], fired: &[u32]) -> Vec<u32> {
    thresholds
        .iter()
        .copied()
        .filter(|t| reached(spent, amount, *t) && !fired.contains(t))
        .collect()
}

/// The fired thresholds that stay fired when a budget is redefined: those still in its list and
/// still reached at its (new) amount. Raising the amount re-arms the ones now above the spend.
pub fn still_fired(fired: &[u32], spent: i64, amount: i64, thresholds: &[u32]) -> Vec<u32> {
    fired
        .iter()
        .copied()
        .filter(|t| thresholds.contains(t) && reached(spent, amount, *t))
        .collect()
}

/// Whole percent of `amount` that `spent` is (rounded down).
pub fn percent(spent: i64, amount: i64) -> i64 {
    if amount <= 0 {
        return 0;
    }
    (i128::from(spent) * 100 / i128::from(amount)) as i64
}

/// The deterministic id of a firing: every evaluation that re-queues it names the same job.
pub fn job_id(budget: &Budget, f: &Firing) -> String {
    let highest = f.thresholds.last().copied().unwrap_or(0);
    let kind = if budget.notify.is_some() {
        "system-budget"
    } else {
        "budget"
    };
    format!(
        "{kind}:{}:{}:{}:{highest}",
        budget.id,
        f.rev,
        f.period_start.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

fn money(amount: Amount, v: i64) -> Value {
    match amount {
        Amount::UsdMicros(_) => json!(v as f64 / 1_000_000.0),
        Amount::Credits(_) => json!(v),
    }
}

fn shown(amount: Amount, v: i64) -> String {
    match amount {
        Amount::UsdMicros(_) => format!("${}", format_usd(v, 2)),
        Amount::Credits(_) => format!("{v} credits"),
    }
}

/// The notification of one firing of `budget`.
pub fn job(user: &UserId, budget: &Budget, f: &Firing) -> NotificationJob {
    let amount = f.amount.value();
    let pct = percent(f.spent, amount);
    let over = f.spent >= amount;
    let left = days_left(f.at, f.period_end);
    let list = f
        .thresholds
        .iter()
        .map(|t| format!("{t}%"))
        .collect::<Vec<_>>()
        .join(", ");
    let (name, whose) = if budget.notify.is_some() {
        ("System budget", "The platform has")
    } else {
        ("Budget", "You have")
    };
    let title = if over {
        format!("{name} {} exceeded", budget.id)
    } else {
        format!("{name} {} at {pct}%", budget.id)
    };
    let message = format!(
        "{whose} spent {} of {} {} budget {} ({pct}%), crossing {list}; {left} day{} left in \
         the period.",
        shown(f.amount, f.spent),
        if budget.notify.is_some() {
            format!("the {}", shown(f.amount, amount))
        } else {
            format!("your {}", shown(f.amount, amount))
        },
        match budget.period {
            BudgetPeriod::Day => "daily",
            BudgetPeriod::Week => "weekly",
            BudgetPeriod::Month => "monthly",
        },
        budget.id,
        if left == 1 { "" } else { "s" },
    );
    let unit = match f.amount {
        Amount::UsdMicros(_) => "usd",
        Amount::Credits(_) => "credits",
    };
    let mut data = json!({
        "budget_id": budget.id,
        "system": budget.notify.is_some(),
        "period": budget.period.as_str(),
        "period_start": f.period_start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "period_end": f.period_end.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "percent": pct,
        "thresholds_crossed": f.thresholds,
        "days_left": left,
        "top_models": f.top_models.iter().map(|(p, m, v)| json!({"provider": p, "model": m, format!("spent_{unit}"): money(f.amount, *v)})).collect::<Vec<_>>(),
        "top_providers": f.top_providers.iter().map(|(p, v)| json!({"provider": p, format!("spent_{unit}"): money(f.amount, *v)})).collect::<Vec<_>>(),
        "top_endpoints": f.top_endpoints.iter().map(|(e, v)| json!({"endpoint": e, format!("spent_{unit}"): money(f.amount, *v)})).collect::<Vec<_>>(),
    });
    if let Some(obj) = data.as_object_mut() {
        obj.insert(format!("spent_{unit}"), money(f.amount, f.spent));
        obj.insert(format!("budget_{unit}"), money(f.amount, amount));
    }
    NotificationJob {
        job_id: job_id(budget, f),
        user_id: Some(user.to_string()),
        user_ids: None,
        kind: if over { "error" } else { "warning" }.to_owned(),
        title,
        message,
        data: Some(data),
        channels: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::budget::Filter;
    use crate::notifications::jobs::Job;

    const T: [u32; 4] = [50, 75, 90, 100];

    #[test]
    fn each_threshold_is_crossed_once_and_a_jump_names_all_it_passes() {
        let amount = 100_000_000; // $100
        for (what, spent, fired, expected) in [
            ("nothing spent", 0, vec![], vec![]),
            ("just below the first", 49_999_999, vec![], vec![]),
            ("exactly the first", 50_000_000, vec![], vec![50]),
            ("already fired", 60_000_000, vec![50], vec![]),
            ("a jump past three", 95_000_000, vec![], vec![50, 75, 90]),
            ("the rest of a jump", 95_000_000, vec![50], vec![75, 90]),
            ("over the budget", 250_000_000, vec![50, 75, 90], vec![100]),
            ("all fired", 300_000_000, T.to_vec(), vec![]),
            ("a refund lowers the spend", 10_000_000, vec![50], vec![]),
        ] {
            assert_eq!(crossed(spent, amount, &T, &fired), expected, "{what}");
        }
    }

    #[test]
    fn thresholds_above_100_and_huge_amounts_do_not_overflow() {
        assert_eq!(
            crossed(300, 100, &[100, 200, 300, 1000], &[]),
            vec![100, 200, 300]
        );
        assert!(!reached(i64::MAX - 1, i64::MAX, 100));
        assert!(reached(i64::MAX, i64::MAX, 100));
    }

    #[test]
    fn redefining_keeps_only_the_fired_thresholds_still_reached() {
        for (what, fired, spent, amount, thresholds, kept) in [
            ("unchanged", vec![50, 75], 80, 100, T.to_vec(), vec![50, 75]),
            (
                "amount raised: 75 re-arms",
                vec![50, 75],
                80,
                150,
                T.to_vec(),
                vec![50],
            ),
            (
                "amount doubled: all re-arm",
                vec![50, 75],
                80,
                200,
                T.to_vec(),
                vec![],
            ),
            ("amount lowered", vec![50], 80, 50, T.to_vec(), vec![50]),
            (
                "threshold removed",
                vec![50, 75],
                80,
                100,
                vec![75, 90],
                vec![75],
            ),
        ] {
            assert_eq!(
                still_fired(&fired, spent, amount, &thresholds),
                kept,
                "{what}"
            );
        }
    }

    #[test]
    fn a_firing_becomes_a_valid_job_naming_why() {
        let at = "2026-11-20T12:00:00Z".parse().unwrap();
        let budget = Budget {
            id: "team".into(),
            amount: Amount::UsdMicros(100_000_000),
            period: BudgetPeriod::Month,
            tz: "UTC".into(),
            thresholds: T.to_vec(),
            filter: Filter::default(),
            created_at: at,
            updated_at: at,
            rev: 7,
            fired_period: None,
            fired: vec![],
            pending: vec![],
            notify: None,
        };
        let firing = Firing {
            rev: 7,
            period_start: "2026-11-01T00:00:00Z".parse().unwrap(),
            period_end: "2026-12-01T00:00:00Z".parse().unwrap(),
            at,
            thresholds: vec![50, 75],
            spent: 80_500_000,
            amount: budget.amount,
            top_models: vec![("openai".into(), "gpt-4o".into(), 80_500_000)],
            top_providers: vec![("openai".into(), 80_500_000)],
            top_endpoints: vec![],
        };
        let job = job(&UserId::parse("u1").unwrap(), &budget, &firing);
        assert_eq!(job.job_id, "budget:team:7:2026-11-01T00:00:00Z:75");
        assert_eq!(job.kind, "warning");
        assert_eq!(job.title, "Budget team at 80%");
        assert!(
            job.message.contains(
                "$80.50 of your $100.00 monthly budget team (80%), crossing 50%, 75%; 11 days left"
            ),
            "{}",
            job.message
        );
        let data = job.data.clone().unwrap();
        assert_eq!(data["thresholds_crossed"], json!([50, 75]));
        assert_eq!(data["spent_usd"], json!(80.5));
        assert_eq!(data["budget_usd"], json!(100.0));
        assert_eq!(data["days_left"], json!(11));
        assert_eq!(data["top_models"][0]["model"], json!("gpt-4o"));
        Job::validate(job).unwrap();

        let over = Firing {
            thresholds: vec![100],
            spent: 100_000_000,
            ..firing
        };
        assert_eq!(
            super::job(&UserId::parse("u1").unwrap(), &budget, &over).kind,
            "error"
        );
    }
}
