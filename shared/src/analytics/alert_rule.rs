//! Metric alert rules: error rate above X% over the last N hours (with at least M requests), p95
//! latency above Y ms, requests down more than Z% against the same window a week earlier —
//! overall or on one provider, model or endpoint. This is the definition, the measurement from
//! hourly rollups and the state machine; when a transition notifies is the seam's
//! (`seam::alert_rules`), and where rules live is the store's (`store::alert_rules`).
//!
//! A rule is `ok` or `breached`. It breaches when its measure passes the limit with enough
//! requests to judge, and recovers when, again with enough requests, the measure is back within
//! the limit; too few requests decide nothing. Each transition bumps `epoch`, which names its
//! one notification.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::{Deserialize, Serialize};

use crate::analytics::budget::Filter;
use crate::analytics::histogram::Histogram;
use crate::analytics::rollup::{Counters, Rollup};

/// Rules one user may have.
pub const MAX_RULES: usize = 20;
/// The longest window, in hours (one week).
pub const MAX_WINDOW_HOURS: u32 = 168;
/// The largest error-rate or drop limit, in hundredths of a percent (100%).
pub const MAX_PERCENT_BP: i64 = 10_000;
/// The largest latency limit, in milliseconds (ten minutes).
pub const MAX_LATENCY_MS: i64 = 600_000;
/// The most requests a rule may ask for before it judges.
pub const MAX_MIN_REQUESTS: i64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Errors per request above `limit` (hundredths of a percent).
    ErrorRate,
    /// The 95th percentile of latency above `limit` milliseconds.
    LatencyP95,
    /// Requests fewer than the same window a week earlier by more than `limit` (hundredths of a
    /// percent); `min_requests` applies to the week-earlier window.
    RequestsDrop,
}

impl RuleKind {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "error_rate" => Some(Self::ErrorRate),
            "latency_p95" => Some(Self::LatencyP95),
            "requests_drop" => Some(Self::RequestsDrop),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRate => "error_rate",
            Self::LatencyP95 => "latency_p95",
            Self::RequestsDrop => "requests_drop",
        }
    }

    /// Requests a window needs before the rule judges, when the rule does not say.
    pub fn default_min_requests(self) -> i64 {
        match self {
            Self::ErrorRate => 50,
            Self::LatencyP95 => 20,
            Self::RequestsDrop => 100,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Ok,
    Breached,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Breached => "breached",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub kind: RuleKind,
    /// Hundredths of a percent (error rate, drop) or milliseconds (latency).
    pub limit: i64,
    pub window_hours: u32,
    pub min_requests: i64,
    #[serde(default)]
    pub filter: Filter,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Changes whenever the definition is replaced; it resets the state and names new jobs.
    pub rev: i64,
    #[serde(default)]
    pub status: Status,
    /// Transitions so far under this `rev`.
    #[serde(default)]
    pub epoch: i64,
    /// The end of the window that decided the last transition: a late evaluation of an older
    /// window (a retried message) cannot undo a newer decision.
    #[serde(default)]
    pub decided_through: Option<DateTime<Utc>>,
}

/// The hours a rule looks at when evaluated at `at`: the last `hours` whole hours before it.
pub fn window(at: DateTime<Utc>, hours: u32) -> (DateTime<Utc>, DateTime<Utc>) {
    let end = at.duration_trunc(Duration::hours(1)).unwrap_or(at);
    (end - Duration::hours(i64::from(hours)), end)
}

/// What one evaluation measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    /// Hundredths of a percent (error rate, drop) or milliseconds (latency); `None` when the
    /// window has too few requests to judge.
    pub value: Option<i64>,
    /// Requests in the window (for a drop: the current window).
    pub requests: i64,
    pub errors: i64,
    /// For a drop: requests in the same window a week earlier.
    pub baseline_requests: Option<i64>,
}

/// What a rule looks at in one window (or one hour): its scope's counters and, for a latency
/// rule, its scope's histogram. Samples add, so a window is the sum of its hours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub counters: Counters,
    pub latency: Histogram,
}

impl Sample {
    pub fn add(&mut self, o: &Sample) {
        self.counters = add(self.counters, &o.counters);
        self.latency.merge(&o.latency);
    }
}

/// A decided transition of one rule, kept until its notification is queued (see
/// `seam::alert_rules`): everything that notification says travels with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The rule as it is after the transition (its new `status` and `epoch`).
    pub rule: Rule,
    pub measure: Measure,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// When it was decided.
    pub at: DateTime<Utc>,
}

impl Measure {
    /// Breached, within the limit, or (too few requests) undecided.
    pub fn verdict(&self, rule: &Rule) -> Option<Status> {
        self.value.map(|v| {
            if v > rule.limit {
                Status::Breached
            } else {
                Status::Ok
            }
        })
    }
}

