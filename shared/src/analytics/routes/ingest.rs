//! `POST /api/v1/usage/events`: the HTTP door of the ingest path.

use http::StatusCode;
use lambda_http::Request;
use serde_json::Value;

use crate::analytics::ingest::{events_of, ingest, MAX_BODY_BYTES};
use crate::platform::app::App;
use crate::platform::auth::Identity;
use crate::platform::domain::Role;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{authenticate, json, json_body, HttpResponse, Params};

http_handler!(
    /// `POST /api/v1/usage/events` (role service or admin): 1–100 events, each answered
    /// accepted, duplicate or rejected with its reason.
    post_usage_events => post_events
);

async fn post_events(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller: Identity = authenticate(app, req)?;
    caller.require_any(&[Role::Service, Role::Admin])?;
    Params::parse(req, &[])?;
    let body: Value = json_body(req, MAX_BODY_BYTES)?;
    let raw = events_of(body, false).map_err(|m| ApiError::invalid("events", m))?;
    let ingested = ingest(app, &raw).await?;
    json(app, StatusCode::OK, &ingested.report)
}
