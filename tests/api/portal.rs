//! The usage portal: its page and files are served by the bundle with a strict
//! Content-Security-Policy, and its short-lived tokens are minted by the platform's backend
//! (service or admin) for one user.

use serde_json::json;

use crate::helpers::TestApi;

fn header<'a>(reply: &'a meterbell_dev::testing::Reply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn the_page_is_html_with_a_content_security_policy_that_allows_only_its_own_files() {
    let api = TestApi::spawn().await;

    let reply = api.get_page("/portal").await;

    assert_eq!(reply.status, 200);
    assert!(header(&reply, "content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = header(&reply, "content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert_eq!(header(&reply, "cache-control"), Some("no-store"));
    assert_eq!(header(&reply, "referrer-policy"), Some("no-referrer"));
    assert!(reply.text.contains("portal/assets/app.js"));
    assert!(!reply.text.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn the_pages_script_styles_and_chart_library_are_served_from_the_binary() {
    let api = TestApi::spawn().await;

    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("uPlot.iife.min.js", "text/javascript"),
        ("uPlot.min.css", "text/css"),
    ] {
        let reply = api.get_page(&format!("/portal/assets/{file}")).await;

        assert_eq!(reply.status, 200, "{file}");
        assert!(
            header(&reply, "content-type").unwrap().starts_with(kind),
            "{file}"
        );
        assert!(!reply.text.is_empty(), "{file}");
        assert_eq!(header(&reply, "x-content-type-options"), Some("nosniff"));
    }
}

#[tokio::test]
async fn a_file_the_portal_does_not_have_is_a_404_naming_it() {
    let api = TestApi::spawn().await;

    let reply = api.get_page("/portal/assets/secrets.txt").await;

    assert_eq!(reply.status, 404);
    assert!(reply.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("secrets.txt"));
}

#[tokio::test]
async fn the_service_mints_a_short_lived_token_that_reads_that_users_data() {
    let api = TestApi::spawn().await;
    let user = meterbell_dev::testing::unique_user("portal");

    let minted = api
        .as_service()
        .mint_portal_token(&json!({"user_id": user, "ttl_seconds": 120}))
        .await;

    assert_eq!(minted.status, 201, "{}", minted.text);
    assert_eq!(minted.json["user_id"], user.as_str());
    let token = minted.json["token"].as_str().unwrap();
    assert_eq!(
        minted.json["portal_path"].as_str().unwrap(),
        format!("portal#token={token}")
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(minted.json["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!((100..=121).contains(&left), "{left} s left");
    let count = api.with_token(token).unread_count("").await;
    assert_eq!(count.status, 200);
    let other = api
        .with_token(token)
        .unread_count("user_id=someone-else")
        .await;
    assert_eq!(other.status, 403, "a portal token is no admin");
}

#[tokio::test]
async fn a_user_cannot_mint_portal_tokens() {
    let api = TestApi::spawn().await;

    let reply = api
        .as_user("mallory")
        .mint_portal_token(&json!({"user_id": "alice"}))
        .await;

    assert_eq!(reply.status, 403);
}

#[tokio::test]
async fn only_an_admin_may_mint_an_admin_portal_token() {
    let api = TestApi::spawn().await;

    let by_service = api
        .as_service()
        .mint_portal_token(&json!({"user_id": "ops", "admin": true}))
        .await;
    let by_admin = api
        .as_admin()
        .mint_portal_token(&json!({"user_id": "ops", "admin": true}))
        .await;

    assert_eq!(by_service.status, 403);
    assert_eq!(by_admin.status, 201, "{}", by_admin.text);
    let token = by_admin.json["token"].as_str().unwrap();
    let overview = api.with_token(token).admin_overview("days=1").await;
    assert_eq!(overview.status, 200);
}

#[tokio::test]
async fn a_lifetime_outside_a_minute_to_an_hour_or_a_bad_user_is_a_400_naming_the_field() {
    let api = TestApi::spawn().await;

    for (body, field) in [
        (
            json!({"user_id": "alice", "ttl_seconds": 59}),
            "ttl_seconds",
        ),
        (
            json!({"user_id": "alice", "ttl_seconds": 3601}),
            "ttl_seconds",
        ),
        (json!({"user_id": ""}), "user_id"),
        (json!({"user_id": "alice", "extra": 1}), "extra"),
    ] {
        let reply = api.as_service().mint_portal_token(&body).await;

        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        let named = reply.json["error"]["field"].as_str().unwrap_or("");
        let message = reply.json["error"]["message"].as_str().unwrap_or("");
        assert!(
            named == field || message.contains(field),
            "{body}: {}",
            reply.text
        );
    }
}
