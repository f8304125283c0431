//! The notifications half's HTTP routes, one file per resource.

pub mod inbox;
pub mod preferences;
pub mod unsubscribe;
pub mod webhooks;

use lambda_http::Request;
use uuid::Uuid;

use crate::platform::error::ApiError;
use crate::platform::http::path_param;

/// A notification id from the path: a UUID, or a 400.
pub(crate) fn notification_id(req: &Request) -> Result<Uuid, ApiError> {
    let raw = path_param(req, "id")?;
    Uuid::parse_str(&raw)
        .map_err(|_| ApiError::invalid("id", "id must be a notification id (a UUID)"))
}
