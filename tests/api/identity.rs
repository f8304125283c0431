//! Every way a token can fail is a 401 with the JSON error of DESIGN §2; a wrong role is a 403.
//! Requests go through the real route of `template.yaml` against DynamoDB Local.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use meterbell_dev::testing::{app, app_with, request_to, stack, token, unique_user, Reply};
use meterbell_dev::tokens::DEV_JWT_SECRET;
use serde_json::{json, Value};

const ROUTE: &str = "/api/v1/notifications/unread-count";
const FUNCTION: &str = "UnreadCountFunction";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn hs256(claims: Value) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn get_with(header: Option<&str>) -> Reply {
    let stack = stack().await;
    let function = stack.template.function(FUNCTION).unwrap().clone();
    let headers: Vec<(&str, &str)> = header
        .map(|h| vec![("authorization", h)])
        .unwrap_or_default();
    request_to(app(&stack, FUNCTION), &function, "GET", ROUTE, &headers)
        .await
        .unwrap()
}

fn assert_unauthorized(reply: &Reply, says: &str) {
    assert_eq!(reply.status, 401, "{}", reply.json);
    assert_eq!(reply.json["error"]["code"], "unauthorized");
    let message = reply.json["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "expected {says:?} in {message:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_request_without_a_token_is_401() {
    assert_unauthorized(&get_with(None).await, "missing Authorization");
}

#[tokio::test]
async fn a_header_that_is_not_bearer_is_401() {
    assert_unauthorized(&get_with(Some("Basic dXNlcjpwYXNz")).await, "Bearer");
}

#[tokio::test]
async fn a_malformed_token_is_401() {
    assert_unauthorized(&get_with(Some("Bearer not.a.jwt")).await, "malformed");
}

#[tokio::test]
async fn an_alg_none_token_is_401() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(json!({"sub": "mallory", "exp": now() + 600, "roles": ["admin"]}).to_string())
    );
    let reply = get_with(Some(&format!("Bearer {token}"))).await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn a_token_signed_with_another_algorithm_is_401() {
    let key = EncodingKey::from_rsa_pem(fixture("rs256-private.pem").as_bytes()).unwrap();
    let token = encode(
        &Header::new(Algorithm::RS256),
        &json!({"sub": "u", "exp": now() + 600}),
        &key,
    )
    .unwrap();
    assert_unauthorized(
        &get_with(Some(&format!("Bearer {token}"))).await,
        "algorithm",
    );
    // The same family with another hash is refused too.
    let hs384 = encode(
        &Header::new(Algorithm::HS384),
        &json!({"sub": "u", "exp": now() + 600}),
        &EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_unauthorized(
        &get_with(Some(&format!("Bearer {hs384}"))).await,
        "algorithm",
    );
}

#[tokio::test]
async fn a_forged_signature_is_401() {
    let forged = encode(
        &Header::default(),
        &json!({"sub": "u", "exp": now() + 600}),
        &EncodingKey::from_secret(b"someone-elses-secret-someone-elses-secret"),
    )
    .unwrap();
    assert_unauthorized(
        &get_with(Some(&format!("Bearer {forged}"))).await,
        "signature",
    );
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let token = hs256(json!({"sub": "u", "exp": now() - 120}));
    assert_unauthorized(&get_with(Some(&format!("Bearer {token}"))).await, "expired");
}

#[tokio::test]
async fn a_token_without_exp_is_401() {
    let token = hs256(json!({"sub": "u"}));
    assert_unauthorized(&get_with(Some(&format!("Bearer {token}"))).await, "exp");
}

#[tokio::test]
async fn a_token_not_yet_valid_is_401() {
    let token = hs256(json!({"sub": "u", "exp": now() + 900, "nbf": now() + 600}));
    assert_unauthorized(
        &get_with(Some(&format!("Bearer {token}"))).await,
        "not valid yet",
    );
}

#[tokio::test]
async fn a_subject_that_is_not_a_user_id_is_401() {
    let token = hs256(json!({"sub": "a#b", "exp": now() + 600}));
    assert_unauthorized(&get_with(Some(&format!("Bearer {token}"))).await, "subject");
}

#[tokio::test]
async fn a_token_for_another_audience_is_401_when_an_audience_is_configured() {
    let stack = stack().await;
    let function = stack.template.function(FUNCTION).unwrap().clone();
    let app = app_with(
        &stack,
        FUNCTION,
        &[
            ("JWT_AUDIENCE", "meterbell"),
            ("JWT_ISSUER", "https://auth.example"),
        ],
    )
    .unwrap();
    let wrong = hs256(
        json!({"sub": "u", "exp": now() + 600, "aud": "billing", "iss": "https://auth.example"}),
    );
    let reply = request_to(
        app.clone(),
        &function,
        "GET",
        ROUTE,
        &[("authorization", &format!("Bearer {wrong}"))],
    )
    .await
    .unwrap();
    assert_unauthorized(&reply, "audience");
    let wrong_issuer = hs256(
        json!({"sub": "u", "exp": now() + 600, "aud": "meterbell", "iss": "https://evil.example"}),
    );
    let reply = request_to(
        app.clone(),
        &function,
        "GET",
        ROUTE,
        &[("authorization", &format!("Bearer {wrong_issuer}"))],
    )
    .await
    .unwrap();
    assert_unauthorized(&reply, "issuer");
    let right = hs256(
        json!({"sub": "u", "exp": now() + 600, "aud": "meterbell", "iss": "https://auth.example"}),
    );
    let reply = request_to(
        app,
        &function,
        "GET",
        ROUTE,
        &[("authorization", &format!("Bearer {right}"))],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.json);
}

#[tokio::test]
async fn es256_tokens_verify_against_a_configured_public_key() {
    let stack = stack().await;
    let function = stack.template.function(FUNCTION).unwrap().clone();
    let public = fixture("es256-public.pem");
    let app = app_with(
        &stack,
        FUNCTION,
        &[
            ("JWT_ALGORITHM", "ES256"),
            ("JWT_SECRET", ""),
            ("JWT_PUBLIC_KEY", &public),
        ],
    )
    .unwrap();
    let key = EncodingKey::from_ec_pem(fixture("es256-private.pem").as_bytes()).unwrap();
    let good = encode(
        &Header::new(Algorithm::ES256),
        &json!({"sub": unique_user("es"), "exp": now() + 600}),
        &key,
    )
    .unwrap();
    let reply = request_to(
        app.clone(),
        &function,
        "GET",
        ROUTE,
        &[("authorization", &format!("Bearer {good}"))],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json, json!({"unread_count": 0}));
    // An HS256 token signed with the public key as secret (the classic confusion attack) fails.
    let confused = encode(
        &Header::default(),
        &json!({"sub": "u", "exp": now() + 600}),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    let reply = request_to(
        app,
        &function,
        "GET",
        ROUTE,
        &[("authorization", &format!("Bearer {confused}"))],
    )
    .await
    .unwrap();
    assert_unauthorized(&reply, "algorithm");
}

#[tokio::test]
async fn rs256_tokens_pick_their_key_from_a_jwks_by_kid() {
    let stack = stack().await;
    let function = stack.template.function(FUNCTION).unwrap().clone();
    let app = app_with(
        &stack,
        FUNCTION,
        &[
            ("JWT_ALGORITHM", "RS256"),
            ("JWT_SECRET", ""),
            ("JWT_JWKS", &fixture("jwks.json")),
        ],
    )
    .unwrap();
    let key = EncodingKey::from_rsa_pem(fixture("rs256-private.pem").as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let good = encode(
        &header,
        &json!({"sub": unique_user("rs"), "exp": now() + 600}),
        &key,
    )
    .unwrap();
    let reply = request_to(
        app.clone(),
        &function,
        "GET",
        ROUTE,
        &[("authorization", &format!("Bearer {good}"))],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.json);
    header.kid = Some("rotated-away".into());
    let unknown = encode(&header, &json!({"sub": "u", "exp": now() + 600}), &key).unwrap();
    let reply = request_to(
        app,
        &function,
        "GET",
        ROUTE,
        &[("authorization", &format!("Bearer {unknown}"))],
    )
    .await
    .unwrap();
    assert_unauthorized(&reply, "key id");
}

#[tokio::test]
async fn a_user_reading_another_users_count_is_403() {
    let stack = stack().await;
    let function = stack.template.function(FUNCTION).unwrap().clone();
    let bearer = format!("Bearer {}", token(&unique_user("nosy"), &[]));
    let reply = request_to(
        app(&stack, FUNCTION),
        &function,
        "GET",
        &format!("{ROUTE}?user_id=someone-else"),
        &[("authorization", &bearer)],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 403, "{}", reply.json);
    assert_eq!(reply.json["error"]["code"], "forbidden");
}

#[tokio::test]
async fn a_service_token_is_not_an_admin() {
    let stack = stack().await;
    let function = stack.template.function(FUNCTION).unwrap().clone();
    let bearer = format!("Bearer {}", token("upstream", &["service"]));
    let reply = request_to(
        app(&stack, FUNCTION),
        &function,
        "GET",
        &format!("{ROUTE}?user_id=someone-else"),
        &[("authorization", &bearer)],
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 403);
}
