//! Forecasts of a daily series (cost, credits, requests or a budget's measure), in the user's
//! local days. Pure arithmetic: the route reads the rollups and hands over the days.
//!
//! The method, robust to a single spike and aware of weekdays:
//! 1. weekday factors: each day divided by the mean of the week centred on it, the median of
//!    those ratios per weekday, normalised to average 1 (needs two weeks, else all 1);
//! 2. level and trend: the deseasonalised last 28 days; the trend is their Theil–Sen slope (the
//!    median of pairwise slopes, so one spike cannot tilt it; needs two weeks, else 0), the level
//!    the median of the detrended values;
//! 3. a day ahead is (level + trend × days ahead) × its weekday factor, never below 0;
//! 4. the 80% band of a sum over the days left combines the robust spread of the residuals
//!    (1.4826 × their median absolute deviation) as day-to-day noise, the uncertainty of the
//!    level and of the trend, and a floor for what no history shows; fewer than 7 days of
//!    history doubles it (at least ±50%) and says `low`.

use chrono::{Datelike, NaiveDate};

/// Days of history a forecast looks at (eight weeks).
pub const LOOKBACK_DAYS: i64 = 56;
/// Days the level and trend are fitted on.
const LEVEL_DAYS: usize = 28;
/// History below which the forecast is `low` confidence and its band wide.
pub const MIN_DAYS: usize = 7;
/// History from which weekday factors and a trend are fitted.
const SEASONAL_DAYS: usize = 14;
/// History from which a forecast is `high` confidence.
const HIGH_DAYS: usize = 28;
/// z of a two-sided 80% normal interval.
const Z80: f64 = 1.2816;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// A fitted series: what a future day is expected to hold, and how sure that is.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Complete days of history the fit used (from the first day with data).
    pub history_days: usize,
    /// Multiplier of each weekday, Monday first; average 1.
    pub factors: [f64; 7],
    /// Deseasonalised level at the last history day.
    pub level: f64,
    /// Change of the level per day.
    pub slope: f64,
    /// The date of the last history day (yesterday).
    pub last: NaiveDate,
    /// Robust relative spread of one day around the fit.
    pub noise: f64,
    /// The mean excess of the days above the fit by more than two spreads (spikes): it widens
    /// the band upwards only, so one spike never moves the expected value.
    pub upside: f64,
    pub confidence: Confidence,
}

/// A forecast sum: the expected value and its 80% band.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Projection {
    pub expected: f64,
    pub low: f64,
    pub high: f64,
}

impl Projection {
    pub fn zero() -> Self {
        Projection {
            expected: 0.0,
            low: 0.0,
            high: 0.0,
        }
    }

