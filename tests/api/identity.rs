//! Every way a token can fail is a 401 with the JSON error body the README documents; a wrong role is a 403.
//! Requests go through the real route of `template.yaml` against DynamoDB Local.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use meterbell_dev::testing::{unique_user, Reply};
use meterbell_dev::tokens::DEV_JWT_SECRET;
use serde_json::{json, Value};

use crate::helpers::TestApi;

/// The function whose route (`GET notifications/unread-count`) these tests call.
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

/// The unread count, asked with `authorization` (or none).
async fn get_with(authorization: Option<&str>) -> Reply {
    let api = TestApi::spawn().await.function(FUNCTION);
    let caller = match authorization {
        Some(a) => api.with_authorization(a),
        None => api.anonymous(),
    };
    caller.unread_count("").await
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
    let reply = get_with(None).await;

    assert_unauthorized(&reply, "missing Authorization");
}

#[tokio::test]
async fn a_header_that_is_not_bearer_is_401() {
    let reply = get_with(Some("Basic dXNlcjpwYXNz")).await;

    assert_unauthorized(&reply, "Bearer");
}

#[tokio::test]
async fn a_malformed_token_is_401() {
    let reply = get_with(Some("Bearer not.a.jwt")).await;

    assert_unauthorized(&reply, "malformed");
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
    let rs256 = encode(
        &Header::new(Algorithm::RS256),
        &json!({"sub": "u", "exp": now() + 600}),
        &key,
    )
    .unwrap();
    // The same family with another hash is refused too.
    let hs384 = encode(
        &Header::new(Algorithm::HS384),
        &json!({"sub": "u", "exp": now() + 600}),
        &EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes()),
    )
    .unwrap();

    let rs256 = get_with(Some(&format!("Bearer {rs256}"))).await;
    let hs384 = get_with(Some(&format!("Bearer {hs384}"))).await;

    assert_unauthorized(&rs256, "algorithm");
    assert_unauthorized(&hs384, "algorithm");
}

#[tokio::test]
async fn a_forged_signature_is_401() {
    let forged = encode(
        &Header::default(),
        &json!({"sub": "u", "exp": now() + 600}),
        &EncodingKey::from_secret(b"someone-elses-secret-someone-elses-secret"),
    )
    .unwrap();

    let reply = get_with(Some(&format!("Bearer {forged}"))).await;

    assert_unauthorized(&reply, "signature");
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let token = hs256(json!({"sub": "u", "exp": now() - 120}));

    let reply = get_with(Some(&format!("Bearer {token}"))).await;

    assert_unauthorized(&reply, "expired");
}

#[tokio::test]
async fn a_token_without_exp_is_401() {
    let token = hs256(json!({"sub": "u"}));

    let reply = get_with(Some(&format!("Bearer {token}"))).await;

    assert_unauthorized(&reply, "exp");
}

#[tokio::test]
async fn a_token_not_yet_valid_is_401() {
    let token = hs256(json!({"sub": "u", "exp": now() + 900, "nbf": now() + 600}));

    let reply = get_with(Some(&format!("Bearer {token}"))).await;

    assert_unauthorized(&reply, "not valid yet");
}

#[tokio::test]
async fn a_subject_that_is_not_a_user_id_is_401() {
    let token = hs256(json!({"sub": "a#b", "exp": now() + 600}));

    let reply = get_with(Some(&format!("Bearer {token}"))).await;

    assert_unauthorized(&reply, "subject");
}

#[tokio::test]
async fn a_token_for_another_audience_is_401_when_an_audience_is_configured() {
    let api = TestApi::spawn().await.function_with(
        FUNCTION,
        &[
            ("JWT_AUDIENCE", "meterbell"),
            ("JWT_ISSUER", "https://auth.example"),
        ],
    );
    let wrong = hs256(
        json!({"sub": "u", "exp": now() + 600, "aud": "billing", "iss": "https://auth.example"}),
    );
    let wrong_issuer = hs256(
        json!({"sub": "u", "exp": now() + 600, "aud": "meterbell", "iss": "https://evil.example"}),
    );
    let right = hs256(
        json!({"sub": "u", "exp": now() + 600, "aud": "meterbell", "iss": "https://auth.example"}),
    );

    let wrong = api.with_token(&wrong).unread_count("").await;
    let wrong_issuer = api.with_token(&wrong_issuer).unread_count("").await;
    let right = api.with_token(&right).unread_count("").await;

    assert_unauthorized(&wrong, "audience");
    assert_unauthorized(&wrong_issuer, "issuer");
    assert_eq!(right.status, 200, "{}", right.json);
}

