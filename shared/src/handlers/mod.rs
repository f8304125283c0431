//! One handler per Lambda function. The binaries in `functions/` run exactly these, the local
//! runner serves them, and tests call them in-process.

pub mod analytics;
pub(crate) mod common;
pub mod dispatcher;
pub mod email_sender;
pub mod ingest;
pub mod notifications;
pub mod preferences;
pub mod webhook_sender;
pub mod webhooks;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::Request;

use crate::app::App;
use crate::http::HttpResponse;

pub type HttpFuture = Pin<Box<dyn Future<Output = HttpResponse> + Send>>;
/// An API Gateway route's function: the request in, the response out (errors already mapped).
pub type HttpHandler = fn(Arc<App>, Request) -> HttpFuture;

pub type SqsFuture = Pin<Box<dyn Future<Output = SqsBatchResponse> + Send>>;
/// A queue consumer: a batch in, the ids of the messages to retry out.
pub type SqsHandler = fn(Arc<App>, SqsEvent) -> SqsFuture;

#[derive(Clone, Copy)]
pub enum Handler {
    Http(HttpHandler),
    Sqs(SqsHandler),
}

/// Every function, by the binary name `template.yaml` gives it (`BuildProperties.Binary`).
pub const FUNCTIONS: &[(&str, Handler)] = &[
    ("unread-count", Handler::Http(notifications::unread_count)),
    // ---- analytics
    ("usage-ingest", Handler::Http(ingest::post_usage_events)),
    ("usage-consumer", Handler::Sqs(ingest::usage_consumer)),
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
    // ---- notifications
    ("notifications-list", Handler::Http(notifications::list)),
    ("notifications-create", Handler::Http(notifications::create)),
    ("notification-read", Handler::Http(notifications::mark_read)),
    (
        "notifications-read-all",
        Handler::Http(notifications::read_all),
    ),
    ("notification-delete", Handler::Http(notifications::delete)),
    (
        "notification-deliveries",
        Handler::Http(notifications::deliveries),
    ),
    ("preferences-get", Handler::Http(preferences::get)),
    ("preferences-put", Handler::Http(preferences::put)),
    ("webhooks-create", Handler::Http(webhooks::create)),
    ("webhooks-list", Handler::Http(webhooks::list)),
    ("webhook-delete", Handler::Http(webhooks::delete)),
    (
        "notification-dispatcher",
        Handler::Sqs(dispatcher::dispatcher),
    ),
    ("email-sender", Handler::Sqs(email_sender::email_sender)),
    (
        "webhook-sender",
        Handler::Sqs(webhook_sender::webhook_sender),
    ),
    // ---- end notifications
];

/// The handler of the binary `name`.
pub fn by_binary(name: &str) -> Option<Handler> {
    FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

/// Declares `pub fn $name(app, req) -> HttpFuture` running `$body(&app, &req)` and mapping its
/// error to the JSON error response, so each handler body is plain `async fn -> Result`.
macro_rules! http_handler {
    ($(#[$meta:meta])* $name:ident => $body:path) => {
        $(#[$meta])*
        pub fn $name(
            app: std::sync::Arc<$crate::App>,
            req: lambda_http::Request,
        ) -> $crate::handlers::HttpFuture {
            Box::pin(async move {
                let result = $body(&app, &req).await;
                $crate::http::respond(&app, result)
            })
        }
    };
}
pub(crate) use http_handler;
