//! What each binary's `main` calls: logging, the [`App`] built once, then the runtime loop.

use std::convert::Infallible;
use std::str::FromStr;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::{service_fn, Request};
use lambda_runtime::LambdaEvent;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use crate::platform::app::App;
use crate::platform::handler::{HttpHandler, SqsHandler};

/// JSON logs for CloudWatch, filtered by `RUST_LOG` (`info`, or `meterbell=debug,info`).
pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|raw| Targets::from_str(&raw).ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_ansi(false)
        .with_current_span(false)
        .with_span_list(false);
    // A second call (tests, the local runner) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}

/// Runs an API Gateway function.
pub async fn run_http(handler: HttpHandler) -> Result<(), lambda_http::Error> {
    init_tracing();
    let app = App::from_env().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    lambda_http::run(service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handler(app, req).await) }
    }))
    .await
}

/// Runs an SQS consumer that reports partial batch failures.
pub async fn run_sqs(handler: SqsHandler) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let app = App::from_env().inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<SqsEvent>| {
            let app = app.clone();
            async move { Ok::<SqsBatchResponse, Infallible>(handler(app, event.payload).await) }
        },
    ))
    .await
}
