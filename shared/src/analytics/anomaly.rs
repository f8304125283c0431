//! Anomaly detection: the pure decision. A window (the last hour, or the last day) of one
//! driver (all usage, a model or an endpoint) is compared with the same window of the previous
//! weeks (same hour of the week, same weekday): the baseline is their median, its spread the
//! larger of 1.4826 × their median absolute deviation and a noise floor (a usual window varies
//! by at least [`NOISE_FLOOR`] of itself, and a count by at least its square root). An anomaly
//! needs every gate: a score (excess over spread) at or above the threshold, an excess over the
//! dollar floor (cost) or the minimum volume (requests), a relative excess over the percentage,
//! and at least the minimum volume of requests in the window.
//!
//! Where the store reads the windows is `store::anomalies`; what notifies is `seam::anomalies`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::analytics::money::format_usd;
use crate::analytics::rollup::{Counters, Rollup};

/// A usual window varies by at least this share of itself.
pub const NOISE_FLOOR: f64 = 0.25;
/// Error rates vary by at least this much (2 percentage points).
const ERROR_RATE_FLOOR: f64 = 0.02;
/// An error rate must rise by at least this much (5 percentage points) to count.
const ERROR_RATE_EXCESS: f64 = 0.05;

/// The gates, from the template's parameters (README, "Anomalies").
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Excess over the baseline's spread (robust z-score).
    pub score: f64,
    /// Excess cost over the baseline, micro-USD.
    pub floor_micros: i64,
    /// Excess over the baseline in percent of it.
    pub relative_pct: f64,
    /// Requests the window must hold.
    pub min_requests: u64,
    /// Previous weeks the baseline is made of.
    pub baseline_weeks: usize,
    /// Days an "expected" verdict quiets the same driver.
    pub quiet_days: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            score: 4.0,
            floor_micros: 5_000_000,
            relative_pct: 50.0,
            min_requests: 20,
            baseline_weeks: 4,
            quiet_days: 7,
        }
    }
}

/// What an anomaly is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Cost,
    Requests,
    ErrorRate,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cost => "cost",
            Self::Requests => "requests",
            Self::ErrorRate => "error_rate",
        }
    }

    /// The notification's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Cost => "Unusual spend",
            Self::Requests => "Unusual traffic",
            Self::ErrorRate => "Unusual error rate",
        }
    }
}

/// The window an anomaly was seen in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Hour,
    Day,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// Whose usage: all of the user's, one model's or one endpoint's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Driver {
    All,
    Model { provider: String, model: String },
    Endpoint { endpoint: String },
}

impl Driver {
    /// A stable key of the driver, for ids and the quiet list.
    pub fn key(&self) -> String {
        match self {
            Driver::All => "T".into(),
            Driver::Model { provider, model } => format!("M|{provider}|{model}"),
            Driver::Endpoint { endpoint } => format!("E|{endpoint}"),
        }
    }
}

/// One driver's window and the same window of the previous weeks (newest first).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    pub cost: f64,
    pub requests: f64,
    pub errors: f64,
    pub baseline_cost: Vec<f64>,
    pub baseline_requests: Vec<f64>,
    pub baseline_errors: Vec<f64>,
}

/// A gate passed: the metric, what the window held and what is usual.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Finding {
    pub metric: Metric,
    pub observed: f64,
    pub usual: f64,
    pub score: f64,
}

/// The baseline's median and its robust spread (1.4826 × MAD).
pub fn baseline(values: &[f64]) -> (f64, f64) {
    crate::analytics::forecast::median_mad(values)
        .map(|(m, mad)| (m, 1.4826 * mad))
        .unwrap_or((0.0, 0.0))
}

fn score(observed: f64, usual: f64, spread: f64) -> f64 {
    if spread > 0.0 {
        (observed - usual) / spread
    } else if observed > usual {
        f64::INFINITY
    } else {
        0.0
    }
}

