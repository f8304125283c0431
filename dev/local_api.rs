//! The local API runner: serves every route of `template.yaml` by turning each HTTP request into
//! the API Gateway REST proxy event AWS would send, parsing it the way the Lambda runtime does
//! (`lambda_http::request::from_str`) and calling the same handler the function's binary runs.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use anyhow::{anyhow, Result};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use meterbell::functions::{self as handlers, Handler};
use meterbell::platform::handler::HttpHandler;
use meterbell::App;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::stack::LocalStack;

/// API Gateway's own payload limit for REST APIs.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

#[derive(Clone)]
pub struct Route {
    pub method: String,
    /// The template's path, e.g. `/api/v1/notifications/{id}/read` (the event's `resource`).
    pub resource: String,
    segments: Vec<Segment>,
    pub handler: HttpHandler,
    pub app: Arc<App>,
}

impl Route {
    pub fn new(method: &str, resource: &str, handler: HttpHandler, app: Arc<App>) -> Self {
        let segments = resource
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_owned()),
                        None => Segment::Param(name.to_owned()),
                    },
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        Route {
            method: method.to_ascii_uppercase(),
            resource: resource.to_owned(),
            segments,
            handler,
            app,
        }
    }

    /// How specific the resource is, as API Gateway ranks them: at the first segment where two
    /// resources differ, a literal beats a `{param}`, which beats a `{proxy+}` (lower wins).
    fn specificity(&self) -> Vec<u8> {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 0,
                Segment::Param(_) => 1,
                Segment::Greedy(_) => 2,
            })
            .collect()
    }

    /// Path parameters when `path` matches this route's resource, URL-decoded as API Gateway does.
    fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        // API Gateway REST matches segment by segment: an empty segment (`//a`, `/a//b`, `/a/`)
        // matches no resource, so such a path gets the unknown-route answer, not the handler.
        let parts: Vec<&str> = match path.strip_prefix('/')? {
            "" => vec![],
            rest => rest.split('/').collect(),
        };
        if parts.iter().any(|s| s.is_empty()) {
            return None;
        }
        let mut params = BTreeMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(lit) => {
                    if parts.get(i) != Some(&lit.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let raw = parts.get(i)?;
                    params.insert(name.clone(), decode(raw));
                }
                Segment::Greedy(name) => {
                    if parts.len() <= i {
                        return None;
                    }
                    params.insert(name.clone(), decode(&parts[i..].join("/")));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }
}

fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

/// Query-string decoding: `+` is a space, then percent-decoding.
fn decode_query(raw: &str) -> String {
    decode(&raw.replace('+', " "))
}

pub struct Router {
    pub stage: String,
    pub routes: Vec<Route>,
    pub cors: Vec<(String, String)>,
}

impl Router {
    /// Every Api event of every function in the template, with that function's handler.
    pub fn from_stack(stack: &LocalStack) -> Result<Self> {
        let mut routes = vec![];
        for function in &stack.template.functions {
            if function.routes.is_empty() {
                continue;
            }
            let handler = match handlers::by_binary(&function.binary) {
                Some(Handler::Http(h)) => h,
                Some(Handler::Sqs(_) | Handler::Schedule(_) | Handler::Stream(_)) => {
                    return Err(anyhow!(
                        "{}: only an HTTP handler can serve routes",
                        function.logical_id
                    ))
                }
                None => {
                    return Err(anyhow!(
                        "{}: no handler for binary {:?}",
                        function.logical_id,
                        function.binary
                    ))
                }
            };
            let app = stack.app_for(function)?;
            for route in &function.routes {
                routes.push(Route::new(&route.method, &route.path, handler, app.clone()));
            }
        }
        let mut cors = vec![];
        if let Some(api) = stack.template.apis.first() {
            let pairs = [
                ("access-control-allow-origin", &api.cors_allow_origin),
                ("access-control-allow-headers", &api.cors_allow_headers),
                ("access-control-allow-methods", &api.cors_allow_methods),
            ];
            for (name, value) in pairs {
                if let Some(v) = value {
                    // SAM writes these as quoted literals: "'*'".
                    cors.push((
                        name.to_owned(),
                        stack.resolver.resolve(v)?.trim_matches('\'').to_owned(),
                    ));
                }
            }
        }
        Ok(Router {
            stage: stack.stage()?,
            routes,
            cors,
        })
    }

