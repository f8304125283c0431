//! The local API runner over real HTTP on 127.0.0.1: routes from `template.yaml`, the stage
//! prefix, path parameters, multi-value query strings and base64 bodies as API Gateway sends them.

use std::sync::Arc;

use lambda_http::{Body, Request, RequestExt};
use meterbell::platform::handler::HttpFuture;
use meterbell_dev::local_api::{serve, Route, Router};
use meterbell_dev::testing::{app, stack, token};
use serde_json::{json, Value};

async fn start(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, Arc::new(router)));
    format!("http://{addr}")
}

async fn template_server() -> String {
    let stack = stack().await;
    start(Router::from_stack(&stack).unwrap()).await
}

/// Answers with what the handler saw, to compare against what API Gateway would send.
fn echo(_app: Arc<meterbell::App>, req: Request) -> HttpFuture {
    Box::pin(async move {
        use base64::Engine as _;
        let query = req.query_string_parameters();
        let multi: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, _)| (k.to_owned(), json!(query.all(k).unwrap_or_default())))
            .collect();
        let path_params: serde_json::Map<String, Value> = req
            .path_parameters()
            .iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        let stage = match req.request_context() {
            lambda_http::request::RequestContext::ApiGatewayV1(ctx) => {
                ctx.stage.unwrap_or_default()
            }
            _ => "not a REST API event".into(),
        };
        let body = base64::engine::general_purpose::STANDARD.encode(req.body().as_ref());
        let out = json!({"path_parameters": path_params, "query": multi, "stage": stage, "body_b64": body});
        lambda_http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::Text(out.to_string()))
            .unwrap()
    })
}

async fn echo_server() -> String {
    let stack = stack().await;
    let app = app(&stack, "UnreadCountFunction");
    let routes = vec![
        Route::new("GET", "/api/v1/things/{id}", echo, app.clone()),
        Route::new("POST", "/api/v1/blobs/{proxy+}", echo, app),
    ];
    start(Router {
        stage: "prod".into(),
        routes,
        cors: vec![],
    })
    .await
}

#[tokio::test]
async fn the_template_route_answers_with_and_without_the_stage_prefix() {
    let base = template_server().await;
    let client = reqwest::Client::new();

    for path in [
        "/prod/api/v1/notifications/unread-count",
        "/api/v1/notifications/unread-count",
    ] {
        let res = client
            .get(format!("{base}{path}"))
            .bearer_auth(token("runner-user", &[]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({"unread_count": 0})
        );
    }
}

#[tokio::test]
async fn no_token_and_a_forged_token_get_401_json_over_http() {
    let base = template_server().await;
    let client = reqwest::Client::new();
    let url = format!("{base}/prod/api/v1/notifications/unread-count");

    let res = client.get(&url).send().await.unwrap();

    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );
    let forged = format!("{}x", token("runner-user", &["admin"]));
    let res = client.get(&url).bearer_auth(forged).send().await.unwrap();

    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn an_unknown_route_or_method_is_refused_as_api_gateway_does() {
    let base = template_server().await;
    let client = reqwest::Client::new();

    let res = client
        .get(format!("{base}/prod/api/v1/nope"))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["message"],
        "Missing Authentication Token"
    );
    let res = client
        .delete(format!("{base}/prod/api/v1/notifications/unread-count"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn a_cors_preflight_is_answered_from_the_template() {
    let base = template_server().await;

    let res = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!("{base}/prod/api/v1/notifications/unread-count"),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("Authorization"));
}

#[tokio::test]
async fn path_parameters_are_decoded_and_the_stage_is_in_the_context() {
    let base = echo_server().await;

    let res = reqwest::get(format!("{base}/prod/api/v1/things/a%20b"))
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();

    assert_eq!(body["path_parameters"], json!({"id": "a b"}));
    assert_eq!(body["stage"], "prod");
}

#[tokio::test]
async fn repeated_query_parameters_keep_every_value() {
    let base = echo_server().await;

    let body: Value = reqwest::get(format!("{base}/prod/api/v1/things/1?tag=a&tag=b&q=x+y"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(body["query"]["tag"], json!(["a", "b"]));
    assert_eq!(body["query"]["q"], json!(["x y"]));
}

#[tokio::test]
async fn a_binary_body_arrives_base64_encoded_and_is_decoded_for_the_handler() {
    use base64::Engine as _;
    let base = echo_server().await;
    let bytes: Vec<u8> = vec![0, 159, 146, 150, 255, 10];

    let res = reqwest::Client::new()
        .post(format!("{base}/prod/api/v1/blobs/deep/path/file.bin"))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();

    assert_eq!(
        body["body_b64"],
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    );
    assert_eq!(
        body["path_parameters"],
        json!({"proxy": "deep/path/file.bin"})
    );
}

#[tokio::test]
async fn a_body_over_api_gateways_limit_is_413() {
    let base = echo_server().await;

    let res = reqwest::Client::new()
        .post(format!("{base}/prod/api/v1/blobs/x"))
        .body(vec![b'a'; meterbell_dev::local_api::MAX_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn a_trailing_slash_or_an_empty_segment_matches_no_route_as_on_api_gateway() {
    let base = template_server().await;
    let client = reqwest::Client::new();
    let auth = format!("Bearer {}", token("runner-paths", &[]));
    let get = |path: &str| {
        client
            .get(format!("{base}{path}"))
            .header("authorization", &auth)
            .send()
    };
    let unknown = get("/prod/api/v1/nope").await.unwrap();
    let unknown_status = unknown.status();
    let unknown_body = unknown.text().await.unwrap();

    let mut answers = vec![];
    for path in [
        "/prod/api/v1/analytics/summary/",
        "/prod//api/v1/analytics/summary",
        "/api/v1/analytics//summary",
    ] {
        let reply = get(path).await.unwrap();
        answers.push((path, reply.status(), reply.text().await.unwrap()));
    }
    let exact = get("/prod/api/v1/analytics/summary").await.unwrap();

    assert_eq!(unknown_status, 403);
    for (path, status, body) in answers {
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body, unknown_body, "{path}");
    }
    assert_eq!(exact.status(), 200);
}
