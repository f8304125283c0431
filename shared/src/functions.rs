//! Every Lambda function of `template.yaml`, by the binary name the template gives it
//! (`BuildProperties.Binary`): the binaries, the local runner and tests find handlers here.

use crate::analytics::consumer;
use crate::analytics::routes::{self as analytics, budgets, ingest};
use crate::notifications::channels::{email, webhook};
use crate::notifications::dispatcher;
use crate::notifications::routes::{inbox, preferences, webhooks};
use crate::platform::handler::{HttpHandler, SqsHandler};
use crate::portal::{openapi, page, tokens};

#[derive(Clone, Copy)]
pub enum Handler {
    Http(HttpHandler),
    Sqs(SqsHandler),
}

/// Every function, by the binary name `template.yaml` gives it (`BuildProperties.Binary`).
pub const FUNCTIONS: &[(&str, Handler)] = &[
    ("unread-count", Handler::Http(inbox::unread_count)),
    // ---- analytics
    ("usage-ingest", Handler::Http(ingest::post_usage_events)),
    ("usage-consumer", Handler::Sqs(consumer::usage_consumer)),
    ("analytics-summary", Handler::Http(analytics::summary)),
    (
        "analytics-time-series",
        Handler::Http(analytics::time_series),
    ),
    ("analytics-providers", Handler::Http(analytics::providers)),
    ("analytics-top-models", Handler::Http(analytics::top_models)),
    ("analytics-endpoints", Handler::Http(analytics::endpoints)),
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
    ("budgets-list", Handler::Http(budgets::list)),
    ("budget-put", Handler::Http(budgets::put)),
    ("budget-delete", Handler::Http(budgets::delete)),
    // ---- notifications
    ("notifications-list", Handler::Http(inbox::list)),
    ("notifications-create", Handler::Http(inbox::create)),
    ("notification-read", Handler::Http(inbox::mark_read)),
    ("notifications-read-all", Handler::Http(inbox::read_all)),
    ("notification-delete", Handler::Http(inbox::delete)),
    ("notification-deliveries", Handler::Http(inbox::deliveries)),
    ("preferences-get", Handler::Http(preferences::get)),
    ("preferences-put", Handler::Http(preferences::put)),
    ("webhooks-create", Handler::Http(webhooks::create)),
    ("webhooks-list", Handler::Http(webhooks::list)),
    ("webhook-delete", Handler::Http(webhooks::delete)),
    (
        "notification-dispatcher",
        Handler::Sqs(dispatcher::dispatcher),
    ),
    ("email-sender", Handler::Sqs(email::sender::email_sender)),
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
