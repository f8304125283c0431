//! Notification inbox routes, the admin create route and the delivery log.

use http::{header, HeaderValue, StatusCode};
use lambda_http::Request;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::notification_id;
use crate::notifications::channels::Channel;
use crate::notifications::dispatcher::{enqueue_jobs, notify_user};
use crate::notifications::jobs::{Channels, Job, NotificationJob};
use crate::notifications::notification::{NotificationType, NotificationView};
use crate::notifications::store;
use crate::notifications::store::inbox::{ListQuery, MarkRead};
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::cursor;
use crate::platform::domain::Role;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{
    authenticate, json, no_content, object_body, request_subject, HttpResponse, Params,
};

#[derive(Serialize)]
struct UnreadCount {
    unread_count: u64,
}

http_handler!(
    /// `GET /api/v1/notifications/unread-count` — `{"unread_count": n}`; admins may add `user_id`.
    unread_count => get_unread_count
);

async fn get_unread_count(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = request_subject(app, req)?;
    let store = store::inbox(app).await?;
    let unread_count = store.unread_count(&user).await?;
    // The count is the whole body, so it is its own entity tag: a poller that sends it back
    // in If-None-Match gets a bodiless 304 while nothing changed (the same one read).
    let etag = format!("\"unread-{unread_count}\"");
    if if_none_match(req, &etag) {
        return Ok(not_modified(app, &etag));
    }
    let mut response = json(app, StatusCode::OK, &UnreadCount { unread_count })?;
    add_etag(&mut response, &etag);
    Ok(response)
}

/// Whether `If-None-Match` names `etag` (weak or strong) or is `*`.
fn if_none_match(req: &Request, etag: &str) -> bool {
    let Some(value) = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn not_modified(app: &App, etag: &str) -> HttpResponse {
    let mut response = no_content(app);
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    add_etag(&mut response, etag);
    response
}

fn add_etag(response: &mut HttpResponse, etag: &str) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        let headers = response.headers_mut();
        headers.insert(header::ETAG, value);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Cross-origin pollers may read the tag.
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("ETag"),
        );
    }
}

// ---------------------------------------------------------------------------- list

const CURSOR_PURPOSE: &str = "notifications";
const MAX_OFFSET: usize = 10_000;

/// Where the next page starts, and the filters it belongs to.
#[derive(Serialize, Deserialize)]
struct Position {
    after: Uuid,
    is_read: Option<bool>,
    #[serde(rename = "type")]
    kind: Option<NotificationType>,
}

#[derive(Serialize)]
struct ListBody {
    notifications: Vec<NotificationView>,
    total: u64,
    limit: usize,
    offset: usize,
    next_cursor: Option<String>,
}

http_handler!(
    /// `GET /api/v1/notifications` — newest first; `is_read`, `type`, `limit` (1..=100, 50),
    /// `offset` (0..=10000) or `cursor`; admins may add `user_id`.
    list => list_notifications
);

async fn list_notifications(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    let params = Params::parse(
        req,
        &["is_read", "type", "limit", "offset", "cursor", "user_id"],
    )?;
    let user = params.target_user(&caller)?;
    let is_read = params.boolean("is_read")?;
    let kind = params
        .get("type")
        .map(|raw| {
            NotificationType::parse(raw).ok_or_else(|| {
                ApiError::invalid(
                    "type",
                    format!(
                        "type must be {}, not {raw:?}",
                        NotificationType::names("or")
                    ),
                )
            })
        })
        .transpose()?;
    let limit = params.count("limit", 1, 100, 50)?;
    let offset = params.count("offset", 0, MAX_OFFSET, 0)?;
    let after = match params.get("cursor") {
        None => None,
        Some(raw) => {
            if params.get("offset").is_some() {
                return Err(ApiError::invalid(
                    "offset",
                    "offset cannot be combined with cursor; the cursor knows where it is",
                ));
            }
            let position: Position =
                cursor::open(&app.config().cursor_secret, CURSOR_PURPOSE, &user, raw)?;
            if position.is_read != is_read || position.kind != kind {
                return Err(ApiError::invalid(
                    "cursor",
                    "cursor belongs to other filters; repeat is_read and type as they were",
                ));
            }
            Some(position.after)
        }
    };
    let store = store::inbox(app).await?;
    let page = store
        .list(
            &user,
            &ListQuery {
                is_read,
                kind,
                limit,
                offset,
                after,
            },
        )
        .await?;
    let next_cursor = match (page.has_more, page.items.last()) {
        (true, Some(last)) => Some(cursor::seal(
            &app.config().cursor_secret,
            CURSOR_PURPOSE,
            &user,
            &Position {
                after: last.id,
                is_read,
                kind,
            },
        )?),
        _ => None,
    };
    json(
        app,
        StatusCode::OK,
        &ListBody {
            notifications: page.items.iter().map(|n| n.view()).collect(),
            total: page.total,
            limit,
            offset,
            next_cursor,
        },
    )
}

// ---------------------------------------------------------------------------- read, delete

http_handler!(
    /// `PUT /api/v1/notifications/{id}/read`
    mark_read => put_read
);