/// The gates on one observation: at most one finding, cost before requests before error rate
/// (a spend spike is also a traffic spike; saying it once is enough).
pub fn judge(o: &Observation, t: &Thresholds) -> Option<Finding> {
    if o.requests < t.min_requests as f64 || o.baseline_cost.is_empty() {
        return None;
    }
    let relative = 1.0 + t.relative_pct / 100.0;
    let (usual_requests, spread_requests) = baseline(&o.baseline_requests);
    // A count varies by at least its square root, and everything by the noise floor.
    let count_noise = usual_requests.max(1.0).sqrt();
    {
        let (usual, spread) = baseline(&o.baseline_cost);
        let per_request = if usual_requests > 0.0 {
            usual / usual_requests
        } else {
            0.0
        };
        let spread = spread
            .max(NOISE_FLOOR * usual)
            .max(per_request * count_noise)
            // A driver with no usual cost is judged against the floor.
            .max(t.floor_micros as f64 / t.score.max(1.0));
        let s = score(o.cost, usual, spread);
        if s >= t.score && o.cost - usual >= t.floor_micros as f64 && o.cost >= usual * relative {
            return Some(Finding {
                metric: Metric::Cost,
                observed: o.cost,
                usual,
                score: s,
            });
        }
    }
    {
        let spread = spread_requests
            .max(NOISE_FLOOR * usual_requests)
            .max(count_noise);
        let s = score(o.requests, usual_requests, spread);
        if s >= t.score
            && o.requests - usual_requests >= t.min_requests as f64
            && o.requests >= usual_requests * relative
            // Traffic that costs nothing worth a floor is not worth a notification either.
            && o.cost - baseline(&o.baseline_cost).0 >= t.floor_micros as f64
        {
            return Some(Finding {
                metric: Metric::Requests,
                observed: o.requests,
                usual: usual_requests,
                score: s,
            });
        }
    }
    let rates: Vec<f64> = o
        .baseline_errors
        .iter()
        .zip(&o.baseline_requests)
        .filter(|(_, r)| **r > 0.0)
        .map(|(e, r)| e / r)
        .collect();
    if !rates.is_empty() {
        let rate = o.errors / o.requests;
        let (usual, spread) = baseline(&rates);
        let binomial = (usual.max(0.01) * (1.0 - usual).max(0.0) / o.requests).sqrt();
        let spread = spread.max(ERROR_RATE_FLOOR).max(binomial);
        let s = score(rate, usual, spread);
        if s >= t.score && rate - usual >= ERROR_RATE_EXCESS && rate >= usual * relative {
            return Some(Finding {
                metric: Metric::ErrorRate,
                observed: rate,
                usual,
                score: s,
            });
        }
    }
    None
}

/// The observation of every driver of `window` (all usage, each model and each endpoint it
/// used) against the same drivers in `baseline` (the same window of previous weeks; a driver
/// absent there counts 0).
pub fn observations(window: &Rollup, baseline: &[Rollup]) -> Vec<(Driver, Observation)> {
    let observe = |of: &dyn Fn(&Rollup) -> Option<Counters>| -> Observation {
        let here = of(window).unwrap_or_default();
        let past: Vec<Counters> = baseline.iter().map(|r| of(r).unwrap_or_default()).collect();
        Observation {
            cost: here.cost_micros as f64,
            requests: here.requests as f64,
            errors: here.errors as f64,
            baseline_cost: past.iter().map(|c| c.cost_micros as f64).collect(),
            baseline_requests: past.iter().map(|c| c.requests as f64).collect(),
            baseline_errors: past.iter().map(|c| c.errors as f64).collect(),
        }
    };
    let mut out = vec![(Driver::All, observe(&|r| Some(r.total)))];
    for (provider, model) in window.models.keys() {
        let key = (provider.clone(), model.clone());
        out.push((
            Driver::Model {
                provider: provider.clone(),
                model: model.clone(),
            },
            observe(&|r| r.models.get(&key).copied()),
        ));
    }
    for endpoint in window.endpoints.keys() {
        out.push((
            Driver::Endpoint {
                endpoint: endpoint.clone(),
            },
            observe(&|r| r.endpoints.get(endpoint).copied()),
        ));
    }
    out
}

/// One driver's finding in a window, before it becomes an anomaly.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub driver: Driver,
    pub finding: Finding,
}

/// What the run reports: per metric, each anomalous model (with the anomalous endpoint of the
/// same metric that rose most, when one did: "gpt-4o on /v1/chat/completions"); else each
/// anomalous endpoint; else all usage. Rollups keep models and endpoints apart, so the endpoint
/// is the one that moved with the model in the same window, not a cross count.
pub fn pick(candidates: &[Candidate]) -> Vec<(Driver, Option<String>, Finding)> {
    let mut out = vec![];
    for metric in [Metric::Cost, Metric::Requests, Metric::ErrorRate] {
        let of = |f: &dyn Fn(&Driver) -> bool| -> Vec<&Candidate> {
            candidates
                .iter()
                .filter(|c| c.finding.metric == metric && f(&c.driver))
                .collect()
        };
        let models = of(&|d| matches!(d, Driver::Model { .. }));
        let endpoints = of(&|d| matches!(d, Driver::Endpoint { .. }));
        let all = of(&|d| matches!(d, Driver::All));
        let top_endpoint = endpoints
            .iter()
            .max_by(|a, b| {
                (a.finding.observed - a.finding.usual)
                    .total_cmp(&(b.finding.observed - b.finding.usual))
            })
            .and_then(|c| match &c.driver {
                Driver::Endpoint { endpoint } => Some(endpoint.clone()),
                _ => None,
            });
        if !models.is_empty() {
            for c in models {
                out.push((c.driver.clone(), top_endpoint.clone(), c.finding));
            }
        } else if !endpoints.is_empty() {
            for c in endpoints {
                out.push((c.driver.clone(), None, c.finding));
            }
        } else if let Some(c) = all.first() {
            out.push((c.driver.clone(), None, c.finding));
        }
    }
    out
}

