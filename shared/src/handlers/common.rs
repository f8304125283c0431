//! Helpers the notification handlers share: their stores, retention, path and query values.

use lambda_http::{Request, RequestExt};
use uuid::Uuid;

use crate::app::App;
use crate::config::{require, ConfigError};
use crate::error::ApiError;
use crate::http::{json_body, Params};
use crate::store::accounts::Accounts;
use crate::store::notifications::Notifications;

pub(crate) async fn notifications(app: &App) -> Result<Notifications, ConfigError> {
    let table = require(
        &app.config().resources.notifications_table,
        "NOTIFICATIONS_TABLE",
    )?;
    Ok(Notifications::new(app.dynamodb().await.clone(), table))
}

pub(crate) async fn accounts(app: &App) -> Result<Accounts, ConfigError> {
    let table = require(&app.config().resources.accounts_table, "ACCOUNTS_TABLE")?;
    Ok(Accounts::new(app.dynamodb().await.clone(), table))
}

/// The TTL of anything written now (epoch seconds): now plus the retention.
pub(crate) fn expires_at(app: &App) -> i64 {
    (chrono::Utc::now() + chrono::Duration::days(i64::from(app.config().retention_days)))
        .timestamp()
}

/// The path parameter `name` (API Gateway has decoded it).
pub(crate) fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid(name, format!("the path lacks {name}")))
}

/// A notification id from the path: a UUID, or a 400.
pub(crate) fn notification_id(req: &Request) -> Result<Uuid, ApiError> {
    let raw = path_param(req, "id")?;
    Uuid::parse_str(&raw)
        .map_err(|_| ApiError::invalid("id", "id must be a notification id (a UUID)"))
}

/// `true` / `false`, or a 400 naming the parameter.
pub(crate) fn bool_param(params: &Params, name: &str) -> Result<Option<bool>, ApiError> {
    params.boolean(name)
}

/// A whole number within `min..=max`, `default` when absent, or a 400 naming the parameter.
pub(crate) fn int_param(
    params: &Params,
    name: &str,
    min: usize,
    max: usize,
    default: usize,
) -> Result<usize, ApiError> {
    let value = params.integer(name, min as i64, max as i64)?;
    Ok(value.map_or(default, |v| v as usize))
}

/// [`json_body`] for routes whose body is one JSON object: anything else (an array, a number)
/// is a 400, never a struct filled with defaults.
pub(crate) fn object_body<T: serde::de::DeserializeOwned>(
    req: &Request,
    max_bytes: usize,
) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() <= max_bytes {
        if let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            if *first != b'{' {
                return Err(ApiError::malformed_body("the body must be a JSON object"));
            }
        }
    }
    json_body(req, max_bytes)
}
