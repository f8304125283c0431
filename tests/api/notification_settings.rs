//! `GET/PUT notifications/preferences` and `POST/GET/DELETE webhooks`: shapes, validation,
//! secrets shown once, limits, other users.

use crate::helpers::{admin, call, user};
use base64::Engine as _;
use meterbell_dev::testing::{app_with, request, request_app, stack};
use serde_json::{json, Value};

#[tokio::test]
async fn preferences_start_with_everything_on_and_no_address() {
    let stack = stack().await;
    let (_, t) = user("fresh");
    let reply = call(&stack, "GET", "/notifications/preferences", Some(&t), None).await;
    assert_eq!(reply.status, 200);
    let on = json!({"info": true, "warning": true, "error": true, "success": true});
    assert_eq!(
        reply.json,
        json!({"email_address": null, "updated_at": null,
               "channels": {"in_app": on, "email": on, "webhook": on}})
    );
}

#[tokio::test]
async fn put_replaces_only_the_fields_it_names() {
    let stack = stack().await;
    let (_, t) = user("prefs");
    let reply = call(
        &stack,
        "PUT",
        "/notifications/preferences",
        Some(&t),
        Some(json!({"email_address": "Me@Example.COM", "channels": {"email": {"info": false}}})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["email_address"], "Me@example.com");
    assert_eq!(reply.json["channels"]["email"]["info"], false);
    assert_eq!(reply.json["channels"]["email"]["error"], true);
    assert!(reply.json["updated_at"].is_string());

    let reply = call(
        &stack,
        "PUT",
        "/notifications/preferences",
        Some(&t),
        Some(json!({"channels": {"webhook": {"success": false, "error": false}}})),
    )
    .await;
    assert_eq!(reply.json["email_address"], "Me@example.com", "kept");
    assert_eq!(reply.json["channels"]["email"]["info"], false, "kept");
    assert_eq!(reply.json["channels"]["webhook"]["success"], false);
    assert_eq!(reply.json["channels"]["webhook"]["error"], false);

    let reply = call(
        &stack,
        "PUT",
        "/notifications/preferences",
        Some(&t),
        Some(json!({"email_address": null})),
    )
    .await;
    assert_eq!(reply.json["email_address"], Value::Null);
    let get = call(&stack, "GET", "/notifications/preferences", Some(&t), None).await;
    assert_eq!(get.json, reply.json);
}

#[tokio::test]
async fn an_admin_may_read_anothers_preferences_and_a_user_may_not() {
    let stack = stack().await;
    let (u, _) = user("someone");
    let (_, other) = user("nosy");
    let path = format!("/notifications/preferences?user_id={u}");
    assert_eq!(
        call(&stack, "GET", &path, Some(&admin()), None)
            .await
            .status,
        200
    );
    assert_eq!(
        call(&stack, "GET", &path, Some(&other), None).await.status,
        403
    );
}

#[tokio::test]
async fn every_bad_preferences_update_is_refused_and_changes_nothing() {
    let stack = stack().await;
    let (_, t) = user("badprefs");
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        (
            json!({"email_address": "not-an-address"}).to_string(),
            400,
            Some("email_address"),
        ),
        (
            json!({"email_address": "a@b"}).to_string(),
            400,
            Some("email_address"),
        ),
        (
            json!({"email_address": "a@example.com\r\nBcc: x@y.com"}).to_string(),
            400,
            Some("email_address"),
        ),
        (
            json!({"email_address": format!("{}@example.com", "a".repeat(300))}).to_string(),
            400,
            Some("email_address"),
        ),
        (
            json!({"email_address": 42}).to_string(),
            400,
            Some("email_address"),
        ),
        (
            json!({"channels": {"email": {"info": "yes"}}}).to_string(),
            400,
            Some("channels.email.info"),
        ),
        (
            json!({"channels": {"email": {"urgent": true}}}).to_string(),
            400,
            Some("channels.email.urgent"),
        ),
        (
            json!({"channels": {"sms": {"info": true}}}).to_string(),
            400,
            Some("channels.sms"),
        ),
        (
            json!({"channels": {"in_app": {"info": false}}}).to_string(),
            400,
            Some("channels.in_app"),
        ),
        (json!({"colour": "blue"}).to_string(), 400, None),
        ("{".to_owned(), 400, None),
        ("".to_owned(), 400, None),
        ("[]".to_owned(), 400, None),
        (
            format!("{{\"email_address\": \"{}\"}}", "x".repeat(5000)),
            413,
            None,
        ),
    ];
    for (body, status, field) in cases {
        let reply = request(
            &stack,
            "PUT",
            "/prod/api/v1/notifications/preferences",
            Some(&t),
            Some(&body),
        )
        .await
        .unwrap();
        let shown: String = body.chars().take(60).collect();
        assert_eq!(reply.status, status, "{shown}: {}", reply.json);
        assert!(reply.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        if let Some(field) = field {
            assert_eq!(
                reply.json["error"]["field"], field,
                "{shown}: {}",
                reply.json
            );
        }
    }
    let reply = call(
        &stack,
        "PUT",
        "/notifications/preferences?user_id=x",
        Some(&t),
        Some(json!({})),
    )
    .await;
    assert_eq!(reply.status, 400);
    let get = call(&stack, "GET", "/notifications/preferences", Some(&t), None).await;
    assert_eq!(get.json["updated_at"], Value::Null, "nothing was written");
}

#[tokio::test]
async fn a_webhook_secret_is_shown_once_at_creation() {
    let stack = stack().await;
    let (_, t) = user("hooks");
    let reply = call(
        &stack,
        "POST",
        "/webhooks",
        Some(&t),
        Some(json!({"url": "https://hooks.example.com/meterbell", "description": "Billing"})),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let secret = reply.json["secret"].as_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert!(
        key.len() >= 24,
        "a Standard Webhooks key of {} bytes",
        key.len()
    );
    assert_eq!(reply.json["url"], "https://hooks.example.com/meterbell");
    assert_eq!(reply.json["description"], "Billing");
    assert_eq!(reply.json["enabled"], true);
    let id = reply.json["id"].as_str().unwrap().to_owned();

    let list = call(&stack, "GET", "/webhooks", Some(&t), None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json["total"], 1);
    let listed = &list.json["webhooks"][0];
    assert_eq!(listed["id"], id.as_str());
    assert!(listed.get("secret").is_none(), "never shown again");
    assert!(!list.json.to_string().contains(secret));

    let second = call(
        &stack,
        "POST",
        "/webhooks",
        Some(&t),
        Some(json!({"url": "https://hooks.example.com/other"})),
    )
    .await;
    assert_ne!(second.json["secret"], reply.json["secret"]);
}

#[tokio::test]
async fn deleting_a_webhook_answers_204_and_another_users_is_a_404() {
    let stack = stack().await;
    let (_, t) = user("owner");
    let (_, other) = user("other");
    let reply = call(
        &stack,
        "POST",
        "/webhooks",
        Some(&t),
        Some(json!({"url": "https://hooks.example.com/x"})),
    )
    .await;
    let id = reply.json["id"].as_str().unwrap().to_owned();
    let path = format!("/webhooks/{id}");
    assert_eq!(
        call(&stack, "DELETE", &path, Some(&other), None)
            .await
            .status,
        404
    );
    let reply = call(&stack, "DELETE", &path, Some(&t), None).await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.json, Value::Null);
    assert_eq!(
        call(&stack, "DELETE", &path, Some(&t), None).await.status,
        404
    );
    assert_eq!(
        call(&stack, "GET", "/webhooks", Some(&t), None).await.json["total"],
        0
    );
    let bad = call(&stack, "DELETE", "/webhooks/not-an-id", Some(&t), None).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["field"], "id");
}

