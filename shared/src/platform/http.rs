//! HTTP plumbing shared by every route: who is calling, which user's data, strict query
//! parameters, JSON responses, and turning an [`ApiError`] into the contract's error body.

use std::collections::BTreeSet;

use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::platform::app::App;
use crate::platform::auth::Identity;
use crate::platform::domain::UserId;
use crate::platform::error::ApiError;

pub type HttpResponse = Response<Body>;

/// The path parameter `name` (API Gateway has decoded it).
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| ApiError::invalid(name, format!("the path lacks {name}")))
}

/// Whose data a request is about: the caller's own, or — for an admin — the user named by
/// `user_id`, the only query parameter it takes (any other is a 400).
pub fn request_subject(app: &App, req: &Request) -> Result<UserId, ApiError> {
    let caller = authenticate(app, req)?;
    Params::parse(req, &["user_id"])?.target_user(&caller)
}

/// The verified caller of `req`, or a 401.
pub fn authenticate(app: &App, req: &Request) -> Result<Identity, ApiError> {
    let header = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::Unauthorized("Authorization header is not text".into()))?,
        ),
    };
    let identity = app.verifier().verify_header(header)?;
    // The user id of the per-request log line (meterbell::lambda::run_http).
    tracing::Span::current().record("user_id", tracing::field::display(&identity.user_id));
    Ok(identity)
}

/// Query parameters of one route: each known name at most once, unknown names refused, so a
/// misspelt parameter is a 400 rather than a silent default.
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(req: &Request, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        let mut seen = BTreeSet::new();
        if let Some(map) = req.query_string_parameters_ref() {
            for (name, _) in map.iter() {
                if !seen.insert(name.to_owned()) {
                    continue;
                }
                if !allowed.contains(&name) {
                    let hint = if allowed.is_empty() {
                        "this route takes no query parameters".to_owned()
                    } else {
                        format!("known parameters: {}", allowed.join(", "))
                    };
                    return Err(ApiError::invalid(
                        name,
                        format!("unknown parameter {name}; {hint}"),
                    ));
                }
                let values = map.all(name).unwrap_or_default();
                if values.len() > 1 {
                    return Err(ApiError::invalid(
                        name,
                        format!("{name} may be given only once"),
                    ));
                }
                let value = values.first().copied().unwrap_or_default();
                pairs.push((name.to_owned(), value.to_owned()));
            }
        }
        Ok(Params { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A whole number in `min..=max`, or `None` when absent; a 400 naming `name` otherwise.
    pub fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        let value: i64 = raw.trim().parse().map_err(|_| {
            ApiError::invalid(name, format!("{name} must be a whole number, not {raw:?}"))
        })?;
        if value < min || value > max {
            return Err(ApiError::invalid(
                name,
                format!("{name} must be between {min} and {max}"),
            ));
        }
        Ok(Some(value))
    }

    /// `true` or `false`, or `None` when absent.
    /// A count within `min..=max` (`default` when absent), or a 400 naming the parameter.
    pub fn count(
        &self,
        name: &str,
        min: usize,
        max: usize,
        default: usize,
    ) -> Result<usize, ApiError> {
        let value = self.integer(name, min as i64, max as i64)?;
        Ok(value.map_or(default, |v| v as usize))
    }

    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(raw) => Err(ApiError::invalid(
                name,
                format!("{name} must be true or false, not {raw:?}"),
            )),
        }
    }

    /// The user whose data a read concerns: the caller, or for an admin any `user_id`.
    pub fn target_user(&self, caller: &Identity) -> Result<UserId, ApiError> {
        match self.get("user_id") {
            None => Ok(caller.user_id.clone()),
            Some(raw) => {
                let user = UserId::parse(raw)
                    .map_err(|why| ApiError::invalid("user_id", format!("user_id {why}")))?;
                if user != caller.user_id && !caller.is_admin() {
                    return Err(ApiError::Forbidden(
                        "only an admin may read another user's data".into(),
                    ));
                }
                Ok(user)
            }
        }
    }
}

/// The body as JSON of type `T`: 413 over `max_bytes`; 400 naming the offending field for
/// malformed JSON, wrong types and missing fields.
pub fn json_body<T: DeserializeOwned>(req: &Request, max_bytes: usize) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "body must be at most {max_bytes} bytes"
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed_body("a JSON body is required"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || path == "." {
            ApiError::malformed_body(format!("body is not valid JSON for this route: {inner}"))
        } else {
            ApiError::invalid(path.clone(), format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::malformed_body(format!("trailing data after the JSON body: {e}")))?;
    Ok(value)
}

/// A JSON response with the headers every route sends.
/// [`json_body`] for routes whose body is one JSON object: anything else (an array, a number)
/// is a 400, never a struct filled with defaults.
pub fn object_body<T: DeserializeOwned>(req: &Request, max_bytes: usize) -> Result<T, ApiError> {
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

pub fn json<T: Serialize>(
    app: &App,
    status: StatusCode,
    value: &T,
) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_string(value).map_err(|e| ApiError::Unexpected(e.into()))?;
    Ok(with_common_headers(
        app,
        Response::new(Body::Text(body)),
        status,
        "application/json",
    ))
}

/// A small HTML page of our own (no script, no outside resources), under a strict
/// Content-Security-Policy that allows its inline style and its form posting back here only.
pub fn html(app: &App, status: StatusCode, page: String) -> HttpResponse {
    let mut response = with_common_headers(
        app,
        Response::new(Body::Text(page)),
        status,
        "text/html; charset=utf-8",
    );
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response
}

/// 204 No Content.
pub fn no_content(app: &App) -> HttpResponse {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    add_cors(app, &mut response);
    response
}

/// The error body of the README's "API (v1)" section; unexpected errors are logged here, once, with their chain.
pub fn error_response(app: &App, err: &ApiError) -> HttpResponse {
    match err {
        ApiError::Unexpected(inner) => tracing::error!(error = ?inner, "request failed"),
        other => tracing::info!(
            status = other.status().as_u16(),
            code = other.code(),
            "request refused: {other}"
        ),
    }
    with_common_headers(
        app,
        Response::new(Body::Text(err.body())),
        err.status(),
        "application/json",
    )
}

/// Ends a handler: its result or the error mapped to a response.
pub fn respond(app: &App, result: Result<HttpResponse, ApiError>) -> HttpResponse {
    result.unwrap_or_else(|err| error_response(app, &err))
}

fn with_common_headers(
    app: &App,
    mut response: HttpResponse,
    status: StatusCode,
    content_type: &'static str,
) -> HttpResponse {
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Per-user data must not be kept by shared caches.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    add_cors(app, &mut response);
    response
}

// API Gateway answers CORS preflights; proxy-integration responses must carry the header themselves.
fn add_cors(app: &App, response: &mut HttpResponse) {
    if let Ok(origin) = HeaderValue::from_str(&app.config().cors_allow_origin) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
}
