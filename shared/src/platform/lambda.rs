//! What the Lambda binary's `main` calls: logging, the [`App`] built once, then the runtime loop.

use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Request, RequestExt};
use lambda_runtime::LambdaEvent;
use tracing::Instrument;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use crate::platform::app::{App, ClientsAt};
use crate::platform::config::ConfigError;
use crate::platform::handler::{
    HttpHandler, ScheduleHandler, SqsHandler, StreamBatch, StreamHandler, StreamResponse, Tick,
};

/// JSON logs for CloudWatch, filtered by `RUST_LOG` (`info`, or `meterbell=debug,info`).
pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|raw| Targets::from_str(&raw).ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        // The request's span (request id, route, user id) on every line logged inside it.
        .with_current_span(true)
        .with_span_list(false);
    // A second call (tests, the local runner) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}

/// Cold start: the configuration, its secrets and (by default) the AWS clients; a failure is
/// logged with the setting to fix and ends the process (Lambda reports an init error).
async fn start() -> Result<Arc<App>, ConfigError> {
    let app = match ClientsAt::from_env() {
        Ok(clients_at) => App::start(clients_at).await,
        Err(e) => Err(e),
    };
    app.inspect_err(|e| tracing::error!(error = %e, "cannot start"))
}

/// `GET /api/v1/notifications/{id}/read`: the method and the API Gateway resource, so one
/// route's lines group together whatever the ids.
fn route(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => format!(
            "{} {}",
            ctx.http_method,
            ctx.resource_path.as_deref().unwrap_or(req.uri().path())
        ),
        _ => format!("{} {}", req.method(), req.uri().path()),
    }
}

/// Runs an API Gateway function. Each request ends with one log line, `"message":"request"`,
/// with `status` and `duration_ms`, inside a span holding `request_id`, `route` and — once the
/// token verified — `user_id`.
pub async fn run_http(handler: HttpHandler) -> Result<(), lambda_http::Error> {
    init_tracing();
    let app = start().await?;
    lambda_http::run(service_fn(move |req: Request| {
        let app = app.clone();
        async move {
            let started = Instant::now();
            let request_id = req
                .lambda_context_ref()
                .map(|c| c.request_id.clone())
                .unwrap_or_default();
            let span = tracing::info_span!(
                "request",
                request_id = %request_id,
                route = %route(&req),
                user_id = tracing::field::Empty,
            );
            let response = handler(app, req).instrument(span.clone()).await;
            span.in_scope(|| {
                tracing::info!(
                    status = response.status().as_u16(),
                    duration_ms = started.elapsed().as_secs_f64() * 1e3,
                    "request"
                )
            });
            Ok::<_, Infallible>(response)
        }
    }))
    .await
}

/// Runs an SQS consumer that reports partial batch failures. Each batch ends with one log
/// line: request id, queue, messages, failures and duration.
pub async fn run_sqs(handler: SqsHandler) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let app = start().await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<SqsEvent>| {
            let app = app.clone();
            async move {
                let started = Instant::now();
                let messages = event.payload.records.len();
                let queue = event
                    .payload
                    .records
                    .first()
                    .and_then(|r| r.event_source_arn.as_deref())
                    .and_then(|arn| arn.rsplit(':').next())
                    .unwrap_or_default()
                    .to_owned();
                let span = tracing::info_span!(
                    "batch",
                    request_id = %event.context.request_id,
                    route = %format!("sqs {queue}"),
                );
                let response = handler(app, event.payload).instrument(span.clone()).await;
                span.in_scope(|| {
                    tracing::info!(
                        messages,
                        failed = response.batch_item_failures.len(),
                        duration_ms = started.elapsed().as_secs_f64() * 1e3,
                        "batch"
                    )
                });
                Ok::<SqsBatchResponse, Infallible>(response)
            }
        },
    ))
    .await
}

/// The firing an EventBridge scheduled event describes: its `time` (the minute the schedule
/// named, whatever the invocation's delay) and its `id`; an event without a readable `time` is
/// taken as firing now.
pub fn tick_of(event: &serde_json::Value) -> Tick {
    let at = event
        .get("time")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(chrono::Utc::now);
    let id = event
        .get("id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    Tick { at, id }
}

/// Runs a scheduled function. Each firing ends with one log line: request id, the firing's time,
/// the outcome and duration. A failure is returned to Lambda, which retries the asynchronous
/// invocation and then hands the event to the function's dead-letter queue.
pub async fn run_schedule(handler: ScheduleHandler) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let app = start().await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| {
            let app = app.clone();
            async move {
                let started = Instant::now();
                let tick = tick_of(&event.payload);
                let span = tracing::info_span!(
                    "schedule",
                    request_id = %event.context.request_id,
                    route = "schedule",
                    at = %tick.at.to_rfc3339(),
                );
                let result = handler(app, tick).instrument(span.clone()).await;
                span.in_scope(|| match &result {
                    Ok(()) => tracing::info!(
                        duration_ms = started.elapsed().as_secs_f64() * 1e3,
                        "scheduled run"
                    ),
                    Err(e) => tracing::error!(
                        error = %e,
                        duration_ms = started.elapsed().as_secs_f64() * 1e3,
                        "scheduled run failed"
                    ),
                });
                result.map_err(|e| lambda_runtime::Error::from(e.to_string()))
            }
        },
    ))
    .await
}

/// Runs a DynamoDB Streams consumer that reports partial batch failures. Each batch ends with
/// one log line: request id, records, failures and duration.
pub async fn run_stream(handler: StreamHandler) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let app = start().await?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<StreamBatch>| {
            let app = app.clone();
            async move {
                let started = Instant::now();
                let records = event.payload.records.len();
                let span = tracing::info_span!(
                    "stream",
                    request_id = %event.context.request_id,
                    route = "dynamodb stream",
                );
                let response = handler(app, event.payload).instrument(span.clone()).await;
                span.in_scope(|| {
                    tracing::info!(
                        records,
                        failed = response.batch_item_failures.len(),
                        duration_ms = started.elapsed().as_secs_f64() * 1e3,
                        "stream batch"
                    )
                });
                Ok::<StreamResponse, Infallible>(response)
            }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_event_fires_at_its_own_time() {
        let event = serde_json::json!({
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": "2026-11-24T10:02:00Z",
            "detail": {}
        });
        let tick = tick_of(&event);
        assert_eq!(tick.at.to_rfc3339(), "2026-11-24T10:02:00+00:00");
        assert_eq!(tick.id, "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa");
    }
}
