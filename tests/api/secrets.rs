//! The production path for keys: `JWT_SECRET_ARN` / `CURSOR_SECRET_ARN` name Secrets Manager
//! secrets, read once when the function starts (`App::start`). Against moto's Secrets Manager.

use std::collections::HashMap;

use meterbell::platform::app::{App, ClientsAt};
use meterbell_dev::stack::Endpoints;
use meterbell_dev::tokens::{mint, DEV_JWT_SECRET};

/// An SDK configuration whose every service is moto (it serves Secrets Manager beside SQS).
fn moto() -> aws_config::SdkConfig {
    let endpoints = Endpoints::from_env().unwrap_or_else(|e| panic!("{e:#}"));
    let moto = std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").unwrap_or(endpoints.sqs);
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto)
        .credentials_provider(
            aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
                aws_sdk_secretsmanager::config::Credentials::new(
                    "test", "test", None, None, "test",
                ),
            ),
        )
        .build()
}

async fn create_secret(sdk: &aws_config::SdkConfig, value: &str) -> String {
    let name = format!("meterbell-test-{}", uuid::Uuid::new_v4().simple());
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "moto's Secrets Manager is not reachable (run make test, or scripts/stack.sh start \
                 && source scripts/env.sh): {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            )
        })
        .arn()
        .expect("moto answers the secret's ARN")
        .to_owned()
}

fn lookup(pairs: Vec<(&str, String)>) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.into_iter().map(|(k, v)| (k.into(), v)).collect();
    move |k| map.get(k).cloned()
}

#[tokio::test]
async fn keys_named_by_arn_are_read_from_secrets_manager_at_start() {
    let sdk = moto();
    let jwt_secret = format!("jwt-from-secrets-manager-{}", uuid::Uuid::new_v4().simple());
    let cursor_secret = format!("cursor-from-secrets-manager-{}", uuid::Uuid::new_v4());
    let jwt_arn = create_secret(&sdk, &jwt_secret).await;
    let cursor_arn = create_secret(&sdk, &cursor_secret).await;

    let app = App::start_with(
        lookup(vec![
            ("JWT_SECRET_ARN", jwt_arn),
            ("CURSOR_SECRET_ARN", cursor_arn),
            ("JWT_SECRET", String::new()),
        ]),
        Some(sdk),
        ClientsAt::FirstUse,
    )
    .await
    .unwrap();

    let token = mint(&jwt_secret, "alice", &[], 60).unwrap();
    let identity = app.verifier().verify(&token).unwrap();
    assert_eq!(identity.user_id.to_string(), "alice");
    let other = mint(DEV_JWT_SECRET, "alice", &[], 60).unwrap();
    assert!(app.verifier().verify(&other).is_err());
    assert_eq!(app.config().cursor_secret, cursor_secret.into_bytes());
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_stops_the_start_naming_setting_and_secret() {
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:meterbell-missing-AbCdEf";
    let err = App::start_with(
        lookup(vec![
            ("JWT_SECRET_ARN", missing.to_owned()),
            ("CURSOR_SECRET", "c".repeat(32)),
        ]),
        Some(moto()),
        ClientsAt::FirstUse,
    )
    .await
    .err()
    .expect("a missing secret must stop the start");
    let text = err.to_string();
    assert!(
        text.contains("JWT_SECRET") && text.contains(missing),
        "{text}"
    );
}

#[tokio::test]
async fn a_key_given_both_as_value_and_as_secret_is_refused() {
    let sdk = moto();
    let arn = create_secret(&sdk, &"k".repeat(32)).await;
    let err = App::start_with(
        lookup(vec![
            ("JWT_SECRET_ARN", arn),
            ("JWT_SECRET", "j".repeat(32)),
            ("CURSOR_SECRET", "c".repeat(32)),
        ]),
        Some(sdk),
        ClientsAt::FirstUse,
    )
    .await
    .err()
    .expect("both ways at once must be refused");
    assert!(err.to_string().contains("not both"), "{err}");
}