    /// `known` (already happened) plus this projection of the rest.
    pub fn after(self, known: f64) -> Self {
        Projection {
            expected: known + self.expected,
            low: known + self.low,
            high: known + self.high,
        }
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// The median of `values` and their median absolute deviation from it.
pub fn median_mad(values: &[f64]) -> Option<(f64, f64)> {
    let m = median(&mut values.to_vec())?;
    let mut dev: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    Some((m, median(&mut dev).unwrap_or(0.0)))
}

fn weekday_index(d: NaiveDate) -> usize {
    d.weekday().num_days_from_monday() as usize
}

/// Weekday factors: each day divided by the mean of the 7 days centred on it (which a steady
/// trend does not bias), the median of those ratios per weekday (which one spike does not move),
/// normalised to average 1.
fn weekday_factors(days: &[(NaiveDate, f64)]) -> [f64; 7] {
    let mut ratios: [Vec<f64>; 7] = Default::default();
    for (i, window) in days.windows(7).enumerate() {
        let mean = window.iter().map(|d| d.1).sum::<f64>() / 7.0;
        if mean <= 0.0 {
            continue;
        }
        let (date, v) = days[i + 3];
        ratios[weekday_index(date)].push(v / mean);
    }
    let mut factors = [1.0; 7];
    for (w, r) in ratios.iter_mut().enumerate() {
        if let Some(m) = median(r) {
            factors[w] = m;
        }
    }
    let mean = factors.iter().sum::<f64>() / 7.0;
    if mean > 0.0 {
        for f in &mut factors {
            *f /= mean;
        }
        factors
    } else {
        [1.0; 7]
    }
}

/// The median of the slopes between every pair of points (Theil–Sen).
fn theil_sen(points: &[(f64, f64)]) -> f64 {
    let mut slopes = vec![];
    for (i, a) in points.iter().enumerate() {
        for b in &points[i + 1..] {
            if b.0 != a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    median(&mut slopes).unwrap_or(0.0)
}

/// Fits the complete local days `history` (oldest first, consecutive, the last one yesterday).
/// Days before the first one with data do not count as history: the user had not started.
/// `today` is today's value so far and `elapsed` the share of today it covers (0..=1): with no
/// complete day at all, today's pace is the only evidence there is.
pub fn fit(history: &[(NaiveDate, f64)], today: (NaiveDate, f64, f64)) -> Fit {
    let (today_date, today_so_far, elapsed) = today;
    let last = today_date.pred_opt().unwrap_or(today_date);
    let start = history.iter().position(|d| d.1 != 0.0);
    let days: &[(NaiveDate, f64)] = match start {
        Some(i) => &history[i..],
        None => &[],
    };
    let n = days.len();
    if n == 0 {
        // Only today so far: its pace, with a band as wide as it is honest to be.
        let pace = if today_so_far > 0.0 && elapsed > 0.0 {
            today_so_far / elapsed.max(1.0 / 24.0)
        } else {
            0.0
        };
        return Fit {
            history_days: 0,
            factors: [1.0; 7],
            level: pace,
            slope: 0.0,
            last,
            noise: 1.0,
            upside: 0.0,
            confidence: Confidence::Low,
        };
    }
    let factors = if n >= SEASONAL_DAYS {
        weekday_factors(days)
    } else {
        [1.0; 7]
    };
    let recent = &days[n.saturating_sub(LEVEL_DAYS)..];
    // Deseasonalised points (days before the last one, the last at 0).
    let points: Vec<(f64, f64)> = recent
        .iter()
        .filter_map(|(date, v)| {
            let f = factors[weekday_index(*date)];
            let t = (*date - last).num_days() as f64;
            (f > 0.0).then_some((t, v / f))
        })
        .collect();
    let slope = if n >= SEASONAL_DAYS {
        theil_sen(&points)
    } else {
        0.0
    };
    let mut detrended: Vec<f64> = points.iter().map(|(t, x)| x - slope * t).collect();
    let level = median(&mut detrended).unwrap_or(0.0).max(0.0);
    // Relative residuals of the recent days around the fit.
    let residuals: Vec<f64> = recent
        .iter()
        .filter_map(|(date, v)| {
            let t = (*date - last).num_days() as f64;
            let fitted = (level + slope * t) * factors[weekday_index(*date)];
            (fitted > 0.0).then(|| v / fitted - 1.0)
        })
        .collect();
    let noise = match median_mad(&residuals) {
        Some((_, mad)) if residuals.len() >= 3 => 1.4826 * mad,
        _ => 0.5,
    };
    let upside = residuals
        .iter()
        .map(|r| (r - 2.0 * noise).max(0.0))
        .sum::<f64>()
        / residuals.len().max(1) as f64;
    let confidence = if n < MIN_DAYS {
        Confidence::Low
    } else if n < HIGH_DAYS {
        Confidence::Medium
    } else {
        Confidence::High
    };
    Fit {
        history_days: n,
        factors,
        level,
        slope,
        last,
        noise,
        upside,
        confidence,
    }
}

impl Fit {
    /// The expected value of local day `date` (after the history).
    pub fn day(&self, date: NaiveDate) -> f64 {
        let ahead = (date - self.last).num_days() as f64;
        ((self.level + self.slope * ahead) * self.factors[weekday_index(date)]).max(0.0)
    }

    /// The expected sum over `days`, each `(date, share of the day still to come)`, with its
    /// 80% band; the band never goes below 0.
    pub fn sum(&self, days: &[(NaiveDate, f64)]) -> Projection {
        let expected: f64 = days.iter().map(|(d, share)| self.day(*d) * share).sum();
        if expected <= 0.0 {
            return Projection::zero();
        }
        let span: f64 = days.iter().map(|(_, share)| share).sum::<f64>().max(1.0);
        let n = self.history_days.clamp(1, LEVEL_DAYS) as f64;
        // Day-to-day noise averages out over the days; the level's error does not.
        let daily = self.noise / span.sqrt();
        let level = 1.25 * self.noise / n.sqrt();
        // Theil–Sen slope error, relative, times how far ahead the days lie on average.
        let ahead = days
            .iter()
            .map(|(d, share)| (*d - self.last).num_days() as f64 * share)
            .sum::<f64>()
            / span;
        let trend = if self.slope != 0.0 {
            self.noise * (12.0 / (n * n * n)).sqrt() * ahead
        } else {
            0.0
        };
        // What no history shows (a new project, a price change) grows with the horizon.
        let floor = 0.03 + 0.0015 * span;
        let mut spread = (daily * daily + level * level + trend * trend + floor * floor).sqrt();
        if self.confidence == Confidence::Low {
            spread = (2.0 * spread).max(0.5);
        }
        let half = Z80 * spread * expected;
        Projection {
            expected,
            low: (expected - half).max(0.0),
            high: expected + half + self.upside * expected,
        }
    }

    /// The first day of `days` on which `start` plus the expected running sum reaches `limit`.
    pub fn reaches(&self, start: f64, limit: f64, days: &[(NaiveDate, f64)]) -> Option<NaiveDate> {
        let mut total = start;
        for (d, share) in days {
            total += self.day(*d) * share;
            if total >= limit {
                return Some(*d);
            }
        }
        None
    }
}

/// The days from `today` (its remaining `share`) to the day before `end`, for [`Fit::sum`].
pub fn days_left(today: NaiveDate, share: f64, end: NaiveDate) -> Vec<(NaiveDate, f64)> {
    let mut out = vec![];
    let mut d = today;
    while d < end {
        out.push((d, if d == today { share } else { 1.0 }));
        match d.succ_opt() {
            Some(next) => d = next,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::corpus::SeriesKind;

    fn date(raw: &str) -> NaiveDate {
        raw.parse().unwrap()
    }

    /// `values` as consecutive days ending the day before `today`.
    fn days(today: NaiveDate, values: &[f64]) -> Vec<(NaiveDate, f64)> {
        let n = values.len() as i64;
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (today - chrono::Duration::days(n - i as i64), *v))
            .collect()
    }

    #[test]
    fn a_flat_series_projects_its_level_with_a_narrow_band() {
        let today = date("2026-11-24");
        let f = fit(&days(today, &[10.0; 56]), (today, 0.0, 0.0));
        assert_eq!(f.confidence, Confidence::High);
        let p = f.sum(&days_left(today, 1.0, date("2026-12-01")));
        assert!((p.expected - 70.0).abs() < 1e-9, "{p:?}");
        assert!(
            p.low < 70.0 && p.high > 70.0 && p.high - p.low < 14.0,
            "{p:?}"
        );
    }

    #[test]
    fn weekends_are_projected_as_weekends() {
        let today = date("2026-11-23"); // a Monday
        let week = [10.0, 10.0, 10.0, 10.0, 10.0, 2.0, 2.0];
        let history: Vec<f64> = week.iter().cycle().take(56).copied().collect();
        let f = fit(&days(today, &history), (today, 0.0, 0.0));
        assert!((f.day(date("2026-11-28")) - 2.0).abs() < 0.01); // Saturday
        assert!((f.day(date("2026-11-25")) - 10.0).abs() < 0.01); // Wednesday
    }

    #[test]
    fn one_spike_moves_neither_the_level_nor_the_weekday_factors() {
        let today = date("2026-11-24");
        let mut history = vec![10.0; 56];
        history[50] = 500.0;
        let f = fit(&days(today, &history), (today, 0.0, 0.0));
        assert!((f.day(today) - 10.0).abs() < 0.01, "{f:?}");
        assert!(f.slope.abs() < 1e-9);
    }

    #[test]
    fn a_steady_trend_is_extrapolated() {
        let today = date("2026-11-24");
        let history: Vec<f64> = (0..56).map(|i| 100.0 + 2.0 * i as f64).collect();
        let f = fit(&days(today, &history), (today, 0.0, 0.0));
        assert!((f.slope - 2.0).abs() < 1e-9);
        assert!((f.day(today) - 212.0).abs() < 1e-6, "{f:?}");
    }

    #[test]
    fn little_history_is_low_confidence_with_a_wide_band() {
        let today = date("2026-11-24");
        let mut history = vec![0.0; 50];
        history.extend([8.0, 12.0, 10.0]);
        let f = fit(&days(today, &history), (today, 0.0, 0.0));
        assert_eq!(f.history_days, 3);
        assert_eq!(f.confidence, Confidence::Low);
        let p = f.sum(&days_left(today, 1.0, date("2026-12-01")));
        assert!((p.expected - 70.0).abs() < 1e-9);
        assert!(p.high - p.expected >= 0.5 * Z80 * 70.0 - 1e-9, "{p:?}");
    }

    #[test]
    fn no_history_at_all_uses_todays_pace_or_zero_and_never_divides_by_zero() {
        let today = date("2026-11-24");
        let empty = fit(&[], (today, 0.0, 0.0));
        let p = empty.sum(&days_left(today, 1.0, date("2026-12-01")));
        assert_eq!(p, Projection::zero());
        let zeros = fit(&days(today, &[0.0; 56]), (today, 0.0, 0.5));
        assert_eq!(
            zeros.sum(&days_left(today, 0.5, date("2026-12-01"))),
            Projection::zero()
        );
        let pace = fit(&[], (today, 6.0, 0.25));
        assert_eq!(pace.level, 24.0);
        assert_eq!(pace.confidence, Confidence::Low);
        let p = pace.sum(&days_left(today, 0.75, date("2026-11-26")));
        assert!((p.expected - 42.0).abs() < 1e-9 && p.low >= 0.0, "{p:?}");
    }

    #[test]
    fn reaches_names_the_first_day_the_running_sum_gets_there() {
        let today = date("2026-11-24");
        let f = fit(&days(today, &[10.0; 56]), (today, 0.0, 0.0));
        let left = days_left(today, 1.0, date("2026-12-01"));
        assert_eq!(f.reaches(75.0, 100.0, &left), Some(date("2026-11-26")));
        assert_eq!(f.reaches(0.0, 1000.0, &left), None);
    }

    #[test]
    fn the_seasonal_corpus_is_forecast_within_ten_percent_from_day_ten() {
        let q = crate::analytics::corpus::forecast_quality(SeriesKind::Seasonal, 60, 7);
        assert!(q.mape_day10 <= 0.10, "{q:?}");
        assert!(q.mape_day20 <= q.mape_day10 + 0.02, "{q:?}");
        assert!((0.70..=0.90).contains(&q.coverage_day10), "{q:?}");
    }
}