impl Rule {
    /// The counters of the rule's scope in a window's summed rollup.
    fn counters(&self, r: &Rollup) -> Counters {
        let f = &self.filter;
        if let Some(e) = &f.endpoint {
            return r.endpoints.get(e).copied().unwrap_or_default();
        }
        if f.model.is_some() {
            let mut sum = Counters::default();
            for ((p, m), c) in &r.models {
                if f.provider.as_deref().is_none_or(|x| x == p)
                    && f.model.as_deref().is_none_or(|x| x == m)
                {
                    sum = add(sum, c);
                }
            }
            return sum;
        }
        if let Some(p) = &f.provider {
            return r.providers.get(p).copied().unwrap_or_default();
        }
        r.total
    }

    /// The latency histogram of the rule's scope.
    fn latency(&self, r: &Rollup) -> Histogram {
        let f = &self.filter;
        if let Some(e) = &f.endpoint {
            return r.endpoint_latency.get(e).cloned().unwrap_or_default();
        }
        if f.model.is_some() || f.provider.is_some() {
            let mut h = Histogram::default();
            for ((p, m), x) in &r.model_latency {
                if f.provider.as_deref().is_none_or(|v| v == p)
                    && f.model.as_deref().is_none_or(|v| v == m)
                {
                    h.merge(x);
                }
            }
            return h;
        }
        r.latency.clone()
    }

    /// What of `r` the rule looks at: its scope's counters and latency histogram.
    pub fn sample(&self, r: &Rollup) -> Sample {
        Sample {
            counters: self.counters(r),
            latency: if self.kind == RuleKind::LatencyP95 {
                self.latency(r)
            } else {
                Histogram::default()
            },
        }
    }

    /// Measures the window's rollup `now` (and for a drop the week-earlier window's `before`).
    pub fn measure(&self, now: &Rollup, before: Option<&Rollup>) -> Measure {
        self.judge(&self.sample(now), before.map(|b| self.sample(b)).as_ref())
    }

    /// Measures a window's sample `now` (and for a drop the week-earlier one, `before`).
    pub fn judge(&self, now: &Sample, before: Option<&Sample>) -> Measure {
        let c = now.counters;
        let enough = |n: i64| n >= self.min_requests && n > 0;
        match self.kind {
            RuleKind::ErrorRate => Measure {
                value: enough(c.requests).then(|| bp(c.errors, c.requests)),
                requests: c.requests,
                errors: c.errors,
                baseline_requests: None,
            },
            RuleKind::LatencyP95 => {
                let h = &now.latency;
                let value = if enough(h.count()) {
                    h.quantile(0.95).map(|ms| ms.round() as i64)
                } else {
                    None
                };
                Measure {
                    value,
                    requests: c.requests,
                    errors: c.errors,
                    baseline_requests: None,
                }
            }
            RuleKind::RequestsDrop => {
                let base = before.map_or(0, |b| b.counters.requests);
                Measure {
                    // Growth is no drop: the measure is the share lost, never below zero.
                    value: enough(base).then(|| bp((base - c.requests).max(0), base)),
                    requests: c.requests,
                    errors: c.errors,
                    baseline_requests: Some(base),
                }
            }
        }
    }

    /// Where the rule goes from its status given `m`: `Some(new status)` on a transition.
    pub fn transition(&self, m: &Measure) -> Option<Status> {
        match m.verdict(self) {
            Some(v) if v != self.status => Some(v),
            _ => None,
        }
    }

    /// Whether an evaluation of the window ending at `end` may still decide: not when a
    /// transition was already decided on this window or a later one.
    pub fn decides(&self, end: DateTime<Utc>) -> bool {
        self.decided_through.is_none_or(|t| end > t)
    }

    /// The scope in words: "on /v1/chat", "on openai/gpt-4o", "overall".
    pub fn scope_text(&self) -> String {
        let f = &self.filter;
        match (&f.provider, &f.model, &f.endpoint) {
            (_, _, Some(e)) => format!("on {e}"),
            (Some(p), Some(m), _) => format!("on {p}/{m}"),
            (None, Some(m), _) => format!("on {m}"),
            (Some(p), None, _) => format!("on {p}"),
            (None, None, None) => "overall".into(),
        }
    }
}

fn add(a: Counters, b: &Counters) -> Counters {
    Counters {
        requests: a.requests + b.requests,
        errors: a.errors + b.errors,
        credits: a.credits + b.credits,
        cost_micros: a.cost_micros + b.cost_micros,
        input_tokens: a.input_tokens + b.input_tokens,
        output_tokens: a.output_tokens + b.output_tokens,
        latency_ms: a.latency_ms + b.latency_ms,
    }
}

/// `part / whole` in hundredths of a percent, rounded down (whole > 0).
fn bp(part: i64, whole: i64) -> i64 {
    (i128::from(part) * 10_000 / i128::from(whole.max(1))) as i64
}

/// Hundredths of a percent as text: 790 → "7.9%", 500 → "5%".
pub fn percent_text(bp: i64) -> String {
    let whole = bp / 100;
    let frac = bp % 100;
    if frac == 0 {
        format!("{whole}%")
    } else if frac % 10 == 0 {
        format!("{whole}.{}%", frac / 10)
    } else {
        format!("{whole}.{frac:02}%")
    }
}