    /// Answers one request as API Gateway and the function would.
    pub async fn handle(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> LocalResponse {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        // Requests may carry the stage as on AWS (/prod/api/...) or omit it as `sam local` does.
        let stage_prefix = format!("/{}", self.stage);
        let path = match path.strip_prefix(&stage_prefix) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                if rest.is_empty() {
                    "/"
                } else {
                    rest
                }
            }
            _ => path,
        };
        let candidates: Vec<(&Route, BTreeMap<String, String>)> = self
            .routes
            .iter()
            .filter_map(|r| r.matches(path).map(|p| (r, p)))
            .collect();
        // API Gateway picks the most specific resource first and only then the method: DELETE on
        // a literal resource that lacks it is refused, not handed to a `{param}` sibling.
        let best = candidates.iter().map(|(r, _)| r.specificity()).min();
        let candidates: Vec<(&Route, BTreeMap<String, String>)> = candidates
            .into_iter()
            .filter(|(r, _)| Some(r.specificity()) == best)
            .collect();
        if method == "OPTIONS" && !candidates.is_empty() && !self.cors.is_empty() {
            return LocalResponse {
                status: 200,
                headers: self.cors.clone(),
                body: Vec::new(),
            };
        }
        let Some((route, params)) = candidates
            .into_iter()
            .find(|(r, _)| r.method == method || r.method == "ANY")
        else {
            // What API Gateway answers for a path or method it does not know.
            return LocalResponse::json(
                403,
                json!({"error": {"code": "request_refused", "message": "Missing Authentication Token"}}),
            );
        };
        let event = proxy_event(
            &self.stage,
            route,
            method,
            path,
            query,
            headers,
            body,
            &params,
        );
        let request = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => {
                return LocalResponse::json(
                    502,
                    json!({"error": {"code": "bad_event", "message": e.to_string()}}),
                )
            }
        };
        let response = (route.handler)(route.app.clone(), request).await;
        LocalResponse::from_lambda(response)
    }
}

/// The REST API proxy event (payload format 1.0) API Gateway builds for this request.
#[allow(clippy::too_many_arguments)]
pub fn proxy_event(
    stage: &str,
    route: &Route,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    params: &BTreeMap<String, String>,
) -> Value {
    let mut single_headers = serde_json::Map::new();
    let mut multi_headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        single_headers.insert(name.clone(), Value::String(value.clone()));
        multi_headers
            .entry(name.clone())
            .or_default()
            .push(value.clone());
    }
    // Repeated keys: the single-value map keeps the last value, the multi-value map keeps all.
    let mut single_query = serde_json::Map::new();
    let mut multi_query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode_query(k), decode_query(v));
        single_query.insert(k.clone(), Value::String(v.clone()));
        multi_query.entry(k).or_default().push(v);
    }
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let textual = content_type.is_empty()
        || content_type.starts_with("text/")
        || content_type.contains("json")
        || content_type.contains("xml")
        || content_type.contains("x-www-form-urlencoded");
    let (body_value, is_base64) = match (body.is_empty(), std::str::from_utf8(body)) {
        (true, _) => (Value::Null, false),
        (false, Ok(text)) if textual => (Value::String(text.to_owned()), false),
        _ => (
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        ),
    };
    let source_ip = "127.0.0.1";
    let now = chrono::Utc::now();
    json!({
        "resource": route.resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": if single_query.is_empty() { Value::Null } else { Value::Object(single_query) },
        "multiValueQueryStringParameters": if multi_query.is_empty() { Value::Null } else { json!(multi_query) },
        "pathParameters": if params.is_empty() { Value::Null } else { json!(params) },
        "stageVariables": Value::Null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": route.resource,
            "httpMethod": method,
            "path": format!("/{stage}{path}"),
            "stage": stage,
            "protocol": "HTTP/1.1",
            "requestId": uuid::Uuid::new_v4().to_string(),
            "requestTime": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "requestTimeEpoch": now.timestamp_millis(),
            "identity": { "sourceIp": source_ip, "userAgent": single_headers_get(headers, "user-agent") },
        },
        "body": body_value,
        "isBase64Encoded": is_base64,
    })
}

fn single_headers_get(headers: &[(String, String)], name: &str) -> Value {
    headers
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| Value::String(v.clone()))
        .unwrap_or(Value::Null)
}

