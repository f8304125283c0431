//! `POST/GET /api/v1/webhooks`, `DELETE /api/v1/webhooks/{id}`: a user's webhook endpoints.
//! The signing secret is shown once, in the answer to the POST.

use chrono::Utc;
use http::StatusCode;
use lambda_http::Request;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::notifications::channels::webhook;
use crate::notifications::notification::timestamp;
use crate::notifications::store;
use crate::notifications::store::accounts::{Accounts, CreateEndpoint, Endpoint};
use crate::platform::app::App;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{
    authenticate, json, no_content, object_body, path_param, request_subject, HttpResponse, Params,
};

const MAX_BODY_BYTES: usize = 8 * 1024;
const MAX_DESCRIPTION_CHARS: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Serialize)]
struct EndpointView {
    id: String,
    url: String,
    description: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: String,
    /// Only in the answer to the creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

fn view(e: &Endpoint, with_secret: bool) -> EndpointView {
    EndpointView {
        id: e.id.clone(),
        url: e.url.clone(),
        description: e.description.clone(),
        enabled: e.enabled,
        disabled_reason: e.disabled_reason.clone(),
        created_at: timestamp(e.created_at),
        secret: with_secret.then(|| e.secret.clone()),
    }
}

http_handler!(
    /// `POST /api/v1/webhooks` — 201 with the endpoint and its `whsec_` secret.
    create => post_webhook
);

async fn post_webhook(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let body: CreateBody = object_body(req, MAX_BODY_BYTES)?;
    let allow_private = app.config().notifications.webhook_allow_private_targets;
    let url = webhook::parse_url(&body.url, allow_private)
        .map_err(|e| ApiError::invalid("url", e.to_string()))?;
    let description = match body.description {
        None => None,
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => {
            return Err(ApiError::invalid(
                "description",
                format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
            ))
        }
        Some(d) if d.chars().any(char::is_control) => {
            return Err(ApiError::invalid(
                "description",
                "description must not contain control characters",
            ))
        }
        Some(d) => Some(d),
    };
    let secret = webhook::generate_secret()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("generating a secret: {e}")))?;
    let endpoint = Endpoint {
        id: Endpoint::new_id(),
        user_id: caller.user_id.clone(),
        url: url.to_string(),
        secret,
        description,
        enabled: true,
        disabled_reason: None,
        created_at: Utc::now(),
    };
    match store::accounts(app)
        .await?
        .create_endpoint(&endpoint)
        .await?
    {
        CreateEndpoint::Created => json(app, StatusCode::CREATED, &view(&endpoint, true)),
        CreateEndpoint::LimitReached => Err(ApiError::Conflict(format!(
            "a user may have at most {} webhook endpoints; delete one first",
            Accounts::MAX_ENDPOINTS
        ))),
    }
}

http_handler!(
    /// `GET /api/v1/webhooks` — the caller's endpoints, without secrets.
    list => list_webhooks
);

async fn list_webhooks(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = request_subject(app, req)?;
    let endpoints = store::accounts(app).await?.endpoints(&user).await?;
    let views: Vec<EndpointView> = endpoints.iter().map(|e| view(e, false)).collect();
    json(
        app,
        StatusCode::OK,
        &json!({"total": views.len(), "webhooks": views}),
    )
}

http_handler!(
    /// `DELETE /api/v1/webhooks/{id}` — 204.
    delete => delete_webhook
);

async fn delete_webhook(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let id = path_param(req, "id")?;
    if !Endpoint::is_id(&id) {
        return Err(ApiError::invalid(
            "id",
            "id must be a webhook endpoint id (wh_ and 32 hex digits)",
        ));
    }
    if store::accounts(app)
        .await?
        .delete_endpoint(&caller.user_id, &id)
        .await?
    {
        Ok(no_content(app))
    } else {
        Err(ApiError::NotFound("webhook endpoint not found".into()))
    }
}
