//! `POST/GET /api/v1/webhooks`, `PUT/DELETE /api/v1/webhooks/{id}`: a user's webhook endpoints,
//! and their controls: `POST .../test` (a signed sample, its result returned), `POST
//! .../rotate-secret` (a new secret, the old one still signing for 24 hours) and `POST
//! .../resend` (a past notification delivered again). A signing secret is shown once, in the
//! answer that creates it.

use chrono::Utc;
use http::StatusCode;
use lambda_http::Request;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::notifications::channels::webhook;
use crate::notifications::channels::webhook::sender::{self, Sent};
use crate::notifications::delivery::WebhookMessage;
use crate::notifications::notification::timestamp;
use crate::notifications::notification::NotificationType;
use crate::notifications::store;
use crate::notifications::store::accounts::{
    Accounts, CreateEndpoint, Endpoint, EndpointChange, Rotated, Rotation,
};
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{
    authenticate, json, no_content, object_body, path_param, request_subject, HttpResponse, Params,
};
use crate::platform::sqs;

const MAX_BODY_BYTES: usize = 8 * 1024;
const MAX_DESCRIPTION_CHARS: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    types: Option<Vec<String>>,
}

/// How long a rotated-out secret keeps signing.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

/// An event filter: 1 or more known notification types, each once.
fn types_of(raw: Vec<String>) -> Result<Vec<NotificationType>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid(
            "types",
            "types must name at least one type; omit it (or send null) for all",
        ));
    }
    let mut out = vec![];
    for t in raw {
        let kind = NotificationType::parse(&t).ok_or_else(|| {
            ApiError::invalid(
                "types",
                format!(
                    "unknown type {t:?}; types are {}",
                    NotificationType::names("and")
                ),
            )
        })?;
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    Ok(out)
}

fn description_of(raw: String) -> Result<String, ApiError> {
    if raw.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::invalid(
            "description",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if raw.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "description",
            "description must not contain control characters",
        ));
    }
    Ok(raw)
}

/// The `{id}` of an endpoint route.
fn endpoint_id(req: &Request) -> Result<String, ApiError> {
    let id = path_param(req, "id")?;
    if Endpoint::is_id(&id) {
        Ok(id)
    } else {
        Err(ApiError::invalid(
            "id",
            "id must be a webhook endpoint id (wh_ and 32 hex digits)",
        ))
    }
}

#[derive(Serialize)]
struct EndpointView {
    id: String,
    url: String,
    description: Option<String>,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: String,
    /// The types it receives; `null`: all.
    types: Option<Vec<&'static str>>,
    /// Failed deliveries in a row.
    failures: i64,
    /// While a rotated-out secret still signs.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_valid_until: Option<String>,
    /// Only in the answers that create a secret.
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
        types: e
            .types
            .as_ref()
            .map(|t| t.iter().map(|k| k.as_str()).collect()),
        failures: e.failures,
        previous_secret_valid_until: e
            .previous_secret
            .as_ref()
            .filter(|r| r.until > Utc::now())
            .map(|r| timestamp(r.until)),
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
    let description = body.description.map(description_of).transpose()?;
    let types = body.types.map(types_of).transpose()?;
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
        types,
        previous_secret: None,
        failures: 0,
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
    let id = endpoint_id(req)?;
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

/// A field a PUT may set to a value, set to `null`, or leave out.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    #[serde(default, deserialize_with = "nullable")]
    types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default)]
    enabled: Option<bool>,
}

http_handler!(
    /// `PUT /api/v1/webhooks/{id}` — changes `types` (the event filter; `null`: all),
    /// `description`, `enabled` (`true` switches a disabled endpoint back on and forgives its
    /// failures); fields left out stay.
    update => put_webhook
);

async fn put_webhook(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let id = endpoint_id(req)?;
    let body: ChangeBody = object_body(req, MAX_BODY_BYTES)?;
    let change = EndpointChange {
        types: body
            .types
            .map(|t| t.map(types_of).transpose())
            .transpose()?,
        description: body
            .description
            .map(|d| d.map(description_of).transpose())
            .transpose()?,
        enabled: body.enabled,
        rotated: None,
    };
    match store::accounts(app)
        .await?
        .change_endpoint(&caller.user_id, &id, &change)
        .await?
    {
        Some(e) => json(app, StatusCode::OK, &view(&e, false)),
        None => Err(ApiError::NotFound("webhook endpoint not found".into())),
    }
}

http_handler!(
    /// `POST /api/v1/webhooks/{id}/rotate-secret` — a new secret, shown once; the old one keeps
    /// signing beside it for 24 hours.
    rotate_secret => post_rotate_secret
);

