//! Notification inbox routes.

use http::StatusCode;
use lambda_http::Request;
use serde::Serialize;

use super::http_handler;
use crate::app::App;
use crate::config::require;
use crate::error::ApiError;
use crate::http::{authenticate, json, HttpResponse, Params};
use crate::store::dynamodb::Notifications;
use crate::store::NotificationCounts;

#[derive(Serialize)]
struct UnreadCount {
    unread_count: u64,
}

http_handler!(
    /// `GET /api/v1/notifications/unread-count` — `{"unread_count": n}`; admins may add `user_id`.
    unread_count => get_unread_count
);

async fn get_unread_count(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    let params = Params::parse(req, &["user_id"])?;
    let user = params.target_user(&caller)?;
    let table = require(
        &app.config().resources.notifications_table,
        "NOTIFICATIONS_TABLE",
    )?;
    let store = Notifications::new(app.dynamodb().await.clone(), table);
    let unread_count = store.unread_count(&user).await?;
    json(app, StatusCode::OK, &UnreadCount { unread_count })
}