async fn put_read(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let id = notification_id(req)?;
    let store = store::inbox(app).await?;
    match store.mark_read(&caller.user_id, &id).await? {
        MarkRead::NotFound => Err(ApiError::NotFound("notification not found".into())),
        MarkRead::Marked | MarkRead::AlreadyRead => json(
            app,
            StatusCode::OK,
            &json!({"message": "Notification marked as read"}),
        ),
    }
}

http_handler!(
    /// `PUT /api/v1/notifications/read-all`
    read_all => put_read_all
);

async fn put_read_all(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let store = store::inbox(app).await?;
    let count = store.read_all(&caller.user_id).await?;
    let noun = if count == 1 {
        "notification"
    } else {
        "notifications"
    };
    json(
        app,
        StatusCode::OK,
        &json!({"message": format!("Marked {count} {noun} as read"), "count": count}),
    )
}

http_handler!(
    /// `DELETE /api/v1/notifications/{id}` — 204.
    delete => delete_notification
);

async fn delete_notification(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let id = notification_id(req)?;
    let store = store::inbox(app).await?;
    if store.delete(&caller.user_id, &id).await? {
        Ok(no_content(app))
    } else {
        Err(ApiError::NotFound("notification not found".into()))
    }
}

// ---------------------------------------------------------------------------- deliveries

http_handler!(
    /// `GET /api/v1/notifications/{id}/deliveries` — every email and webhook attempt.
    deliveries => get_deliveries
);

async fn get_deliveries(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = request_subject(app, req)?;
    let id = notification_id(req)?;
    let notifications = store::inbox(app).await?;
    if notifications.get(&user, &id).await?.is_none() {
        return Err(ApiError::NotFound("notification not found".into()));
    }
    let attempts = store::accounts(app).await?.attempts(&user, &id).await?;
    json(
        app,
        StatusCode::OK,
        &json!({
            "notification_id": id.to_string(),
            "deliveries": attempts.iter().map(|a| a.view()).collect::<Vec<_>>(),
        }),
    )
}

// ---------------------------------------------------------------------------- admin create

/// The largest create body: 10,000 user ids fit.
const MAX_CREATE_BYTES: usize = 2 * 1024 * 1024;
const MAX_IDEMPOTENCY_KEY: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user_ids: Option<Vec<String>>,
    #[serde(rename = "type")]
    kind: String,
    title: String,
    message: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    send_email: bool,
    #[serde(default)]
    send_webhook: bool,
}

http_handler!(
    /// `POST /api/v1/notifications` (admin) — for `user_id`: created now, 201 with the
    /// notification; for `user_ids`: queued as notification jobs, 202. An `Idempotency-Key`
    /// header makes a retried request notify once.
    create => post_notification
);

async fn post_notification(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    caller.require_any(&[Role::Admin])?;
    Params::parse(req, &[])?;
    let job_id = match req.headers().get("idempotency-key") {
        None => format!("admin:{}", Uuid::now_v7()),
        Some(value) => {
            let key = value
                .to_str()
                .ok()
                .filter(|k| {
                    !k.is_empty()
                        && k.len() <= MAX_IDEMPOTENCY_KEY
                        && k.chars().all(|c| c.is_ascii_graphic())
                })
                .ok_or_else(|| {
                    ApiError::invalid(
                        "Idempotency-Key",
                        format!(
                            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                        ),
                    )
                })?;
            format!("admin:{key}")
        }
    };
    let body: CreateBody = object_body(req, MAX_CREATE_BYTES)?;
    let single = body.user_id.is_some();
    let channels = Channels::of(&[
        (Channel::Email, body.send_email),
        (Channel::Webhook, body.send_webhook),
    ]);
    let wire = NotificationJob {
        job_id,
        user_id: body.user_id,
        user_ids: body.user_ids,
        kind: body.kind,
        title: body.title,
        message: body.message,
        data: body.data,
        channels: Some(channels.names()),
    };
    let job = Job::validate(wire).map_err(|e| ApiError::invalid(e.field, e.message))?;
    if single {
        let user = job
            .users
            .first()
            .cloned()
            .ok_or_else(|| ApiError::invalid("user_id", "user_id is required"))?;
        let outcome = notify_user(app, &job, &user).await?;
        if !outcome.duplicate {
            return json(app, StatusCode::CREATED, &outcome.notification.view());
        }
        let store = store::inbox(app).await?;
        return match store.get(&user, &outcome.notification.id).await? {
            Some(n) => json(app, StatusCode::OK, &n.view()),
            None => Err(ApiError::Conflict(
                "this Idempotency-Key created a notification that has since been deleted".into(),
            )),
        };
    }
    let queue = require(
        &app.config().resources.notification_jobs_queue_url,
        "NOTIFICATION_JOBS_QUEUE_URL",
    )?;
    let messages = job.split();
    enqueue_jobs(app, queue, &messages).await?;
    json(
        app,
        StatusCode::ACCEPTED,
        &json!({
            "job_id": job.job_id.as_str(),
            "status": "queued",
            "user_count": job.users.len(),
            "messages": messages.len(),
        }),
    )
}
