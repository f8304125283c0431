//! Usage analytics: events, exact money, rollups, latency histograms, periods and buckets.

pub mod event;
pub mod histogram;
pub mod money;
pub mod period;
pub mod rollup;
pub mod zone;