/// Hundredths of a percent as a JSON number of percent (790 → 7.9).
pub fn percent_number(bp: i64) -> f64 {
    bp as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::event::UsageEvent;

    fn rule(kind: RuleKind, limit: i64, min_requests: i64) -> Rule {
        let t = "2026-11-24T10:00:00Z".parse().unwrap();
        Rule {
            id: "r".into(),
            kind,
            limit,
            window_hours: 1,
            min_requests,
            filter: Filter::default(),
            created_at: t,
            updated_at: t,
            rev: 1,
            status: Status::Ok,
            epoch: 0,
            decided_through: None,
        }
    }

    fn rollup(events: &[(&str, u32, u16)]) -> Rollup {
        let mut r = Rollup::default();
        for (i, (endpoint, latency, status)) in events.iter().enumerate() {
            let e = UsageEvent::parse(
                &serde_json::json!({
                    "event_id": format!("e{i}"), "user_id": "u", "timestamp": "2026-11-24T09:30:00Z",
                    "provider": "openai", "model": "gpt-4o", "endpoint": endpoint,
                    "kind": "request", "latency_ms": latency, "status_code": status, "cost_usd": 0.01, "credits": 1
                }),
                crate::analytics::event::Window {
                    now: "2026-11-24T10:00:00Z".parse().unwrap(),
                    retention_days: 90,
                },
            )
            .unwrap();
            r.add(&e);
        }
        r
    }

    #[test]
    fn the_window_is_the_last_whole_hours() {
        let (a, b) = window("2026-11-24T10:02:13Z".parse().unwrap(), 3);
        assert_eq!(a.to_rfc3339(), "2026-11-24T07:00:00+00:00");
        assert_eq!(b.to_rfc3339(), "2026-11-24T10:00:00+00:00");
    }

    #[test]
    fn error_rate_judges_only_with_enough_requests() {
        let r = rule(RuleKind::ErrorRate, 500, 10);
        let mut events = vec![("/v1/chat", 100, 200); 8];
        events.push(("/v1/chat", 100, 500));
        let few = rollup(&events);
        assert_eq!(r.measure(&few, None).value, None, "9 requests < 10");
        events.push(("/v1/chat", 100, 200));
        let m = r.measure(&rollup(&events), None);
        assert_eq!(m.value, Some(1_000), "1 error in 10 = 10%");
        assert_eq!(r.transition(&m), Some(Status::Breached));
        let breached = Rule {
            status: Status::Breached,
            ..r.clone()
        };
        assert_eq!(breached.transition(&m), None, "a breach notifies once");
        let healthy = rollup(&[("/v1/chat", 100, 200); 10]);
        assert_eq!(
            breached.transition(&breached.measure(&healthy, None)),
            Some(Status::Ok)
        );
    }

    #[test]
    fn latency_is_judged_on_the_rules_scope() {
        let mut r = rule(RuleKind::LatencyP95, 1_000, 5);
        let mut events = vec![("/v1/chat", 3_000, 200); 5];
        events.extend(vec![("/v1/embeddings", 50, 200); 95]);
        let window = rollup(&events);
        assert!(
            r.measure(&window, None).value.unwrap() < 1_000,
            "overall p95 is an embedding"
        );
        r.filter.endpoint = Some("/v1/chat".into());
        let m = r.measure(&window, None);
        assert!(m.value.unwrap() > 2_800, "{m:?}");
        assert_eq!(m.requests, 5);
    }

    #[test]
    fn a_drop_compares_with_the_same_window_a_week_earlier() {
        let r = rule(RuleKind::RequestsDrop, 5_000, 10);
        let before = rollup(&[("/v1/chat", 100, 200); 20]);
        let now = rollup(&[("/v1/chat", 100, 200); 8]);
        let m = r.measure(&now, Some(&before));
        assert_eq!(m.value, Some(6_000), "8 of 20 = 60% down");
        assert_eq!(m.baseline_requests, Some(20));
        assert_eq!(r.transition(&m), Some(Status::Breached));
        let grown = rollup(&[("/v1/chat", 100, 200); 30]);
        assert_eq!(r.measure(&grown, Some(&before)).value, Some(0));
        let quiet_week = rollup(&[("/v1/chat", 100, 200); 5]);
        assert_eq!(
            r.measure(&Rollup::default(), Some(&quiet_week)).value,
            None,
            "a baseline under min_requests decides nothing"
        );
        assert_eq!(
            r.measure(&Rollup::default(), Some(&before)).value,
            Some(10_000),
            "no requests at all is a 100% drop"
        );
    }

    #[test]
    fn an_older_window_cannot_undo_a_newer_decision() {
        let mut r = rule(RuleKind::ErrorRate, 500, 1);
        let ten: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
        r.decided_through = Some(ten);
        assert!(!r.decides(ten));
        assert!(!r.decides(ten - Duration::hours(1)));
        assert!(r.decides(ten + Duration::hours(1)));
    }

    #[test]
    fn percentages_read_naturally() {
        assert_eq!(percent_text(790), "7.9%");
        assert_eq!(percent_text(500), "5%");
        assert_eq!(percent_text(1_234), "12.34%");
        assert_eq!(percent_text(5), "0.05%");
    }
}