#[tokio::test]
async fn a_user_may_have_at_most_ten_webhooks() {
    let stack = stack().await;
    let (_, t) = user("many");
    let attempts: Vec<_> = (0..12)
        .map(|i| {
            let (s, t) = (&stack, t.as_str());
            async move {
                call(
                    s,
                    "POST",
                    "/webhooks",
                    Some(t),
                    Some(json!({"url": format!("https://h{i}.example.com/")})),
                )
                .await
                .status
            }
        })
        .collect();
    let statuses = futures::future::join_all(attempts).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        call(&stack, "GET", "/webhooks", Some(&t), None).await.json["total"],
        10
    );
}

#[tokio::test]
async fn every_bad_webhook_body_is_refused() {
    let stack = stack().await;
    let (_, t) = user("badhooks");
    // A deployment's setting: https only, no private targets.
    let app = app_with(
        &stack,
        "WebhooksCreateFunction",
        &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")],
    )
    .unwrap();
    let function = stack.template.function("WebhooksCreateFunction").unwrap();
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        (
            json!({"url": "http://hooks.example.com/"}).to_string(),
            400,
            Some("url"),
        ),
        (
            json!({"url": "ftp://hooks.example.com/"}).to_string(),
            400,
            Some("url"),
        ),
        (
            json!({"url": "hooks.example.com"}).to_string(),
            400,
            Some("url"),
        ),
        (
            json!({"url": "https://user:pw@hooks.example.com/"}).to_string(),
            400,
            Some("url"),
        ),
        (
            json!({"url": "https://hooks.example.com/#x"}).to_string(),
            400,
            Some("url"),
        ),
        (
            json!({"url": "https://192.168.0.10/"}).to_string(),
            400,
            Some("url"),
        ),
        (
            json!({"url": format!("https://e.com/{}", "a".repeat(2100))}).to_string(),
            400,
            Some("url"),
        ),
        (json!({"url": 7}).to_string(), 400, Some("url")),
        (json!({"description": "no url"}).to_string(), 400, None),
        (
            json!({"url": "https://e.com/", "description": "x".repeat(201)}).to_string(),
            400,
            Some("description"),
        ),
        (
            json!({"url": "https://e.com/", "description": "bell\u{7}"}).to_string(),
            400,
            Some("description"),
        ),
        (
            json!({"url": "https://e.com/", "secret": "whsec_mine"}).to_string(),
            400,
            None,
        ),
        ("not json".to_owned(), 400, None),
        ("".to_owned(), 400, None),
        (
            format!("{{\"url\": \"https://e.com/{}\"}}", "a".repeat(9000)),
            413,
            None,
        ),
    ];
    for (body, status, field) in cases {
        let reply = request_app(
            app.clone(),
            function,
            "POST",
            "/prod/api/v1/webhooks",
            Some(&t),
            Some(&body),
        )
        .await
        .unwrap();
        let shown: String = body.chars().take(60).collect();
        assert_eq!(reply.status, status, "{shown}: {}", reply.json);
        if let Some(field) = field {
            assert_eq!(reply.json["error"]["field"], field, "{shown}");
        }
    }
    assert_eq!(
        call(&stack, "GET", "/webhooks", Some(&t), None).await.json["total"],
        0
    );
    let reply = call(&stack, "GET", "/webhooks?limit=5", Some(&t), None).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["field"], "limit");
}
