//! A seeded corpus of usage series to measure the forecast and the anomaly detector on: hourly
//! requests and cost with a trend, a weekly and a daily rhythm and noise, and — by kind — known
//! injected spikes or a level shift. The unit tests and `make bench` (`meterbell-dev
//! bench-quality`) both read it, so the figures in the README are the ones the tests hold.

use chrono::{Datelike, Duration, NaiveDate};

use crate::analytics::anomaly::{self, Observation, Thresholds};
use crate::analytics::forecast::{days_left, fit, LOOKBACK_DAYS};

/// The first day of every generated series (a Thursday).
pub const EPOCH: (i32, u32, u32) = (2026, 1, 1);
/// Days of every generated series: two months of history, then four evaluated months.
pub const SERIES_DAYS: usize = 181;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesKind {
    /// Trend, weekly and daily seasonality, noise.
    Seasonal,
    /// The same plus a few single-hour spikes a month.
    Spiky,
    /// The same plus one lasting level shift (×0.5 to ×2).
    Shift,
}

impl SeriesKind {
    pub const ALL: [SeriesKind; 3] = [Self::Seasonal, Self::Spiky, Self::Shift];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seasonal => "seasonal",
            Self::Spiky => "spiky",
            Self::Shift => "level shift",
        }
    }
}

/// SplitMix64: small, fast and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// A count with mean `mean`: Poisson's spread, by its normal approximation.
    pub fn count(&mut self, mean: f64) -> f64 {
        if mean <= 0.0 {
            return 0.0;
        }
        (mean + mean.sqrt() * self.normal()).round().max(0.0)
    }
}

/// One injected spike: the hour and the cost it added (micro-USD) and the requests it added.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spike {
    pub hour: usize,
    pub extra_cost: f64,
    pub extra_requests: f64,
}

/// One generated user: hourly requests and cost (micro-USD) from [`EPOCH`].
#[derive(Clone, Debug)]
pub struct Series {
    pub kind: SeriesKind,
    pub requests: Vec<f64>,
    pub cost: Vec<f64>,
    pub spikes: Vec<Spike>,
}

pub fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(EPOCH.0, EPOCH.1, EPOCH.2).unwrap_or_default()
}

impl Series {
    /// User `seed` of `kind`, `days` long.
    pub fn generate(kind: SeriesKind, seed: u64, days: usize) -> Series {
        let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ kind as u64);
        // $2 to $300 a day, at 0.2 to 5 cents a request.
        let daily_usd = (rng.between(2f64.ln(), 300f64.ln())).exp();
        let unit_micros = rng.between(2_000.0, 50_000.0);
        let trend = rng.between(-0.002, 0.006);
        let weekend = rng.between(0.3, 1.0);
        let day_noise = rng.between(0.04, 0.15);
        let shift = (kind == SeriesKind::Shift).then(|| {
            let factor = if rng.unit() < 0.5 {
                rng.between(0.5, 0.8)
            } else {
                rng.between(1.25, 2.0)
            };
            (rng.between(60.0, days as f64 - 10.0) as usize, factor)
        });
        // Office hours are busier: a share of the day per hour.
        let profile: Vec<f64> = (0..24)
            .map(|h| if (8..18).contains(&h) { 1.3 } else { 0.3 })
            .collect();
        let total: f64 = profile.iter().sum();
        let mut requests = Vec::with_capacity(days * 24);
        let mut cost = Vec::with_capacity(days * 24);
        for day in 0..days {
            let date = epoch() + Duration::days(day as i64);
            let mut level = (1.0 + trend * day as f64).max(0.05);
            if date.weekday().num_days_from_monday() >= 5 {
                level *= weekend;
            }
            if let Some((at, factor)) = shift {
                if day >= at {
                    level *= factor;
                }
            }
            let today = (day_noise * rng.normal()).exp();
            let per_day = daily_usd * 1e6 / unit_micros * level * today;
            for p in &profile {
                let r = rng.count(per_day * p / total);
                let c = r * unit_micros * (0.05 * rng.normal()).exp();
                requests.push(r);
                cost.push(c.round());
            }
        }
        let mut spikes = vec![];
        if kind == SeriesKind::Spiky {
            // About three a month, in any hour, 3× to 20× the usual hour of the day.
            let count = days / 10;
            for _ in 0..count {
                let hour = rng.between(28.0 * 24.0, (days * 24) as f64) as usize;
                let usual = requests.iter().skip(hour % 24).step_by(24).sum::<f64>() / days as f64;
                let extra_requests = (usual * rng.between(2.0, 19.0)).round().max(1.0);
                let extra_cost = (extra_requests * unit_micros).round();
                requests[hour] += extra_requests;
                cost[hour] += extra_cost;
                spikes.push(Spike {
                    hour,
                    extra_cost,
                    extra_requests,
                });
            }
        }
        Series {
            kind,
            requests,
            cost,
            spikes,
        }
    }

    /// Cost per day (micro-USD).
    pub fn daily_cost(&self) -> Vec<f64> {
        self.cost.chunks(24).map(|d| d.iter().sum()).collect()
    }
}