async fn post_rotate_secret(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let id = endpoint_id(req)?;
    let accounts = store::accounts(app).await?;
    let current = accounts
        .endpoint(&caller.user_id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound("webhook endpoint not found".into()))?;
    let new_secret = webhook::generate_secret()
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("generating a secret: {e}")))?;
    let change = EndpointChange {
        rotated: Some(Rotation {
            new_secret,
            previous: Rotated {
                secret: current.secret,
                until: Utc::now() + chrono::Duration::hours(ROTATION_OVERLAP_HOURS),
            },
        }),
        ..EndpointChange::default()
    };
    match accounts
        .change_endpoint(&caller.user_id, &id, &change)
        .await?
    {
        Some(e) => json(app, StatusCode::OK, &view(&e, true)),
        None => Err(ApiError::NotFound("webhook endpoint not found".into())),
    }
}

http_handler!(
    /// `POST /api/v1/webhooks/{id}/test` — a signed sample event (`webhook.test`) sent now;
    /// the answer says whether it was delivered, the HTTP status and how long it took. Nothing
    /// is queued or logged.
    test => post_test
);

async fn post_test(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let id = endpoint_id(req)?;
    let endpoint = store::accounts(app)
        .await?
        .endpoint(&caller.user_id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound("webhook endpoint not found".into()))?;
    let allow_private = app.config().notifications.webhook_allow_private_targets;
    let url =
        webhook::parse_url(&endpoint.url, allow_private).map_err(|e| ApiError::Unprocessable {
            message: format!("the endpoint's url cannot be delivered to: {e}"),
            field: None,
        })?;
    let msg_id = format!("msg_test_{}", uuid::Uuid::now_v7().hyphenated());
    let body = json!({
        "type": "webhook.test",
        "timestamp": timestamp(Utc::now()),
        "data": {"endpoint_id": endpoint.id, "message": "A test event from Meterbell."},
    })
    .to_string();
    let started = std::time::Instant::now();
    let secrets = endpoint.signing_secrets(Utc::now());
    let sent = sender::send_signed(app, &secrets, url, &msg_id, body)
        .await
        .map_err(ApiError::Unexpected)?;
    let duration_ms = started.elapsed().as_millis() as u64;
    let (delivered, http_status, error) = match sent {
        Sent::Delivered(status) => (true, Some(status), None),
        Sent::Gone => (
            false,
            Some(410),
            Some("the endpoint answered 410 Gone".to_owned()),
        ),
        Sent::Failed { status, why } => (false, status, Some(why)),
        Sent::Refused(why) => (false, None, Some(why)),
    };
    json(
        app,
        StatusCode::OK,
        &json!({"webhook_id": msg_id, "delivered": delivered, "http_status": http_status,
            "error": error, "duration_ms": duration_ms}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResendBody {
    notification_id: String,
}

http_handler!(
    /// `POST /api/v1/webhooks/{id}/resend` — `{"notification_id": ...}`: that notification
    /// delivered to this endpoint again (202, queued; the same `webhook-id` as before, so a
    /// receiver that kept it can tell).
    resend => post_resend
);

async fn post_resend(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let id = endpoint_id(req)?;
    let body: ResendBody = object_body(req, MAX_BODY_BYTES)?;
    let notification_id = uuid::Uuid::parse_str(&body.notification_id).map_err(|_| {
        ApiError::invalid(
            "notification_id",
            "notification_id must be a notification id",
        )
    })?;
    let endpoint = store::accounts(app)
        .await?
        .endpoint(&caller.user_id, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound("webhook endpoint not found".into()))?;
    if !endpoint.enabled {
        return Err(ApiError::Conflict(
            "the endpoint is disabled; switch it on (PUT webhooks/{id} enabled: true) first".into(),
        ));
    }
    // Another user's notification is as absent as a missing one.
    let notification = store::inbox(app)
        .await?
        .get(&caller.user_id, &notification_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("notification not found".into()))?;
    let resend = uuid::Uuid::now_v7().simple().to_string();
    let queue = require(
        &app.config().resources.webhook_queue_url,
        "WEBHOOK_QUEUE_URL",
    )?;
    let message = WebhookMessage {
        endpoint_id: endpoint.id.clone(),
        notification: notification.view(),
        resend: Some(resend.clone()),
    };
    sqs::send_json(app.sqs().await, queue, &[message])
        .await
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    json(
        app,
        StatusCode::ACCEPTED,
        &json!({"queued": true, "resend_id": resend, "endpoint_id": endpoint.id,
            "notification_id": notification_id.hyphenated().to_string()}),
    )
}
