//! A mergeable latency histogram with logarithmic buckets (the DDSketch idea): bucket `i ≥ 1`
//! holds latencies in (γ^(i−2), γ^(i−1)] ms, bucket 0 holds 0 ms, and a quantile is reported as
//! the bucket's midpoint 2γ^(i−1)/(γ+1), within (γ−1)/(γ+1) = 4.76% of the true value.
//! Histograms add bucket by bucket, so hourly and daily rollups merge exactly.

use std::collections::BTreeMap;

const GAMMA: f64 = 1.1;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    pub buckets: BTreeMap<u16, i64>,
}

pub fn bucket_of(latency_ms: u32) -> u16 {
    if latency_ms == 0 {
        return 0;
    }
    // Nudge down so exact powers of γ land in their own bucket despite float error.
    ((f64::from(latency_ms)).ln() / GAMMA.ln() - 1e-9)
        .ceil()
        .max(0.0) as u16
        + 1
}

fn representative(bucket: u16) -> f64 {
    if bucket == 0 {
        return 0.0;
    }
    2.0 * GAMMA.powi(i32::from(bucket) - 1) / (GAMMA + 1.0)
}

impl Histogram {
    pub fn record(&mut self, latency_ms: u32) {
        *self.buckets.entry(bucket_of(latency_ms)).or_default() += 1;
    }

    pub fn add(&mut self, bucket: u16, count: i64) {
        *self.buckets.entry(bucket).or_default() += count;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (b, c) in &other.buckets {
            self.add(*b, *c);
        }
    }

    pub fn count(&self) -> i64 {
        self.buckets.values().sum()
    }

    /// The nearest-rank `q` quantile (0 < q ≤ 1) in ms, or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as i64).clamp(1, n);
        let mut seen = 0;
        for (b, c) in &self.buckets {
            seen += c;
            if seen >= rank {
                return Some(representative(*b));
            }
        }
        self.buckets.keys().last().map(|b| representative(*b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(values: &mut [u32], q: f64) -> f64 {
        values.sort();
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        f64::from(values[rank - 1])
    }

    #[test]
    fn quantiles_are_within_five_percent_of_the_exact_value() {
        let mut values: Vec<u32> = (0..5000u32).map(|i| 1 + (i * 7919) % 30_000).collect();
        let mut h = Histogram::default();
        values.iter().for_each(|v| h.record(*v));
        for q in [0.5, 0.95, 0.99] {
            let truth = exact(&mut values, q);
            let got = h.quantile(q).unwrap();
            assert!(
                (got - truth).abs() / truth <= 0.05,
                "q{q}: {got} vs {truth}"
            );
        }
    }

    #[test]
    fn every_latency_is_within_five_percent_of_its_bucket_representative() {
        for ms in 1..200_000u32 {
            let r = representative(bucket_of(ms));
            assert!(
                (r - f64::from(ms)).abs() / f64::from(ms) <= 0.0477,
                "{ms} → {r}"
            );
        }
    }

    #[test]
    fn merged_histograms_equal_one_built_from_all_values() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for v in 1..100 {
            if v % 2 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a, all);
    }
}
