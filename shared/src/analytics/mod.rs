//! The analytics half: usage events, exact money, periods and time zones, hourly and daily
//! rollups with mergeable latency histograms, their store, the read routes and the ingest path
//! (HTTP and the usage queue's consumer).

pub mod alert_rule;
pub mod anomaly;
pub mod attribution;
pub mod budget;
pub mod consumer;
pub mod corpus;
pub mod dimension;
pub mod event;
pub mod forecast;
pub mod histogram;
pub mod ingest;
pub mod money;
pub mod period;
pub mod report;
pub mod rollup;
pub mod routes;
pub mod store;
pub mod zone;
