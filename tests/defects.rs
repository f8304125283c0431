//! Defects found by trying Meterbell as a new user would, each checked end to end through the
//! template's routes against DynamoDB Local.

use meterbell_dev::testing::{
    app, app_with, request, request_app, request_to, stack, token, unique_user,
};
use serde_json::json;

const ROUTE: &str = "/api/v1/notifications/unread-count";
const FUNCTION: &str = "UnreadCountFunction";

async fn unread_count_with(authorization: &str) -> meterbell_dev::testing::Reply {
    let stack = stack().await;
    let function = stack.template.function(FUNCTION).unwrap().clone();
    request_to(
        app(&stack, FUNCTION),
        &function,
        "GET",
        ROUTE,
        &[("authorization", authorization)],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_may_be_followed_by_a_tab() {
    let t = token("defects-bearer", &[]);
    for header in [
        format!("BEARER {t}"),
        format!("bearer {t}"),
        format!("Bearer\t{t}"),
        format!("Bearer \t  {t}"),
    ] {
        let reply = unread_count_with(&header).await;
        assert_eq!(reply.status, 200, "{header:?}: {}", reply.json);
        assert_eq!(reply.json, json!({"unread_count": 0}));
    }
}

#[tokio::test]
async fn an_empty_token_another_scheme_or_a_token_with_spaces_is_still_401() {
    let t = token("defects-bearer", &[]);
    for header in [
        "Bearer".to_owned(),
        "Bearer \t ".to_owned(),
        format!("Basic {t}"),
        format!("Bearer {t} {t}"),
    ] {
        let reply = unread_count_with(&header).await;
        assert_eq!(reply.status, 401, "{header:?}: {}", reply.json);
        assert_eq!(reply.json["error"]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn the_private_target_opt_in_opens_only_the_ranges_the_readme_names() {
    let stack = stack().await;
    let create = app_with(
        &stack,
        "WebhooksCreateFunction",
        &[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")],
    )
    .unwrap();
    let function = stack.template.function("WebhooksCreateFunction").unwrap();
    let t = token(&unique_user("defects-ssrf"), &[]);
    let post = |url: &str| {
        let body = json!({ "url": url }).to_string();
        let (create, t) = (create.clone(), t.clone());
        async move {
            request_app(
                create,
                function,
                "POST",
                "/prod/api/v1/webhooks",
                Some(&t),
                Some(&body),
            )
            .await
        }
    };
    for url in [
        "http://100.64.0.1/hook",
        "http://192.0.2.10/hook",
        "http://198.51.100.10/hook",
        "http://203.0.113.10/hook",
        "http://[2001:db8::10]/hook",
        "http://[::ffff:100.64.0.1]/hook",
        "http://[::ffff:203.0.113.10]/hook",
        "http://169.254.169.254/latest/meta-data/",
    ] {
        let reply = post(url).await.unwrap();
        assert_eq!(reply.status, 400, "{url}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], "url");
    }
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://[fd12:3456::1]/hook",
        "http://[::ffff:127.0.0.1]:9/hook",
    ] {
        let reply = post(url).await.unwrap();
        assert_eq!(reply.status, 201, "{url}: {}", reply.json);
    }
}

#[tokio::test]
async fn the_runner_refuses_a_trailing_slash_or_an_empty_segment_as_api_gateway_does() {
    let stack = stack().await;
    let t = token(&unique_user("defects-route"), &[]);
    let unknown = request(&stack, "GET", "/prod/api/v1/nope", Some(&t), None)
        .await
        .unwrap();
    assert_eq!(unknown.status, 403);
    for path in [
        "/prod/api/v1/analytics/summary/",
        "/prod//api/v1/analytics/summary",
        "//api/v1/analytics/summary",
        "/api/v1/analytics//summary",
    ] {
        let reply = request(&stack, "GET", path, Some(&t), None).await.unwrap();
        assert_eq!(reply.status, 403, "{path}: {}", reply.json);
        assert_eq!(reply.json, unknown.json, "{path}");
    }
    let reply = request(
        &stack,
        "GET",
        "/prod/api/v1/analytics/summary",
        Some(&t),
        None,
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.json);
}
