//! The notifications half: the in-app inbox with exact counts, preferences, jobs from upstream
//! and from Meterbell itself, the dispatcher that fans a job out to its channels, and the
//! channels (email through SES, signed webhooks) with their delivery log.

pub mod channels;
pub mod delivery;
pub mod dispatcher;
pub mod expiry;
pub mod flusher;
pub mod jobs;
pub mod notification;
pub mod preferences;
pub mod routes;
pub mod store;
pub mod timing;
pub mod unsubscribe;
pub mod waiting;