/// A recorded anomaly, as the store keeps it and the routes show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    pub id: String,
    pub window: Window,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub metric: Metric,
    pub driver: Driver,
    /// For a model: the endpoint that rose with it in the same window.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub observed: f64,
    pub usual: f64,
    pub score: f64,
    pub detected_at: DateTime<Utc>,
    /// "gpt-4o on /v1/chat/completions: $41.20 in the last hour against a usual $3.10"
    pub message: String,
    /// The user's verdict: `true` expected (quiets the driver a while), `false` not.
    #[serde(default)]
    pub expected: Option<bool>,
    #[serde(default)]
    pub verdict_at: Option<DateTime<Utc>>,
}

impl Anomaly {
    /// The anomaly `finding` of `driver` in `window` starting at `start`.
    pub fn new(
        window: Window,
        start: DateTime<Utc>,
        driver: Driver,
        endpoint: Option<String>,
        finding: Finding,
        detected_at: DateTime<Utc>,
    ) -> Anomaly {
        let length = match window {
            Window::Hour => chrono::Duration::hours(1),
            Window::Day => chrono::Duration::days(1),
        };
        Anomaly {
            id: anomaly_id(window, start, finding.metric, &driver),
            window,
            window_start: start,
            window_end: start + length,
            metric: finding.metric,
            message: format!(
                "{}: {}",
                driver_label(&driver, endpoint.as_deref()),
                describe(window, &finding)
            ),
            driver,
            endpoint,
            observed: finding.observed,
            usual: finding.usual,
            // A driver with no usual figure at all scores "infinitely"; JSON has no infinity.
            score: finding.score.min(1e6),
            detected_at,
            expected: None,
            verdict_at: None,
        }
    }

    /// The key of what a verdict quiets: this metric of this driver.
    pub fn quiet_key(&self) -> (String, String) {
        (self.metric.as_str().to_owned(), self.driver.key())
    }
}

/// The anomaly's id: the window's start and a digest of what it is about, so every run that sees
/// the same anomaly names it alike (and its notification job with it). URL-safe.
pub fn anomaly_id(
    window: Window,
    start: chrono::DateTime<chrono::Utc>,
    metric: Metric,
    driver: &Driver,
) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "{}|{}|{}|{}",
        window.as_str(),
        start.to_rfc3339(),
        metric.as_str(),
        driver.key()
    ));
    let digest = h.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{hex}", start.format("%Y%m%dT%H"), window.as_str())
}

/// "gpt-4o on /v1/chat/completions", "/v1/embeddings", "all usage".
pub fn driver_label(driver: &Driver, endpoint: Option<&str>) -> String {
    match (driver, endpoint) {
        (Driver::Model { model, .. }, Some(e)) => format!("{model} on {e}"),
        (Driver::Model { model, .. }, None) => model.clone(),
        (Driver::Endpoint { endpoint }, _) => endpoint.clone(),
        (Driver::All, _) => "All usage".into(),
    }
}

