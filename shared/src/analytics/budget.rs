//! Budgets: a spending limit per day, ISO week or month in the user's time zone, in micro-USD or
//! credits, optionally on one provider, model or endpoint, with thresholds in percent. This is
//! the definition and its arithmetic; when a threshold notifies is the seam's
//! (`seam::budgets`), and where budgets live is the store's (`store::budgets`).
//!
//! The alert state travels with the definition (`fired_period`, `fired`, `pending`), so one
//! conditional write of the user's budget item decides every race.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::analytics::event::MAX_FUTURE;
use crate::analytics::period::cover;
use crate::analytics::rollup::{Counters, Rollup};
use crate::analytics::store::{Scope, UsageStore};
use crate::analytics::zone::Zone;
use crate::platform::dynamodb::StoreError;

/// Budgets one user may have.
pub const MAX_BUDGETS: usize = 20;
/// Thresholds one budget may have.
pub const MAX_THRESHOLDS: usize = 20;
/// The largest threshold, in percent.
pub const MAX_THRESHOLD: u32 = 1_000;
pub const DEFAULT_THRESHOLDS: [u32; 4] = [50, 75, 90, 100];
/// Entries in each of the "top" lists of a notification.
pub const TOP: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    Day,
    Week,
    Month,
}

impl BudgetPeriod {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }

    /// The period containing `now` in `tz`: [start, end).
    pub fn window(self, tz: &Zone, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let today = tz.local(now).date_naive();
        let (first, next) = match self {
            Self::Day => (today, today + Duration::days(1)),
            Self::Week => {
                let monday =
                    today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
                (monday, monday + Duration::days(7))
            }
            Self::Month => {
                let first = today.with_day(1).unwrap_or(today);
                (
                    first,
                    first.checked_add_months(Months::new(1)).unwrap_or(first),
                )
            }
        };
        (tz.midnight(first), tz.midnight(next))
    }
}

/// What a budget limits: micro-USD of cost or credits used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    UsdMicros(i64),
    Credits(i64),
}

impl Amount {
    pub fn value(self) -> i64 {
        match self {
            Amount::UsdMicros(v) | Amount::Credits(v) => v,
        }
    }

    /// The measure of `c` this budget counts.
    pub fn measure(self, c: &Counters) -> i64 {
        match self {
            Amount::UsdMicros(_) => c.cost_micros,
            Amount::Credits(_) => c.credits,
        }
    }
}

/// Which usage counts against a budget. A provider, a model (optionally of one provider) or an
/// endpoint: rollups keep no cross counts of models by endpoint, so those do not combine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

impl Filter {
    fn model_matches(&self, provider: &str, model: &str) -> bool {
        self.provider.as_deref().is_none_or(|p| p == provider)
            && self.model.as_deref().is_none_or(|m| m == model)
    }
}

/// One firing decided and claimed, waiting for its job to be queued (see `seam::budgets`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    pub rev: i64,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub thresholds: Vec<u32>,
    pub spent: i64,
    pub amount: Amount,
    pub top_models: Vec<(String, String, i64)>,
    pub top_providers: Vec<(String, i64)>,
    pub top_endpoints: Vec<(String, i64)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub id: String,
    pub amount: Amount,
    pub period: BudgetPeriod,
    pub tz: String,
    pub thresholds: Vec<u32>,
    #[serde(default)]
    pub filter: Filter,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Changes whenever the definition is replaced, so a re-armed threshold gets a new job id.
    pub rev: i64,
    /// The start of the period `fired` belongs to; another period means nothing fired yet.
    #[serde(default)]
    pub fired_period: Option<DateTime<Utc>>,
    #[serde(default)]
    pub fired: Vec<u32>,
    #[serde(default)]
    pub pending: Vec<Firing>,
    /// A system-wide budget notifies this admin (the one who last set it); a user's budget
    /// notifies its user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
}

impl Budget {
    pub fn zone(&self) -> Zone {
        Zone::parse(&self.tz).unwrap_or_else(Zone::utc)
    }

    pub fn window(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        self.period.window(&self.zone(), now)
    }

    /// The thresholds already fired in the period starting at `start`.
    pub fn fired_in(&self, start: DateTime<Utc>) -> &[u32] {
        if self.fired_period == Some(start) {
            &self.fired
        } else {
            &[]
        }
    }

    /// What the period's usage in `r` (its buckets summed) counts against this budget.
    pub fn spent(&self, r: &Rollup) -> i64 {
        let f = &self.filter;
        let a = self.amount;
        if let Some(e) = &f.endpoint {
            return r.endpoints.get(e).map_or(0, |c| a.measure(c));
        }
        if f.model.is_some() {
            return r
                .models
                .iter()
                .filter(|((p, m), _)| f.model_matches(p, m))
                .map(|(_, c)| a.measure(c))
                .sum();
        }
        if let Some(p) = &f.provider {
            return r.providers.get(p).map_or(0, |c| a.measure(c));
        }
        a.measure(&r.total)
    }