/// A finished response, independent of the HTTP server.
#[derive(Debug)]
pub struct LocalResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LocalResponse {
    fn json(status: u16, body: Value) -> Self {
        LocalResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn from_lambda(response: lambda_http::Response<lambda_http::Body>) -> Self {
        let (parts, body) = response.into_parts();
        let headers = parts
            .headers
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_owned(), v.to_owned()))
            })
            .collect();
        let body = match body {
            lambda_http::Body::Empty => Vec::new(),
            lambda_http::Body::Text(t) => t.into_bytes(),
            lambda_http::Body::Binary(b) => b,
            _ => Vec::new(),
        };
        LocalResponse {
            status: parts.status.as_u16(),
            headers,
            body,
        }
    }
}

/// Serves `router` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, router: Arc<Router>) -> Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let router = router.clone();
                async move { Ok::<_, Infallible>(answer(&router, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

async fn answer(router: &Router, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let method = req.method().as_str().to_owned();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    let local = match Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => {
            router
                .handle(&method, &path_and_query, &headers, &body.to_bytes())
                .await
        }
        Err(_) => LocalResponse::json(
            413,
            json!({"error": {"code": "request_refused", "message": "Request Too Long"}}),
        ),
    };
    tracing::info!(
        method,
        path = path_and_query,
        status = local.status,
        "request"
    );
    let mut response = hyper::Response::new(Full::new(Bytes::from(local.body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(local.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    for (k, v) in local.headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::try_from(k),
            hyper::header::HeaderValue::try_from(v),
        ) {
            response.headers_mut().append(k, v);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An App that needs no emulator: the echo handler below never calls AWS.
    fn offline_app() -> Arc<App> {
        let config = meterbell::Config::from_lookup(|name| match name {
            "JWT_SECRET" | "CURSOR_SECRET" => Some("local-api-unit-test-secret-0123456789".into()),
            _ => None,
        })
        .unwrap();
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        App::new(config, &sdk).unwrap()
    }

    fn echo(_app: Arc<App>, req: lambda_http::Request) -> meterbell::platform::handler::HttpFuture {
        Box::pin(async move {
            use lambda_http::RequestExt;
            let params: BTreeMap<String, String> = req
                .path_parameters()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            lambda_http::Response::builder()
                .status(200)
                .body(lambda_http::Body::Text(json!(params).to_string()))
                .unwrap()
        })
    }

    fn router() -> Router {
        let app = offline_app();
        Router {
            stage: "prod".into(),
            routes: vec![
                Route::new("GET", "/api/v1/analytics/summary", echo, app.clone()),
                Route::new("PUT", "/api/v1/notifications/{id}/read", echo, app),
            ],
            cors: vec![],
        }
    }

    async fn get(router: &Router, method: &str, path: &str) -> (u16, Value) {
        let r = router.handle(method, path, &[], b"").await;
        let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        (r.status, body)
    }

    #[tokio::test]
    async fn a_trailing_slash_or_an_empty_segment_is_an_unknown_route_as_on_api_gateway() {
        let router = router();
        let unknown = get(&router, "GET", "/prod/api/v1/nope").await;
        assert_eq!(unknown.0, 403);
        assert_eq!(
            unknown.1["error"]["message"],
            "Missing Authentication Token"
        );
        for path in [
            "/prod/api/v1/analytics/summary/",
            "/prod/api/v1/analytics/summary/?days=7",
            "/prod//api/v1/analytics/summary",
            "/prod/api/v1//analytics/summary",
            "//prod/api/v1/analytics/summary",
            "/api/v1/analytics/summary/",
            "//api/v1/analytics/summary",
            "/api/v1/analytics/summary//",
        ] {
            assert_eq!(get(&router, "GET", path).await, unknown, "GET {path}");
        }
        for path in [
            "/prod/api/v1/notifications//read",
            "/prod/api/v1/notifications/n1/read/",
            "/prod/api/v1/notifications/n1//read",
        ] {
            assert_eq!(get(&router, "PUT", path).await, unknown, "PUT {path}");
        }
    }

    #[tokio::test]
    async fn the_exact_path_still_reaches_the_handler_with_or_without_the_stage() {
        let router = router();
        for path in [
            "/prod/api/v1/analytics/summary",
            "/api/v1/analytics/summary",
            "/prod/api/v1/analytics/summary?days=7",
        ] {
            assert_eq!(get(&router, "GET", path).await, (200, json!({})), "{path}");
        }
        assert_eq!(
            get(&router, "PUT", "/prod/api/v1/notifications/n1/read").await,
            (200, json!({"id": "n1"}))
        );
    }
}
