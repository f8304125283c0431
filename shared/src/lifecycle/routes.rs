//! `DELETE /api/v1/me/data`, `GET /api/v1/me/data/erasure`, `GET /api/v1/me/data/export`: a user
//! (or an admin for any user, with `user_id=`) erases or exports everything held about them.

use http::StatusCode;
use lambda_http::Request;

use crate::lifecycle::{erase, export};
use crate::platform::app::App;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{authenticate, json, HttpResponse, Params};

http_handler!(
    /// `DELETE /api/v1/me/data` — 202 with the erasure (its id, `status`, `phase`); repeating it
    /// while the erase runs answers the same erasure.
    erase_data => delete_data
);

async fn delete_data(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    let params = Params::parse(req, &["user_id"])?;
    let user = params.target_user(&caller)?;
    let erasure = erase::start(app, &user, caller.user_id.as_str()).await?;
    let mut body = erasure.view();
    body["status_url"] = serde_json::json!("/api/v1/me/data/erasure");
    json(app, StatusCode::ACCEPTED, &body)
}

http_handler!(
    /// `GET /api/v1/me/data/erasure` — the latest erasure: `running` with its phase, or `done`
    /// with what it removed.
    erasure_status => get_erasure
);

async fn get_erasure(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    let params = Params::parse(req, &["user_id"])?;
    let user = params.target_user(&caller)?;
    match erase::latest(app, &user).await? {
        Some(e) => json(app, StatusCode::OK, &e.view()),
        None => Err(ApiError::NotFound(
            "no erasure was requested for this user".into(),
        )),
    }
}

http_handler!(
    /// `GET /api/v1/me/data/export` — everything held about the user; `part` and `cursor`
    /// continue one list.
    export_data => get_export
);

async fn get_export(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    let params = Params::parse(req, &["user_id", "part", "cursor"])?;
    let user = params.target_user(&caller)?;
    let body = match (params.get("part"), params.get("cursor")) {
        (None, None) => export::document(app, &user).await?,
        (part, Some(raw)) => {
            let (p, after) = export::open(app, &user, raw)?;
            if part.is_some_and(|name| export::Part::parse(name) != Some(p)) {
                return Err(ApiError::invalid(
                    "part",
                    "part does not match the cursor; send the cursor alone",
                ));
            }
            export::page(app, &user, p, Some(after)).await?
        }
        (Some(name), None) => {
            let p = export::Part::parse(name).ok_or_else(|| {
                ApiError::invalid(
                    "part",
                    format!(
                        "part must be usage_events, notifications or alert_history, not {name:?}"
                    ),
                )
            })?;
            export::page(app, &user, p, None).await?
        }
    };
    json(app, StatusCode::OK, &body)
}