    /// The models, providers and endpoints behind the spend, largest first, within the filter.
    #[allow(clippy::type_complexity)]
    pub fn tops(
        &self,
        r: &Rollup,
    ) -> (
        Vec<(String, String, i64)>,
        Vec<(String, i64)>,
        Vec<(String, i64)>,
    ) {
        let f = &self.filter;
        let a = self.amount;
        let by_dimension = f.endpoint.is_none();
        let mut models: Vec<(String, String, i64)> = if by_dimension {
            r.models
                .iter()
                .filter(|((p, m), _)| f.model_matches(p, m))
                .map(|((p, m), c)| (p.clone(), m.clone(), a.measure(c)))
                .collect()
        } else {
            vec![]
        };
        let mut providers: Vec<(String, i64)> = if !by_dimension {
            vec![]
        } else if f.model.is_some() {
            let mut sums: std::collections::BTreeMap<String, i64> = Default::default();
            for (p, _, v) in &models {
                *sums.entry(p.clone()).or_default() += v;
            }
            sums.into_iter().collect()
        } else {
            r.providers
                .iter()
                .filter(|(p, _)| f.provider.as_deref().is_none_or(|x| x == p.as_str()))
                .map(|(p, c)| (p.clone(), a.measure(c)))
                .collect()
        };
        // Endpoints are not counted per provider or model: shown only when they tell the truth.
        let mut endpoints: Vec<(String, i64)> = if f.provider.is_some() || f.model.is_some() {
            vec![]
        } else {
            r.endpoints
                .iter()
                .filter(|(e, _)| f.endpoint.as_deref().is_none_or(|x| x == e.as_str()))
                .map(|(e, c)| (e.clone(), a.measure(c)))
                .collect()
        };
        models.retain(|m| m.2 > 0);
        providers.retain(|p| p.1 > 0);
        endpoints.retain(|e| e.1 > 0);
        models.sort_by(|x, y| y.2.cmp(&x.2).then_with(|| x.cmp(y)));
        providers.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.cmp(y)));
        endpoints.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.cmp(y)));
        models.truncate(TOP);
        providers.truncate(TOP);
        endpoints.truncate(TOP);
        (models, providers, endpoints)
    }
}

/// Each distinct period's usage summed over its buckets, read once however many budgets share
/// it: the rollups of the period's cover (days and edge hours), never the events.
#[derive(Default)]
pub struct PeriodUsage {
    read: std::collections::BTreeMap<(DateTime<Utc>, DateTime<Utc>), Rollup>,
}

impl PeriodUsage {
    pub async fn of(
        &mut self,
        store: &UsageStore,
        scope: &Scope,
        window: (DateTime<Utc>, DateTime<Utc>),
        consistent: bool,
    ) -> Result<&Rollup, StoreError> {
        use std::collections::btree_map::Entry;
        match self.read.entry(window) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let cover = cover(window.0, read_until(window.1, Utc::now()));
                let buckets = if consistent {
                    store.rollups_consistent(scope, &cover).await?
                } else {
                    store.rollups(scope, &cover).await?
                };
                let mut sum = Rollup::default();
                for r in buckets.values() {
                    sum.merge(r);
                }
                Ok(e.insert(sum))
            }
        }
    }
}

/// Where a read of a period ending at `end` may stop, as of `now`: no stored event is later
/// than `now` + [`MAX_FUTURE`], so while the period ends after that, reading to the next UTC
/// midnight instead counts exactly the same events — with whole day items (one Query) instead
/// of the period's hours, and without reading the days still to come.
pub fn read_until(end: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let latest = now + MAX_FUTURE;
    if end <= latest {
        return end;
    }
    let day = latest.date_naive() + Duration::days(1);
    day.and_hms_opt(0, 0, 0).map_or(end, |t| t.and_utc())
}

/// Whole days left in the period from `now`, today included.
pub fn days_left(now: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
    let secs = (end - now).num_seconds().max(0);
    (secs + 86_399) / 86_400
}