/// "$41.20 in the last hour against a usual $3.10".
pub fn describe(window: Window, f: &Finding) -> String {
    let span = match window {
        Window::Hour => "in the last hour",
        Window::Day => "in the last day",
    };
    match f.metric {
        Metric::Cost => format!(
            "${} {span} against a usual ${}",
            format_usd(f.observed.round() as i64, 2),
            format_usd(f.usual.round() as i64, 2)
        ),
        Metric::Requests => format!(
            "{} requests {span} against a usual {}",
            f.observed.round() as i64,
            f.usual.round() as i64
        ),
        Metric::ErrorRate => format!(
            "error rate {:.1}% {span} against a usual {:.1}%",
            f.observed * 100.0,
            f.usual * 100.0
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(
        cost_usd: f64,
        requests: f64,
        baseline_usd: &[f64],
        baseline_requests: &[f64],
    ) -> Observation {
        Observation {
            cost: cost_usd * 1e6,
            requests,
            errors: 0.0,
            baseline_cost: baseline_usd.iter().map(|v| v * 1e6).collect(),
            baseline_requests: baseline_requests.to_vec(),
            baseline_errors: vec![0.0; baseline_requests.len()],
        }
    }

    #[test]
    fn a_spend_spike_over_every_gate_is_found_with_its_usual_figure() {
        let t = Thresholds::default();
        let f = judge(
            &obs(
                41.20,
                800.0,
                &[3.0, 3.2, 3.1, 2.9],
                &[60.0, 64.0, 62.0, 58.0],
            ),
            &t,
        )
        .unwrap();
        assert_eq!(f.metric, Metric::Cost);
        assert!((f.usual - 3.05e6).abs() < 1.0);
        assert_eq!(
            describe(Window::Hour, &f),
            "$41.20 in the last hour against a usual $3.05"
        );
    }

    #[test]
    fn each_gate_alone_stops_an_alert() {
        let t = Thresholds::default();
        let base = [3.0, 3.2, 3.1, 2.9];
        let reqs = [60.0, 64.0, 62.0, 58.0];
        // Below the dollar floor: $7 against $3.05 is +$3.95.
        assert!(judge(&obs(7.0, 140.0, &base, &reqs), &t).is_none());
        // Below the minimum volume, however expensive.
        assert!(judge(&obs(400.0, 19.0, &base, &reqs), &t).is_none());
        // A big spender's ordinary wobble: +$20 on $100 is under the score and the percentage.
        assert!(judge(
            &obs(120.0, 1200.0, &[100.0, 95.0, 105.0, 98.0], &[1000.0; 4]),
            &t
        )
        .is_none());
        // No baseline at all: nothing to compare with.
        assert!(judge(&obs(400.0, 500.0, &[], &[]), &t).is_none());
    }

    #[test]
    fn one_spike_in_the_baseline_does_not_hide_the_next() {
        let t = Thresholds::default();
        let f = judge(
            &obs(
                60.0,
                1000.0,
                &[3.0, 80.0, 3.1, 2.9],
                &[60.0, 1500.0, 62.0, 58.0],
            ),
            &t,
        );
        assert_eq!(f.map(|f| f.metric), Some(Metric::Cost));
    }

    #[test]
    fn an_error_rate_jump_is_its_own_anomaly() {
        let t = Thresholds::default();
        let mut o = obs(3.0, 200.0, &[3.0, 3.2, 3.1, 2.9], &[200.0; 4]);
        o.errors = 80.0;
        o.baseline_errors = vec![2.0, 4.0, 3.0, 2.0];
        let f = judge(&o, &t).unwrap();
        assert_eq!(f.metric, Metric::ErrorRate);
        assert_eq!(
            describe(Window::Hour, &f),
            "error rate 40.0% in the last hour against a usual 1.2%"
        );
    }

    #[test]
    fn a_model_is_named_with_the_endpoint_that_rose_with_it() {
        let f = Finding {
            metric: Metric::Cost,
            observed: 41.2e6,
            usual: 3.1e6,
            score: 9.0,
        };
        let cands = vec![
            Candidate {
                driver: Driver::All,
                finding: f,
            },
            Candidate {
                driver: Driver::Model {
                    provider: "openai".into(),
                    model: "gpt-4o".into(),
                },
                finding: f,
            },
            Candidate {
                driver: Driver::Endpoint {
                    endpoint: "/v1/chat/completions".into(),
                },
                finding: f,
            },
        ];
        let picked = pick(&cands);
        assert_eq!(picked.len(), 1);
        let (driver, endpoint, _) = &picked[0];
        assert_eq!(
            driver_label(driver, endpoint.as_deref()),
            "gpt-4o on /v1/chat/completions"
        );
    }

    #[test]
    fn ids_are_stable_and_url_safe() {
        let at = "2026-11-24T10:00:00Z".parse().unwrap();
        let d = Driver::Endpoint {
            endpoint: "/v1/chat completions?x".into(),
        };
        let a = anomaly_id(Window::Hour, at, Metric::Cost, &d);
        assert_eq!(a, anomaly_id(Window::Hour, at, Metric::Cost, &d));
        assert_ne!(a, anomaly_id(Window::Day, at, Metric::Cost, &d));
        assert!(a.starts_with("20261124T10-hour-"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn the_corpus_meets_the_targets() {
        let t = Thresholds::default();
        let q = crate::analytics::corpus::anomaly_quality(20, 3, &t);
        assert!(q.recall() >= 0.95, "{q:?}");
        assert!(q.false_alarms_per_user_month <= 0.1, "{q:?}");
        assert_eq!(q.alarms_below_min_volume, 0, "{q:?}");
    }
}
