//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of every route, without authentication.
//! The document is `docs/openapi.json`, embedded at build time; the integration tests fail when
//! a route of `template.yaml` is missing from it or a real response does not match it.

use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::platform::app::App;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{HttpResponse, Params};

/// The document as kept in the repository.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

http_handler!(
    /// `GET /api/v1/openapi.json` — no token needed: clients generate code from it.
    document => get_document
);

async fn get_document(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    Params::parse(req, &[])?;
    let mut response = Response::new(Body::Text(DOCUMENT.to_owned()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // The same for everyone and changed only by a deploy.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    if let Ok(origin) = HeaderValue::from_str(&app.config().cors_allow_origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::DOCUMENT;

    #[test]
    fn the_document_is_openapi_3_1_json() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..4]), Some("3.1."));
        assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    }
}
