//! `GET /portal` and `GET /portal/assets/{file}`: the usage portal, a static page whose script
//! reads its token from the URL fragment and calls the API of the same stage. Everything it
//! loads is embedded here, so there is no runtime CDN and no extra deploy step.

use http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::platform::app::App;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{path_param, HttpResponse, Params};

const PAGE: &str = include_str!("../../../portal/index.html");

/// The page's files: name, content type, content. uPlot is vendored from npm (MIT, its licence
/// beside it) by `scripts/portal.sh vendor`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../portal/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../../portal/app.css"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../portal/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("../../../portal/vendor/uPlot.min.css"),
    ),
];

/// Only this page's own files and calls to its own API: no inline script, no other origin.
fn content_security_policy(app: &App) -> String {
    // The platform that embeds the portal is the one allowed to frame it.
    let ancestors = match app.config().cors_allow_origin.as_str() {
        "*" => "*".to_owned(),
        origin => format!("'self' {origin}"),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}"
    )
}

http_handler!(
    /// `GET /portal` — the page; its token comes in the fragment (`#token=...`), never to a server.
    page => get_page
);

async fn get_page(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    Params::parse(req, &[])?;
    // The attributed tag keys go into the page (keys are letters, digits and `_ - .` only, so
    // nothing needs escaping), so the script can group by them without asking first.
    let keys: Vec<&str> = app.config().tag_keys.iter().collect();
    let page = PAGE.replacen(
        r#"<meta name="tag-keys" content="">"#,
        &format!(r#"<meta name="tag-keys" content="{}">"#, keys.join(",")),
        1,
    );
    Ok(static_response(
        app,
        page,
        "text/html; charset=utf-8",
        "no-store",
    ))
}

http_handler!(
    /// `GET /portal/assets/{file}` — the page's script, styles and chart library.
    asset => get_asset
);

async fn get_asset(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    Params::parse(req, &[])?;
    let file = path_param(req, "file")?;
    let (_, content_type, content) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound(format!("the portal has no file {file:?}")))?;
    Ok(static_response(
        app,
        *content,
        content_type,
        "public, max-age=300",
    ))
}

fn static_response(
    app: &App,
    content: impl Into<String>,
    content_type: &'static str,
    cache: &'static str,
) -> HttpResponse {
    let mut response = Response::new(Body::Text(content.into()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(app)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}
