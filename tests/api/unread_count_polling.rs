//! Cheap polling of `GET notifications/unread-count`: it answers an `ETag`, and a matching
//! `If-None-Match` gets `304 Not Modified` with no body, until the count changes.

use crate::helpers::TestApi;

fn etag(reply: &meterbell_dev::testing::Reply) -> String {
    reply
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("etag"))
        .map(|(_, v)| v.clone())
        .expect("an ETag header")
}

#[tokio::test]
async fn a_matching_if_none_match_gets_a_304_without_a_body() {
    let api = TestApi::spawn().await;
    let user = meterbell_dev::testing::unique_user("poll");
    let first = api.as_user(&user).unread_count("").await;
    let tag = etag(&first);

    let again = api
        .as_user(&user)
        .with_header("if-none-match", &tag)
        .unread_count("")
        .await;

    assert_eq!(again.status, 304);
    assert!(again.text.is_empty(), "{}", again.text);
    assert_eq!(etag(&again), tag);
}

#[tokio::test]
async fn a_new_notification_changes_the_tag_and_the_poller_gets_the_new_count() {
    let api = TestApi::spawn().await;
    let user = meterbell_dev::testing::unique_user("poll");
    let tag = etag(&api.as_user(&user).unread_count("").await);
    api.as_admin().notify(&user, "info", "News").await;

    let reply = api
        .as_user(&user)
        .with_header("if-none-match", &tag)
        .unread_count("")
        .await;

    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["unread_count"], 1);
    assert_ne!(etag(&reply), tag);
}

#[tokio::test]
async fn weak_and_listed_tags_match_too_and_a_stale_one_does_not() {
    let api = TestApi::spawn().await;
    let user = meterbell_dev::testing::unique_user("poll");
    let tag = etag(&api.as_user(&user).unread_count("").await);

    let weak = api
        .as_user(&user)
        .with_header("if-none-match", &format!("\"x\", W/{tag}"))
        .unread_count("")
        .await;
    let stale = api
        .as_user(&user)
        .with_header("if-none-match", "\"unread-99\"")
        .unread_count("")
        .await;

    assert_eq!(weak.status, 304);
    assert_eq!(stale.status, 200);
}
