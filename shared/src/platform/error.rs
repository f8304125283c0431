//! The one place where failures become HTTP statuses and the JSON error body (README, "API"):
//! `{"error": {"code": "...", "message": "...", "field": "..."}}`.
//!
//! Client errors carry a message written for the client. Everything unexpected is logged with
//! its whole chain and answered with a fixed message, so internals never leak.

use http::StatusCode;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed input; `field` names the parameter or body field when there is one.
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// 401: no token, or one that does not verify.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a valid token without the role this needs.
    #[error("{0}")]
    Forbidden(String),
    /// 404: missing, or another user's (never reveal which).
    #[error("{0}")]
    NotFound(String),
    /// 409: conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 413: body over the route's limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 422: well-formed but unacceptable.
    #[error("{message}")]
    Unprocessable {
        message: String,
        field: Option<String>,
    },
    /// 500: a bug or an outage; the chain goes to the log only.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// A 400 for one named parameter or field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "invalid_parameter",
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// A 400 for a body that is not the JSON the route expects.
    pub fn malformed_body(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "malformed_body",
            message: message.into(),
            field: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unprocessable { .. } => "unprocessable",
            ApiError::Unexpected(_) => "internal_error",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::BadRequest { field, .. } | ApiError::Unprocessable { field, .. } => {
                field.as_deref()
            }
            _ => None,
        }
    }

    /// The JSON body sent to the client.
    pub fn body(&self) -> String {
        let message = match self {
            ApiError::Unexpected(_) => "internal error; it has been logged".to_owned(),
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: &message,
                field: self.field(),
            },
        };
        // Serializing two strings and an option cannot fail; the fallback keeps the contract anyway.
        serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal_error","message":"internal error"}}"#.to_owned()
        })
    }
}

impl From<crate::platform::config::ConfigError> for ApiError {
    fn from(err: crate::platform::config::ConfigError) -> Self {
        ApiError::Unexpected(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_parameter_names_its_field() {
        let err = ApiError::invalid("days", "days must be between 1 and 366");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = serde_json::from_str(&err.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "invalid_parameter",
                "message": "days must be between 1 and 366", "field": "days"}})
        );
    }

    #[test]
    fn an_unexpected_error_keeps_its_details_out_of_the_body() {
        let err = ApiError::from(anyhow::anyhow!("table Secret-Table-Name unreachable"));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.body().contains("Secret-Table-Name"));
    }
}