/// Month-end forecast quality over a corpus.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ForecastQuality {
    pub months: usize,
    /// Mean absolute percentage error of the projected month-end cost at the end of day 10 / 20.
    pub mape_day10: f64,
    pub mape_day20: f64,
    /// Share of months whose actual month-end cost lies inside the 80% band, at day 10 / 20.
    pub coverage_day10: f64,
    pub coverage_day20: f64,
}

/// Forecasts every evaluated month of `users` series of `kind` at the end of days 10 and 20.
pub fn forecast_quality(kind: SeriesKind, users: usize, seed: u64) -> ForecastQuality {
    let mut ape = [0.0; 2];
    let mut covered = [0usize; 2];
    let mut months = 0;
    for u in 0..users {
        let series = Series::generate(kind, seed * 1_000_003 + u as u64, SERIES_DAYS);
        let daily = series.daily_cost();
        let date = |i: usize| epoch() + Duration::days(i as i64);
        // Every month starting after the lookback and ending inside the series.
        let mut first = epoch();
        loop {
            first = first
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(first);
            let next = first
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(first);
            let (start, end) = (
                (first - epoch()).num_days() as usize,
                (next - epoch()).num_days() as usize,
            );
            if end > daily.len() {
                break;
            }
            if (start as i64) < LOOKBACK_DAYS {
                continue;
            }
            let actual: f64 = daily[start..end].iter().sum();
            months += 1;
            for (k, checkpoint) in [10usize, 20].iter().enumerate() {
                let today = start + checkpoint;
                let history: Vec<(NaiveDate, f64)> = (today - LOOKBACK_DAYS as usize..today)
                    .map(|i| (date(i), daily[i]))
                    .collect();
                let f = fit(&history, (date(today), 0.0, 0.0));
                let known: f64 = daily[start..today].iter().sum();
                let p = f.sum(&days_left(date(today), 1.0, next)).after(known);
                if actual > 0.0 {
                    ape[k] += (p.expected - actual).abs() / actual;
                }
                if p.low <= actual && actual <= p.high {
                    covered[k] += 1;
                }
            }
        }
    }
    let m = months.max(1) as f64;
    ForecastQuality {
        months,
        mape_day10: ape[0] / m,
        mape_day20: ape[1] / m,
        coverage_day10: covered[0] as f64 / m,
        coverage_day20: covered[1] as f64 / m,
    }
}

/// Anomaly detection quality over a corpus, hour by hour as the scheduled run sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AnomalyQuality {
    /// Injected spikes after the baseline weeks, above the floor or not.
    pub spikes: usize,
    /// Injected spikes whose excess is above the dollar floor and volume above the minimum.
    pub spikes_above_floor: usize,
    pub found: usize,
    /// Alarms on the clean (seasonal) series, per user-month.
    pub false_alarms_per_user_month: f64,
    /// Alarms for users below the minimum volume (always 0 if the gate holds).
    pub alarms_below_min_volume: usize,
    pub user_months: f64,
}

impl AnomalyQuality {
    pub fn recall(&self) -> f64 {
        if self.spikes_above_floor == 0 {
            1.0
        } else {
            self.found as f64 / self.spikes_above_floor as f64
        }
    }
}