/// The local calendar date a period starts on, for messages.
pub fn local_date(tz: &Zone, t: DateTime<Utc>) -> NaiveDate {
    tz.local(t).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_read_to_the_next_utc_midnight_while_no_event_can_be_past_its_end() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let now = t("2026-11-24T10:00:00Z");
        assert_eq!(
            read_until(t("2026-12-01T00:00:00Z"), now),
            t("2026-11-25T00:00:00Z")
        );
        // New York's day ends at 05:00 UTC: no event can be in 05:00..24:00 yet.
        assert_eq!(
            read_until(t("2026-11-25T05:00:00Z"), now),
            t("2026-11-25T00:00:00Z")
        );
        // Within the clock skew of the end, the end itself.
        assert_eq!(
            read_until(t("2026-11-24T10:04:00Z"), now),
            t("2026-11-24T10:04:00Z")
        );
    }

    fn at(raw: &str) -> DateTime<Utc> {
        raw.parse().unwrap()
    }

    #[test]
    fn periods_begin_at_local_midnight_on_the_day_the_iso_week_and_the_month() {
        let paris = Zone::parse("Europe/Paris").unwrap();
        let now = at("2026-11-24T23:30:00Z"); // Wednesday 00:30 in Paris
        for (period, start, end) in [
            (
                BudgetPeriod::Day,
                "2026-11-24T23:00:00Z",
                "2026-11-25T23:00:00Z",
            ),
            (
                BudgetPeriod::Week,
                "2026-11-22T23:00:00Z",
                "2026-11-29T23:00:00Z",
            ),
            (
                BudgetPeriod::Month,
                "2026-10-31T23:00:00Z",
                "2026-11-30T23:00:00Z",
            ),
        ] {
            assert_eq!(
                period.window(&paris, now),
                (at(start), at(end)),
                "{}",
                period.as_str()
            );
        }
        assert_eq!(
            BudgetPeriod::Month.window(&Zone::utc(), at("2026-12-31T10:00:00Z")),
            (at("2026-12-01T00:00:00Z"), at("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn what_fired_belongs_to_its_period_and_a_new_period_re_arms() {
        let start = at("2026-11-01T00:00:00Z");
        let b = Budget {
            id: "b".into(),
            amount: Amount::Credits(100),
            period: BudgetPeriod::Month,
            tz: "UTC".into(),
            thresholds: DEFAULT_THRESHOLDS.to_vec(),
            filter: Filter::default(),
            created_at: start,
            updated_at: start,
            rev: 1,
            fired_period: Some(start),
            fired: vec![50, 75],
            pending: vec![],
            notify: None,
        };
        assert_eq!(b.fired_in(start), [50, 75]);
        assert!(b.fired_in(at("2026-12-01T00:00:00Z")).is_empty());
    }

    #[test]
    fn a_filter_counts_its_provider_model_or_endpoint_only() {
        let mut r = Rollup::default();
        let c = |credits| Counters {
            credits,
            ..Counters::default()
        };
        r.total = c(10);
        r.providers.insert("openai".into(), c(7));
        r.providers.insert("anthropic".into(), c(3));
        r.models.insert(("openai".into(), "gpt-4o".into()), c(7));
        r.models.insert(("anthropic".into(), "claude".into()), c(3));
        r.endpoints.insert("/chat".into(), c(9));
        let budget = |filter| Budget {
            id: "b".into(),
            amount: Amount::Credits(100),
            period: BudgetPeriod::Month,
            tz: "UTC".into(),
            thresholds: vec![50],
            filter,
            created_at: at("2026-11-01T00:00:00Z"),
            updated_at: at("2026-11-01T00:00:00Z"),
            rev: 1,
            fired_period: None,
            fired: vec![],
            pending: vec![],
            notify: None,
        };
        let f = |p: Option<&str>, m: Option<&str>, e: Option<&str>| Filter {
            provider: p.map(str::to_owned),
            model: m.map(str::to_owned),
            endpoint: e.map(str::to_owned),
        };
        for (what, filter, spent) in [
            ("everything", f(None, None, None), 10),
            ("a provider", f(Some("anthropic"), None, None), 3),
            ("a model", f(None, Some("gpt-4o"), None), 7),
            (
                "a model of another provider",
                f(Some("anthropic"), Some("gpt-4o"), None),
                0,
            ),
            ("an endpoint", f(None, None, Some("/chat")), 9),
            ("an unknown endpoint", f(None, None, Some("/x")), 0),
        ] {
            assert_eq!(budget(filter).spent(&r), spent, "{what}");
        }
        let (models, providers, endpoints) = budget(f(None, None, None)).tops(&r);
        assert_eq!(models[0], ("openai".into(), "gpt-4o".into(), 7));
        assert_eq!(providers.len(), 2);
        assert_eq!(endpoints, [("/chat".to_owned(), 9)]);
    }

    #[test]
    fn days_left_counts_today() {
        let end = at("2026-12-01T00:00:00Z");
        assert_eq!(days_left(at("2026-11-30T23:00:00Z"), end), 1);
        assert_eq!(days_left(at("2026-11-29T00:00:00Z"), end), 2);
        assert_eq!(days_left(end, end), 0);
    }
}
