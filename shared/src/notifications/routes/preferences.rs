//! `GET/PUT /api/v1/notifications/preferences`.

use http::StatusCode;
use lambda_http::Request;

use crate::notifications::preferences::PreferencesUpdate;
use crate::notifications::store;
use crate::platform::app::App;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{
    authenticate, json, object_body, request_subject, HttpResponse, Params,
};
use crate::seam;

const MAX_BODY_BYTES: usize = 4 * 1024;

http_handler!(
    /// `GET /api/v1/notifications/preferences` — admins may add `user_id`.
    get => get_preferences
);

async fn get_preferences(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let user = request_subject(app, req)?;
    let prefs = store::accounts(app).await?.preferences(&user).await?;
    json(app, StatusCode::OK, &prefs.view())
}

http_handler!(
    /// `PUT /api/v1/notifications/preferences` — the fields given replace the stored ones.
    put => put_preferences
);

async fn put_preferences(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &[])?;
    let update: PreferencesUpdate = object_body(req, MAX_BODY_BYTES)?;
    let update = update
        .check()
        .map_err(|(field, message)| ApiError::invalid(field, message))?;
    // The platform's figures are an admin's to read, by email too.
    if update.reports.contains(&("system", true)) && !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "only an admin may receive the platform's report (reports.system)".into(),
        ));
    }
    // The evaluation after ingest reads the threshold beside the credit totals: write it there
    // first, so a failure here leaves the stored preferences unchanged and the PUT retryable.
    if let Some(threshold) = update.low_credit_threshold {
        seam::set_low_credit_threshold(app, &caller.user_id, threshold).await?;
    }
    let prefs = store::accounts(app)
        .await?
        .update_preferences(&caller.user_id, &update)
        .await?;
    json(app, StatusCode::OK, &prefs.view())
}
