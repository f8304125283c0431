//! Every Lambda function of `template.yaml`, by the binary name the template gives it
//! (`BuildProperties.Binary`): the binaries, the local runner and tests find handlers here.

use crate::analytics::consumer;
use crate::analytics::routes::{self as analytics, alerts, anomalies, budgets, forecast, ingest};
use crate::lifecycle;
use crate::notifications::channels::{email, webhook};
use crate::notifications::dispatcher;
use crate::notifications::routes::{inbox, preferences, unsubscribe, webhooks};
use crate::platform::handler::{HttpHandler, ScheduleHandler, SqsHandler, StreamHandler};
use crate::portal::{openapi, page, tokens};
use crate::seam::alert_rules;
use crate::seam::anomalies as seam_anomalies;

#[derive(Clone, Copy)]
pub enum Handler {
    Http(HttpHandler),
    Sqs(SqsHandler),
    Schedule(ScheduleHandler),
    Stream(StreamHandler),
}

/// Every function, by the binary name `template.yaml` gives it (`BuildProperties.Binary`).
pub const FUNCTIONS: &[(&str, Handler)] = &[
    ("unread-count", Handler::Http(inbox::unread_count)),
    // ---- analytics
    ("usage-ingest", Handler::Http(ingest::post_usage_events)),
    ("usage-consumer", Handler::Sqs(consumer::usage_consumer)),
    ("analytics-summary", Handler::Http(analytics::summary)),
    ("analytics-report", Handler::Http(analytics::report::report)),
    (
        "analytics-time-series",
        Handler::Http(analytics::time_series),
    ),
    ("analytics-providers", Handler::Http(analytics::providers)),
    ("analytics-top-models", Handler::Http(analytics::top_models)),
    ("analytics-endpoints", Handler::Http(analytics::endpoints)),
    ("analytics-breakdown", Handler::Http(analytics::breakdown)),
    (
        "analytics-performance",
        Handler::Http(analytics::performance),
    ),
    ("analytics-export-csv", Handler::Http(analytics::export_csv)),
    (
        "analytics-export-json",
        Handler::Http(analytics::export_json),
    ),
    (
        "admin-analytics-overview",
        Handler::Http(analytics::admin_overview),
    ),
    (
        "admin-analytics-top-users",
        Handler::Http(analytics::admin_top_users),
    ),
    ("analytics-forecast", Handler::Http(forecast::forecast)),
    ("analytics-anomalies", Handler::Http(anomalies::list)),
    ("anomaly-put", Handler::Http(anomalies::put)),
    (
        "anomaly-scan",
        Handler::Schedule(seam_anomalies::anomaly_scan),
    ),
    (
        "anomaly-worker",
        Handler::Sqs(seam_anomalies::anomaly_worker),
    ),
    ("budgets-list", Handler::Http(budgets::list)),
    ("budget-put", Handler::Http(budgets::put)),
    ("budget-delete", Handler::Http(budgets::delete)),
    ("budget-get", Handler::Http(budgets::get)),
    ("budget-preview", Handler::Http(budgets::preview)),
    ("alert-rules-list", Handler::Http(alerts::list_rules)),
    ("alert-rule-put", Handler::Http(alerts::put_rule)),
    ("alert-rule-delete", Handler::Http(alerts::delete_rule)),
    ("alert-rule-preview", Handler::Http(alerts::preview_rule)),
    ("alerts-history", Handler::Http(alerts::history)),
    // ---- report emails (the seam)
    (
        "report-schedule",
        Handler::Schedule(crate::seam::reports::schedule),
    ),
    ("report-sender", Handler::Sqs(crate::seam::reports::sender)),
    // ---- alerts (the seam)
    (
        "alert-rules-schedule",
        Handler::Schedule(alert_rules::schedule),
    ),
    (
        "alert-rules-evaluator",
        Handler::Sqs(alert_rules::evaluator),
    ),
    // ---- a user's data (both halves)
    ("data-erase", Handler::Http(lifecycle::routes::erase_data)),
    (
        "data-erasure",
        Handler::Http(lifecycle::routes::erasure_status),
    ),
    ("data-export", Handler::Http(lifecycle::routes::export_data)),
    ("data-eraser", Handler::Sqs(lifecycle::erase::eraser)),
    // ---- notifications
    ("notifications-list", Handler::Http(inbox::list)),
    ("notifications-create", Handler::Http(inbox::create)),
    ("notification-read", Handler::Http(inbox::mark_read)),
    ("notifications-read-all", Handler::Http(inbox::read_all)),
    ("notification-delete", Handler::Http(inbox::delete)),
    ("notification-deliveries", Handler::Http(inbox::deliveries)),
    (
        "notification-flush",
        Handler::Schedule(crate::notifications::flusher::flush),
    ),
    ("preferences-get", Handler::Http(preferences::get)),
    ("preferences-put", Handler::Http(preferences::put)),
    ("unsubscribe-confirm", Handler::Http(unsubscribe::confirm)),
    ("unsubscribe", Handler::Http(unsubscribe::unsubscribe)),
    ("webhooks-create", Handler::Http(webhooks::create)),
    ("webhooks-list", Handler::Http(webhooks::list)),
    ("webhook-delete", Handler::Http(webhooks::delete)),
    ("webhook-update", Handler::Http(webhooks::update)),
    (
        "webhook-rotate-secret",
        Handler::Http(webhooks::rotate_secret),
    ),
    ("webhook-test", Handler::Http(webhooks::test)),
    ("webhook-resend", Handler::Http(webhooks::resend)),
    (
        "notification-dispatcher",
        Handler::Sqs(dispatcher::dispatcher),
    ),
    ("email-sender", Handler::Sqs(email::sender::email_sender)),
    (
        "email-feedback",
        Handler::Sqs(email::feedback::email_feedback),
    ),
    (
        "notification-expiry",
        Handler::Stream(crate::notifications::expiry::expiry),
    ),
    (
        "webhook-sender",
        Handler::Sqs(webhook::sender::webhook_sender),
    ),
    // ---- end notifications
    // ---- portal
    ("portal-page", Handler::Http(page::page)),
    ("portal-asset", Handler::Http(page::asset)),
    ("portal-token", Handler::Http(tokens::mint)),
    ("openapi-document", Handler::Http(openapi::document)),
];

/// The handler of the binary `name`.
pub fn by_binary(name: &str) -> Option<Handler> {
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}