/// The observation of hour `h` of `series`: the hour and the same hour of the previous weeks.
fn hour_observation(series: &Series, h: usize, weeks: usize) -> Observation {
    let week = 7 * 24;
    let baseline = |values: &Vec<f64>| -> Vec<f64> {
        (1..=weeks)
            .filter_map(|k| h.checked_sub(k * week).map(|i| values[i]))
            .collect()
    };
    Observation {
        cost: series.cost[h],
        requests: series.requests[h],
        errors: 0.0,
        baseline_cost: baseline(&series.cost),
        baseline_requests: baseline(&series.requests),
        baseline_errors: vec![0.0; weeks.min(h / week)],
    }
}

/// Runs the hourly detector over every hour after the baseline weeks of `users` spiky and
/// `users` clean series, and over `users` series too small to pass the minimum volume.
pub fn anomaly_quality(users: usize, seed: u64, t: &Thresholds) -> AnomalyQuality {
    let mut q = AnomalyQuality::default();
    let start = t.baseline_weeks * 7 * 24;
    for u in 0..users {
        let spiky = Series::generate(SeriesKind::Spiky, seed * 7_919 + u as u64, SERIES_DAYS);
        for s in &spiky.spikes {
            if s.hour < start {
                continue;
            }
            q.spikes += 1;
            let obs = hour_observation(&spiky, s.hour, t.baseline_weeks);
            let (usual, _) = anomaly::baseline(&obs.baseline_cost);
            let above =
                obs.cost - usual >= t.floor_micros as f64 && obs.requests >= t.min_requests as f64;
            if above {
                q.spikes_above_floor += 1;
                if anomaly::judge(&obs, t).is_some() {
                    q.found += 1;
                }
            }
        }
        let clean = Series::generate(SeriesKind::Seasonal, seed * 7_919 + u as u64, SERIES_DAYS);
        for h in start..clean.cost.len() {
            let obs = hour_observation(&clean, h, t.baseline_weeks);
            if anomaly::judge(&obs, t).is_some() {
                q.false_alarms_per_user_month += 1.0;
            }
            if obs.requests < t.min_requests as f64 && anomaly::judge(&obs, t).is_some() {
                q.alarms_below_min_volume += 1;
            }
        }
        q.user_months += (clean.cost.len() - start) as f64 / (24.0 * 30.0);
        // A tiny user: a few requests an hour, with a tenfold hour now and then.
        let mut tiny = Series::generate(SeriesKind::Spiky, seed * 104_729 + u as u64, 70);
        for r in tiny.requests.iter_mut() {
            *r = (*r).min(t.min_requests.saturating_sub(1) as f64);
        }
        for h in start..tiny.cost.len() {
            let mut obs = hour_observation(&tiny, h, t.baseline_weeks);
            obs.cost *= 50.0;
            if anomaly::judge(&obs, t).is_some() {
                q.alarms_below_min_volume += 1;
            }
        }
    }
    if q.user_months > 0.0 {
        q.false_alarms_per_user_month /= q.user_months;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_makes_the_same_series_and_only_spiky_ones_have_spikes() {
        let a = Series::generate(SeriesKind::Spiky, 42, 120);
        let b = Series::generate(SeriesKind::Spiky, 42, 120);
        assert_eq!(a.cost, b.cost);
        assert_eq!(a.spikes.len(), 12);
        for s in &a.spikes {
            assert!(a.cost[s.hour] >= s.extra_cost && s.extra_requests >= 1.0);
        }
        assert!(Series::generate(SeriesKind::Seasonal, 42, 120)
            .spikes
            .is_empty());
        assert_eq!(a.daily_cost().len(), 120);
    }

    #[test]
    fn weekends_are_quieter_than_weekdays_on_average() {
        let s = Series::generate(SeriesKind::Seasonal, 3, 84);
        let daily = s.daily_cost();
        let (mut weekend, mut weekday) = (0.0, 0.0);
        for (i, v) in daily.iter().enumerate() {
            let date = epoch() + Duration::days(i as i64);
            if date.weekday().num_days_from_monday() >= 5 {
                weekend += v / 24.0;
            } else {
                weekday += v / 60.0;
            }
        }
        assert!(weekend <= weekday, "{weekend} vs {weekday}");
    }
}
