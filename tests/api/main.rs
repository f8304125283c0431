//! The integration tests, one crate (one link instead of one per file): every route and consumer
//! of template.yaml called in-process against DynamoDB Local and moto, as `make dev` serves them.
//! `helpers` holds the typed client and the fixtures they share.

mod helpers;

mod alert_rules;
mod analytics;
mod anomalies;
mod attribution;
mod budgets;
mod build;
mod contract;
mod data_lifecycle;
mod digests;
mod email_delivery;
mod email_feedback;
mod forecast;
mod identity;
mod ingest;
mod local_runner;
mod low_credits;
mod notification_dispatch;
mod notification_events;
mod notification_expiry;
mod notification_settings;
mod notifications_counting;
mod notifications_inbox;
mod portal;
mod queue_poller;
mod report;
mod report_emails;
mod secrets;
mod template;
mod time_zones;
mod unread_count;
mod unread_count_polling;
mod usage_consumer;
mod webhook_controls;
mod webhook_delivery;
