//! `GET/PUT /api/v1/notifications/preferences`.

use http::StatusCode;
use lambda_http::Request;

use super::common;
use super::http_handler;
use crate::app::App;
use crate::error::ApiError;
use crate::http::{authenticate, json, HttpResponse, Params};
use crate::preferences::PreferencesUpdate;

const MAX_BODY_BYTES: usize = 4 * 1024;

http_handler!(
    /// `GET /api/v1/notifications/preferences` — admins may add `user_id`.
    get => get_preferences
);

async fn get_preferences(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    let params = Params::parse(req, &["user_id"])?;
    let user = params.target_user(&caller)?;
    let prefs = common::accounts(app).await?.preferences(&user).await?;
    json(app, StatusCode::OK, &prefs.view())
}

http_handler!(
    /// `PUT /api/v1/notifications/preferences` — the fields given replace the stored ones.
    put => put_preferences
);

async fn put_preferences(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let update: PreferencesUpdate = common::object_body(req, MAX_BODY_BYTES)?;
    let update = update
        .check()
        .map_err(|(field, message)| ApiError::invalid(field, message))?;
    let prefs = common::accounts(app)
        .await?
        .update_preferences(&caller.user_id, &update)
        .await?;
    json(app, StatusCode::OK, &prefs.view())
}
