//! `GET/PUT notifications/preferences` and `POST/GET/DELETE webhooks`: shapes, validation,
//! secrets shown once, limits, other users.

use base64::Engine as _;
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::TestApi;

#[tokio::test]
async fn preferences_start_with_everything_on_no_address_the_default_threshold_and_no_digest_or_quiet_hours(
) {
    let api = TestApi::spawn().await;

    let reply = api.as_user(&unique_user("fresh")).preferences("").await;

    assert_eq!(reply.status, 200);
    let on = json!({"info": true, "warning": true, "error": true, "success": true});
    assert_eq!(
        reply.json,
        json!({"email_address": null, "updated_at": null, "low_credit_threshold": null,
               "channels": {"in_app": on, "email": on, "webhook": on},
               "reports": {"daily": false, "weekly": false, "monthly": false, "system": false}, "tz": null,
               "digest": {"email": "off"}, "quiet_hours": null,
               "bypass": {"info": false, "warning": false, "error": true, "success": false}})
    );
}

#[tokio::test]
async fn put_replaces_only_the_fields_it_names() {
    let api = TestApi::spawn().await;
    let me = api.as_user(&unique_user("prefs"));

    let first = me
        .update_preferences(
            &json!({"email_address": "Me@Example.COM", "channels": {"email": {"info": false}}}),
        )
        .await;
    let second = me
        .update_preferences(&json!({"channels": {"webhook": {"success": false, "error": false}}}))
        .await;
    let third = me.update_preferences(&json!({"email_address": null})).await;
    let get = me.preferences("").await;

    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.json["email_address"], "Me@example.com");
    assert_eq!(first.json["channels"]["email"]["info"], false);
    assert_eq!(first.json["channels"]["email"]["error"], true);
    assert!(first.json["updated_at"].is_string());
    assert_eq!(second.json["email_address"], "Me@example.com", "kept");
    assert_eq!(second.json["channels"]["email"]["info"], false, "kept");
    assert_eq!(second.json["channels"]["webhook"]["success"], false);
    assert_eq!(second.json["channels"]["webhook"]["error"], false);
    assert_eq!(third.json["email_address"], Value::Null);
    assert_eq!(get.json, third.json);
}

#[tokio::test]
async fn an_admin_may_read_anothers_preferences_and_a_user_may_not() {
    let api = TestApi::spawn().await;
    let someone = unique_user("someone");
    let query = format!("user_id={someone}");

    let by_admin = api.as_admin().preferences(&query).await;
    let by_user = api.as_user(&unique_user("nosy")).preferences(&query).await;

    assert_eq!(by_admin.status, 200);
    assert_eq!(by_user.status, 403);
}

#[tokio::test]
async fn every_bad_preferences_update_is_refused_and_changes_nothing() {
    let api = TestApi::spawn().await;
    let me = api.as_user(&unique_user("badprefs"));
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
        let reply = me.update_preferences_raw(&body).await;

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
    let reply = me
        .send(
            "PUT",
            "/notifications/preferences?user_id=x",
            Some(&json!({}).to_string()),
        )
        .await;
    assert_eq!(reply.status, 400);
    let get = me.preferences("").await;
    assert_eq!(get.json["updated_at"], Value::Null, "nothing was written");
}

#[tokio::test]
async fn a_webhook_secret_is_shown_once_at_creation() {
    let api = TestApi::spawn().await;
    let me = api.as_user(&unique_user("hooks"));

    let reply = me
        .create_webhook(
            &json!({"url": "https://hooks.example.com/meterbell", "description": "Billing"}),
        )
        .await;
    let list = me.webhooks("").await;
    let second = me
        .create_webhook(&json!({"url": "https://hooks.example.com/other"}))
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
    assert_eq!(list.status, 200);
    assert_eq!(list.json["total"], 1);
    let listed = &list.json["webhooks"][0];
    assert_eq!(listed["id"], id.as_str());
    assert!(listed.get("secret").is_none(), "never shown again");
    assert!(!list.json.to_string().contains(secret));
    assert_ne!(second.json["secret"], reply.json["secret"]);
}

#[tokio::test]
async fn deleting_a_webhook_answers_204_and_another_users_is_a_404() {
    let api = TestApi::spawn().await;
    let owner = api.as_user(&unique_user("owner"));
    let other = api.as_user(&unique_user("other"));
    let created = owner
        .create_webhook(&json!({"url": "https://hooks.example.com/x"}))
        .await;
    let id = created.json["id"].as_str().unwrap().to_owned();

    let by_other = other.delete_webhook(&id).await;
    let reply = owner.delete_webhook(&id).await;
    let again = owner.delete_webhook(&id).await;
    let bad = owner.delete_webhook("not-an-id").await;

    assert_eq!(by_other.status, 404);
    assert_eq!(reply.status, 204);
    assert_eq!(reply.json, Value::Null);
    assert_eq!(again.status, 404);
    assert_eq!(owner.webhooks("").await.json["total"], 0);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["field"], "id");
}

#[tokio::test]
async fn a_user_may_have_at_most_ten_webhooks() {
    let api = TestApi::spawn().await;
    let me = api.as_user(&unique_user("many"));

    let attempts: Vec<_> = (0..12)
        .map(|i| {
            let me = &me;
            async move {
                me.create_webhook(&json!({"url": format!("https://h{i}.example.com/")}))
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
    assert_eq!(me.webhooks("").await.json["total"], 10);
}

#[tokio::test]
async fn every_bad_webhook_body_is_refused() {
    let api = TestApi::spawn().await;
    let me = unique_user("badhooks");
    // A deployment's setting: https only, no private targets.
    let strict = api.function_with(
        "WebhooksCreateFunction",
        &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")],
    );
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
        let reply = strict.as_user(&me).create_webhook_raw(&body).await;

        let shown: String = body.chars().take(60).collect();
        assert_eq!(reply.status, status, "{shown}: {}", reply.json);
        if let Some(field) = field {
            assert_eq!(reply.json["error"]["field"], field, "{shown}");
        }
    }
    let me = api.as_user(&me);
    assert_eq!(me.webhooks("").await.json["total"], 0);
    let reply = me.webhooks("limit=5").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["field"], "limit");
}

#[tokio::test]
async fn the_private_target_opt_in_opens_only_the_ranges_the_readme_names() {
    let api = TestApi::spawn().await.function_with(
        "WebhooksCreateFunction",
        &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")],
    );
    let me = api.as_user(&unique_user("ssrf"));
    let refused = [
        "http://100.64.0.1/hook",
        "http://192.0.2.10/hook",
        "http://198.51.100.10/hook",
        "http://203.0.113.10/hook",
        "http://[2001:db8::10]/hook",
        "http://[::ffff:100.64.0.1]/hook",
        "http://[::ffff:203.0.113.10]/hook",
        "http://169.254.169.254/latest/meta-data/",
    ];
    let opened = [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://[fd12:3456::1]/hook",
        "http://[::ffff:127.0.0.1]:9/hook",
    ];

    for url in refused {
        let reply = me.create_webhook(&json!({ "url": url })).await;

        assert_eq!(reply.status, 400, "{url}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], "url");
    }
    for url in opened {
        let reply = me.create_webhook(&json!({ "url": url })).await;

        assert_eq!(reply.status, 201, "{url}: {}", reply.json);
    }
}
