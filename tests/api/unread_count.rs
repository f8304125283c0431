//! `GET /api/v1/notifications/unread-count` end to end: JWT, routing, DynamoDB Local, errors.

use meterbell::notifications::notification::{Notification, NotificationType};
use meterbell::notifications::store::Notifications;
use meterbell::platform::domain::UserId;
use meterbell_dev::testing::{app, stack, unique_user};
use serde_json::json;

use crate::helpers::TestApi;

async fn give_notifications(
    stack: &meterbell_dev::stack::LocalStack,
    user: &str,
    unread: usize,
    read: usize,
) {
    let store = Notifications::new(
        stack.clients.dynamodb.clone(),
        stack.resolver.refs["NotificationsTable"].clone(),
    );
    let expires = (chrono::Utc::now() + chrono::Duration::days(1)).timestamp();
    for i in 0..unread + read {
        let mut n = Notification::new(
            UserId::parse(user).unwrap(),
            NotificationType::Info,
            "t",
            "m",
            None,
        );
        n.is_read = i >= unread;
        store.insert(&n, expires).await.unwrap();
    }
}

#[tokio::test]
async fn a_user_with_nothing_yet_has_zero_unread() {
    let api = TestApi::spawn().await;

    let reply = api.as_user(&unique_user("new")).unread_count("").await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.json, json!({"unread_count": 0}));
}

#[tokio::test]
async fn unread_count_counts_only_unread_notifications() {
    let api = TestApi::spawn().await;
    let user = unique_user("reader");
    give_notifications(&api.stack, &user, 3, 2).await;

    let reply = api.as_user(&user).unread_count("").await;

    assert_eq!(reply.json, json!({"unread_count": 3}));
}

#[tokio::test]
async fn an_admin_may_read_another_users_count() {
    let api = TestApi::spawn().await;
    let user = unique_user("someone");
    give_notifications(&api.stack, &user, 2, 0).await;

    let reply = api
        .as_caller("root", &["admin"])
        .unread_count(&format!("user_id={user}"))
        .await;

    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json, json!({"unread_count": 2}));
}

#[tokio::test]
async fn a_user_may_name_themselves() {
    let api = TestApi::spawn().await;
    let user = unique_user("self");

    let reply = api
        .as_user(&user)
        .unread_count(&format!("user_id={user}"))
        .await;

    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn an_unknown_parameter_is_a_400_naming_it() {
    let api = TestApi::spawn().await;

    let reply = api.as_user("u1").unread_count("usr_id=x").await;

    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["code"], "invalid_parameter");
    assert_eq!(reply.json["error"]["field"], "usr_id");
}

#[tokio::test]
async fn a_repeated_parameter_is_a_400() {
    let api = TestApi::spawn().await;

    let reply = api
        .as_caller("a", &["admin"])
        .unread_count("user_id=a&user_id=b")
        .await;

    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["field"], "user_id");
}

#[tokio::test]
async fn an_invalid_user_id_parameter_is_a_400() {
    let api = TestApi::spawn().await;

    let reply = api
        .as_caller("root", &["admin"])
        .unread_count("user_id=a%23b")
        .await;

    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["field"], "user_id");
}

#[tokio::test]
async fn the_sample_event_in_events_answers_as_sam_local_invoke_would() {
    let stack = stack().await;
    let raw = std::fs::read_to_string(format!(
        "{}/events/unread-count.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let req = lambda_http::request::from_str(&raw).unwrap();

    let response = meterbell::notifications::routes::inbox::unread_count(
        app(&stack, "UnreadCountFunction"),
        req,
    )
    .await;

    assert_eq!(response.status(), 200);
    let body: serde_json::Value = match response.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    };
    assert!(body["unread_count"].is_u64());
}