#[tokio::test]
async fn es256_tokens_verify_against_a_configured_public_key() {
    let public = fixture("es256-public.pem");
    let api = TestApi::spawn().await.function_with(
        FUNCTION,
        &[
            ("JWT_ALGORITHM", "ES256"),
            ("JWT_SECRET", ""),
            ("JWT_PUBLIC_KEY", &public),
        ],
    );
    let key = EncodingKey::from_ec_pem(fixture("es256-private.pem").as_bytes()).unwrap();
    let good = encode(
        &Header::new(Algorithm::ES256),
        &json!({"sub": unique_user("es"), "exp": now() + 600}),
        &key,
    )
    .unwrap();
    // An HS256 token signed with the public key as secret (the classic confusion attack).
    let confused = encode(
        &Header::default(),
        &json!({"sub": "u", "exp": now() + 600}),
        &EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();

    let good = api.with_token(&good).unread_count("").await;
    let confused = api.with_token(&confused).unread_count("").await;

    assert_eq!(good.status, 200, "{}", good.json);
    assert_eq!(good.json, json!({"unread_count": 0}));
    assert_unauthorized(&confused, "algorithm");
}

#[tokio::test]
async fn rs256_tokens_pick_their_key_from_a_jwks_by_kid() {
    let api = TestApi::spawn().await.function_with(
        FUNCTION,
        &[
            ("JWT_ALGORITHM", "RS256"),
            ("JWT_SECRET", ""),
            ("JWT_JWKS", &fixture("jwks.json")),
        ],
    );
    let key = EncodingKey::from_rsa_pem(fixture("rs256-private.pem").as_bytes()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-1".into());
    let good = encode(
        &header,
        &json!({"sub": unique_user("rs"), "exp": now() + 600}),
        &key,
    )
    .unwrap();
    header.kid = Some("rotated-away".into());
    let unknown = encode(&header, &json!({"sub": "u", "exp": now() + 600}), &key).unwrap();

    let good = api.with_token(&good).unread_count("").await;
    let unknown = api.with_token(&unknown).unread_count("").await;

    assert_eq!(good.status, 200, "{}", good.json);
    assert_unauthorized(&unknown, "key id");
}

#[tokio::test]
async fn a_user_reading_another_users_count_is_403() {
    let api = TestApi::spawn().await.function(FUNCTION);

    let reply = api
        .as_user(&unique_user("nosy"))
        .unread_count("user_id=someone-else")
        .await;

    assert_eq!(reply.status, 403, "{}", reply.json);
    assert_eq!(reply.json["error"]["code"], "forbidden");
}

#[tokio::test]
async fn a_service_token_is_not_an_admin() {
    let api = TestApi::spawn().await.function(FUNCTION);

    let reply = api.as_service().unread_count("user_id=someone-else").await;

    assert_eq!(reply.status, 403);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_may_be_followed_by_any_run_of_blanks() {
    let t = meterbell_dev::testing::token(&unique_user("bearer"), &[]);

    for header in [
        format!("BEARER {t}"),
        format!("bearer {t}"),
        format!("Bearer\t{t}"),
        format!("Bearer \t  {t}"),
    ] {
        let reply = get_with(Some(&header)).await;

        assert_eq!(reply.status, 200, "{header:?}: {}", reply.json);
        assert_eq!(reply.json, json!({"unread_count": 0}));
    }
}

#[tokio::test]
async fn an_empty_token_another_scheme_or_a_token_with_blanks_is_still_401() {
    let t = meterbell_dev::testing::token(&unique_user("bearer"), &[]);

    for header in [
        "Bearer".to_owned(),
        "Bearer \t ".to_owned(),
        format!("Basic {t}"),
        format!("Bearer {t} {t}"),
    ] {
        let reply = get_with(Some(&header)).await;

        assert_eq!(reply.status, 401, "{header:?}: {}", reply.json);
        assert_eq!(reply.json["error"]["code"], "unauthorized");
    }
}
