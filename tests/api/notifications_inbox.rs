//! The inbox routes of seed 000 end to end: admin create, list with filters, offsets and
//! cursors, unread count, mark read, read all, delete; another user's items; bad input.

use std::collections::HashSet;

use crate::helpers::{admin, call, create_for, unread_count, user, whole_inbox};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use meterbell_dev::testing::{stack, token};
use serde_json::{json, Value};

#[tokio::test]
async fn an_admin_creates_a_notification_in_the_seed_shape() {
    let stack = stack().await;
    let (alice, alice_token) = user("alice");
    let reply = call(
        &stack,
        "POST",
        "/notifications",
        Some(&admin()),
        Some(
            json!({"user_id": alice, "type": "info", "title": "System Maintenance",
            "message": "Scheduled maintenance on Jan 20, 2024 from 2-4 AM UTC",
            "send_email": true, "send_webhook": false}),
        ),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    let n = &reply.json;
    assert!(uuid::Uuid::parse_str(n["id"].as_str().unwrap()).is_ok());
    assert_eq!(n["user_id"], alice.as_str());
    assert_eq!(n["type"], "info");
    assert_eq!(n["title"], "System Maintenance");
    assert_eq!(
        n["message"],
        "Scheduled maintenance on Jan 20, 2024 from 2-4 AM UTC"
    );
    assert_eq!(n["data"], Value::Null);
    assert_eq!(n["is_read"], false);
    assert_eq!(n["read_at"], Value::Null);
    assert!(chrono::DateTime::parse_from_rfc3339(n["created_at"].as_str().unwrap()).is_ok());

    let list = call(&stack, "GET", "/notifications", Some(&alice_token), None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json["notifications"][0], *n);
    assert_eq!(list.json["total"], 1);
    assert_eq!(list.json["limit"], 50);
    assert_eq!(list.json["offset"], 0);
    assert_eq!(unread_count(&stack, &alice_token).await, 1);
}

#[tokio::test]
async fn only_an_admin_may_create_notifications() {
    let stack = stack().await;
    let (bob, bob_token) = user("bob");
    let body = json!({"user_id": bob, "type": "info", "title": "t", "message": "m"});
    let reply = call(
        &stack,
        "POST",
        "/notifications",
        Some(&bob_token),
        Some(body.clone()),
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json["error"]["code"], "forbidden");
    let service = token("upstream", &["service"]);
    let reply = call(&stack, "POST", "/notifications", Some(&service), Some(body)).await;
    assert_eq!(reply.status, 403);
    assert_eq!(unread_count(&stack, &bob_token).await, 0);
}

#[tokio::test]
async fn the_inbox_is_newest_first_and_filters_by_read_state_and_type() {
    let stack = stack().await;
    let (carol, t) = user("carol");
    let mut ids = vec![];
    for (kind, title) in [
        ("info", "one"),
        ("warning", "two"),
        ("error", "three"),
        ("warning", "four"),
    ] {
        ids.push(create_for(&stack, &carol, kind, title).await["id"].clone());
    }
    let read = ids[1].as_str().unwrap();
    let reply = call(
        &stack,
        "PUT",
        &format!("/notifications/{read}/read"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(reply.status, 200);

    let titles = |v: &Value| -> Vec<String> {
        v["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = call(&stack, "GET", "/notifications", Some(&t), None).await;
    assert_eq!(titles(&all.json), ["four", "three", "two", "one"]);
    assert_eq!(all.json["total"], 4);

    let unread = call(
        &stack,
        "GET",
        "/notifications?is_read=false",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(titles(&unread.json), ["four", "three", "one"]);
    assert_eq!(unread.json["total"], 3);

    let read = call(&stack, "GET", "/notifications?is_read=true", Some(&t), None).await;
    assert_eq!(titles(&read.json), ["two"]);
    assert_eq!(read.json["total"], 1);
    assert_eq!(read.json["notifications"][0]["is_read"], true);
    assert!(read.json["notifications"][0]["read_at"].is_string());

    let warnings = call(&stack, "GET", "/notifications?type=warning", Some(&t), None).await;
    assert_eq!(titles(&warnings.json), ["four", "two"]);
    assert_eq!(warnings.json["total"], 2);

    let unread_warnings = call(
        &stack,
        "GET",
        "/notifications?type=warning&is_read=false",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(titles(&unread_warnings.json), ["four"]);
    assert_eq!(unread_warnings.json["total"], 1);
}

#[tokio::test]
async fn limit_and_offset_page_through_the_inbox() {
    let stack = stack().await;
    let (dan, t) = user("dan");
    for i in 0..7 {
        create_for(&stack, &dan, "info", &format!("n{i}")).await;
    }
    let page = call(
        &stack,
        "GET",
        "/notifications?limit=3&offset=2",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(page.status, 200);
    let titles: Vec<&str> = page.json["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["n4", "n3", "n2"]);
    assert_eq!(page.json["total"], 7);
    assert_eq!(page.json["limit"], 3);
    assert_eq!(page.json["offset"], 2);
    let beyond = call(&stack, "GET", "/notifications?offset=7", Some(&t), None).await;
    assert_eq!(beyond.json["notifications"], json!([]));
    assert_eq!(beyond.json["next_cursor"], Value::Null);
}

#[tokio::test]
async fn the_cursor_pages_through_every_notification_exactly_once() {
    let stack = stack().await;
    let (erin, t) = user("erin");
    let mut created = vec![];
    for i in 0..11 {
        let kind = if i % 2 == 0 { "info" } else { "error" };
        created.push(create_for(&stack, &erin, kind, &format!("n{i}")).await["id"].clone());
    }
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/notifications?limit=4".to_owned(),
            Some(c) => format!("/notifications?limit=4&cursor={c}"),
        };
        let page = call(&stack, "GET", &path, Some(&t), None).await;
        assert_eq!(page.status, 200, "{}", page.json);
        pages += 1;
        seen.extend(
            page.json["notifications"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].clone()),
        );
        match page.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);
    assert_eq!(pages, 3);
    // With a filter, the cursor keeps it.
    let errors = whole_inbox(&stack, &t, "&type=error").await;
    assert_eq!(errors.len(), 5);
    assert!(errors.iter().all(|n| n["type"] == "error"));
}

#[tokio::test]
async fn a_forged_altered_or_borrowed_cursor_is_a_400_never_another_page() {
    let stack = stack().await;
    let (frank, t) = user("frank");
    let (_, mallory) = user("mallory");
    for i in 0..3 {
        create_for(&stack, &frank, "info", &format!("n{i}")).await;
    }
    let page = call(&stack, "GET", "/notifications?limit=1", Some(&t), None).await;
    let cursor = page.json["next_cursor"].as_str().unwrap().to_owned();
    let (payload, tag) = cursor.split_once('.').unwrap();
    let mut decoded: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    decoded["u"] = json!("mallory");
    let forged = format!(
        "{}.{tag}",
        URL_SAFE_NO_PAD.encode(decoded.to_string().as_bytes())
    );
    let cases = [
        (mallory.as_str(), format!("/notifications?cursor={cursor}")),
        (t.as_str(), format!("/notifications?cursor={forged}")),
        (t.as_str(), format!("/notifications?cursor={payload}.AAAA")),
        (t.as_str(), "/notifications?cursor=garbage".to_owned()),
        (
            t.as_str(),
            format!("/notifications?cursor={cursor}&type=info"),
        ),
        (
            t.as_str(),
            format!("/notifications?cursor={cursor}&is_read=false"),
        ),
    ];
    for (who, path) in cases {
        let reply = call(&stack, "GET", &path, Some(who), None).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], "cursor", "{path}");
        assert!(reply.json.get("notifications").is_none());
    }
    let both = call(
        &stack,
        "GET",
        &format!("/notifications?cursor={cursor}&offset=0"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.json["error"]["field"], "offset");
}

#[tokio::test]
async fn marking_read_counts_once_however_often_it_is_asked() {
    let stack = stack().await;
    let (gina, t) = user("gina");
    let id = create_for(&stack, &gina, "info", "a").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create_for(&stack, &gina, "info", "b").await;
    for _ in 0..3 {
        let reply = call(
            &stack,
            "PUT",
            &format!("/notifications/{id}/read"),
            Some(&t),
            None,
        )
        .await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json,
            json!({"message": "Notification marked as read"})
        );
    }
    assert_eq!(unread_count(&stack, &t).await, 1);
}

#[tokio::test]
async fn another_users_notification_is_a_404_for_every_route() {
    let stack = stack().await;
    let (owner, owner_token) = user("owner");
    let (_, other) = user("other");
    let id = create_for(&stack, &owner, "info", "mine").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in [
        ("PUT", format!("/notifications/{id}/read")),
        ("DELETE", format!("/notifications/{id}")),
        ("GET", format!("/notifications/{id}/deliveries")),
    ] {
        let reply = call(&stack, method, &path, Some(&other), None).await;
        assert_eq!(reply.status, 404, "{method} {path}");
        assert_eq!(reply.json["error"]["code"], "not_found");
    }
    // Untouched for its owner.
    assert_eq!(unread_count(&stack, &owner_token).await, 1);
    let missing = uuid::Uuid::now_v7();
    let reply = call(
        &stack,
        "PUT",
        &format!("/notifications/{missing}/read"),
        Some(&owner_token),
        None,
    )
    .await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn delete_answers_204_and_counts_the_notification_out() {
    let stack = stack().await;
    let (hal, t) = user("hal");
    let unread_id = create_for(&stack, &hal, "info", "a").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read_id = create_for(&stack, &hal, "error", "b").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    create_for(&stack, &hal, "info", "c").await;
    call(
        &stack,
        "PUT",
        &format!("/notifications/{read_id}/read"),
        Some(&t),
        None,
    )
    .await;
    for id in [&unread_id, &read_id] {
        let reply = call(
            &stack,
            "DELETE",
            &format!("/notifications/{id}"),
            Some(&t),
            None,
        )
        .await;
        assert_eq!(reply.status, 204);
        assert_eq!(reply.json, Value::Null, "no body");
        let again = call(
            &stack,
            "DELETE",
            &format!("/notifications/{id}"),
            Some(&t),
            None,
        )
        .await;
        assert_eq!(again.status, 404);
    }
    assert_eq!(unread_count(&stack, &t).await, 1);
    let list = call(&stack, "GET", "/notifications", Some(&t), None).await;
    assert_eq!(list.json["total"], 1);
    assert_eq!(list.json["notifications"][0]["title"], "c");
}

#[tokio::test]
async fn read_all_marks_everything_read_and_says_how_many() {
    let stack = stack().await;
    let (ivy, t) = user("ivy");
    for i in 0..5 {
        create_for(&stack, &ivy, "warning", &format!("n{i}")).await;
    }
    let first = whole_inbox(&stack, &t, "").await;
    let already = first[0]["id"].as_str().unwrap();
    call(
        &stack,
        "PUT",
        &format!("/notifications/{already}/read"),
        Some(&t),
        None,
    )
    .await;

    let reply = call(&stack, "PUT", "/notifications/read-all", Some(&t), None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json,
        json!({"message": "Marked 4 notifications as read", "count": 4})
    );
    assert_eq!(unread_count(&stack, &t).await, 0);
    let all = whole_inbox(&stack, &t, "").await;
    assert!(all
        .iter()
        .all(|n| n["is_read"] == true && n["read_at"].is_string()));
    assert!(whole_inbox(&stack, &t, "&is_read=false").await.is_empty());
    assert_eq!(whole_inbox(&stack, &t, "&is_read=true").await.len(), 5);

    let again = call(&stack, "PUT", "/notifications/read-all", Some(&t), None).await;
    assert_eq!(again.json["count"], 0);

    // What arrives afterwards is unread.
    create_for(&stack, &ivy, "info", "later").await;
    assert_eq!(unread_count(&stack, &t).await, 1);
    let unread = whole_inbox(&stack, &t, "&is_read=false").await;
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0]["title"], "later");
}

#[tokio::test]
async fn an_admin_may_read_another_users_inbox_but_a_user_may_not() {
    let stack = stack().await;
    let (jo, _) = user("jo");
    let (_, nosy) = user("nosy");
    create_for(&stack, &jo, "info", "x").await;
    let reply = call(
        &stack,
        "GET",
        &format!("/notifications?user_id={jo}"),
        Some(&admin()),
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["total"], 1);
    let reply = call(
        &stack,
        "GET",
        &format!("/notifications?user_id={jo}"),
        Some(&nosy),
        None,
    )
    .await;
    assert_eq!(reply.status, 403);
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_create_notify_once() {
    let stack = stack().await;
    let (kim, t) = user("kim");
    let key = uuid::Uuid::new_v4().to_string();
    let body =
        json!({"user_id": kim, "type": "success", "title": "Once", "message": "m"}).to_string();
    let mut ids = HashSet::new();
    let mut statuses = vec![];
    for _ in 0..2 {
        let router = meterbell_dev::local_api::Router::from_stack(&stack).unwrap();
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("authorization".to_owned(), format!("Bearer {}", admin())),
            ("idempotency-key".to_owned(), key.clone()),
        ];
        let reply: meterbell_dev::testing::Reply = router
            .handle(
                "POST",
                "/prod/api/v1/notifications",
                &headers,
                body.as_bytes(),
            )
            .await
            .into();
        statuses.push(reply.status);
        ids.insert(reply.json["id"].clone());
    }
    assert_eq!(statuses, [201, 200]);
    assert_eq!(ids.len(), 1);
    assert_eq!(unread_count(&stack, &t).await, 1);
}

#[tokio::test]
async fn every_inbox_route_refuses_a_missing_or_bad_token() {
    let stack = stack().await;
    let id = uuid::Uuid::now_v7();
    for (method, path) in [
        ("GET", "/notifications".to_owned()),
        ("POST", "/notifications".to_owned()),
        ("GET", "/notifications/unread-count".to_owned()),
        ("PUT", format!("/notifications/{id}/read")),
        ("PUT", "/notifications/read-all".to_owned()),
        ("DELETE", format!("/notifications/{id}")),
        ("GET", format!("/notifications/{id}/deliveries")),
        ("GET", "/notifications/preferences".to_owned()),
        ("PUT", "/notifications/preferences".to_owned()),
        ("GET", "/webhooks".to_owned()),
        ("POST", "/webhooks".to_owned()),
        (
            "DELETE",
            "/webhooks/wh_0193a1f27c3e7b2a9d4e5f6a7b8c9d0e".to_owned(),
        ),
    ] {
        for bad in [None, Some("not-a-jwt")] {
            let reply = call(&stack, method, &path, bad, Some(json!({}))).await;
            assert_eq!(reply.status, 401, "{method} {path}");
            assert_eq!(reply.json["error"]["code"], "unauthorized");
        }
    }
}

#[tokio::test]
async fn every_bad_list_parameter_is_a_400_naming_it() {
    let stack = stack().await;
    let (_, t) = user("lee");
    for (query, field) in [
        ("is_read=yes", "is_read"),
        ("is_read=", "is_read"),
        ("type=urgent", "type"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("offset=-1", "offset"),
        ("offset=10001", "offset"),
        ("offset=1.5", "offset"),
        ("page=2", "page"),
        ("limit=1&limit=2", "limit"),
        ("user_id=a%23b", "user_id"),
    ] {
        let reply = call(
            &stack,
            "GET",
            &format!("/notifications?{query}"),
            Some(&t),
            None,
        )
        .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.json);
        assert_eq!(reply.json["error"]["code"], "invalid_parameter", "{query}");
        assert_eq!(reply.json["error"]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn a_notification_id_that_is_not_a_uuid_is_a_400() {
    let stack = stack().await;
    let (_, t) = user("max");
    for (method, path) in [
        ("PUT", "/notifications/123/read"),
        ("DELETE", "/notifications/not-a-uuid"),
        ("GET", "/notifications/xyz/deliveries"),
    ] {
        let reply = call(&stack, method, path, Some(&t), None).await;
        assert_eq!(reply.status, 400, "{method} {path}");
        assert_eq!(reply.json["error"]["field"], "id");
    }
    let reply = call(&stack, "PUT", "/notifications/read-all?x=1", Some(&t), None).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["field"], "x");
}

#[tokio::test]
async fn every_bad_create_body_is_refused_and_writes_nothing() {
    let stack = stack().await;
    let (ned, t) = user("ned");
    let ok = json!({"user_id": ned, "type": "info", "title": "t", "message": "m"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let many: Vec<String> = (0..10_001).map(|i| format!("u{i}")).collect();
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        (without("type").to_string(), 400, None),
        (with("type", json!("urgent")).to_string(), 400, Some("type")),
        (with("type", json!(3)).to_string(), 400, Some("type")),
        (with("title", json!("  ")).to_string(), 400, Some("title")),
        (
            with("title", json!("x".repeat(201))).to_string(),
            400,
            Some("title"),
        ),
        (with("message", json!("")).to_string(), 400, Some("message")),
        (
            with("message", json!("x".repeat(4001))).to_string(),
            400,
            Some("message"),
        ),
        (with("data", json!([1, 2])).to_string(), 400, Some("data")),
        (
            with("data", json!({"big": "x".repeat(20_000)})).to_string(),
            400,
            Some("data"),
        ),
        (
            with("send_email", json!("yes")).to_string(),
            400,
            Some("send_email"),
        ),
        (
            with("user_id", json!("a#b")).to_string(),
            400,
            Some("user_id"),
        ),
        (
            with("user_ids", json!(["x"])).to_string(),
            400,
            Some("user_ids"),
        ),
        (without("user_id").to_string(), 400, Some("user_id")),
        (
            json!({"user_ids": [], "type": "info", "title": "t", "message": "m"}).to_string(),
            400,
            Some("user_ids"),
        ),
        (
            json!({"user_ids": many, "type": "info", "title": "t", "message": "m"}).to_string(),
            400,
            Some("user_ids"),
        ),
        (with("colour", json!("red")).to_string(), 400, None),
        ("{not json".to_owned(), 400, None),
        ("".to_owned(), 400, None),
        ("[1]".to_owned(), 400, None),
        (
            format!("{{\"title\": \"{}\"}}", "x".repeat(3 * 1024 * 1024)),
            413,
            None,
        ),
    ];
    for (body, status, field) in cases {
        let reply = meterbell_dev::testing::request(
            &stack,
            "POST",
            "/prod/api/v1/notifications",
            Some(&admin()),
            Some(&body),
        )
        .await
        .unwrap();
        let shown: String = body.chars().take(80).collect();
        assert_eq!(reply.status, status, "{shown}: {}", reply.json);
        assert!(reply.json["error"]["message"].is_string(), "{shown}");
        if let Some(field) = field {
            assert_eq!(reply.json["error"]["field"], field, "{shown}");
        }
    }
    let reply = call(&stack, "GET", "/notifications", Some(&t), None).await;
    assert_eq!(reply.json["total"], 0);
}

#[tokio::test]
async fn an_unread_page_cursor_from_before_a_read_all_ends_the_listing() {
    let stack = stack().await;
    let (u, t) = user("pager");
    for i in 0..3 {
        create_for(&stack, &u, "info", &format!("n{i}")).await;
    }
    let first = call(
        &stack,
        "GET",
        "/notifications?is_read=false&limit=1",
        Some(&t),
        None,
    )
    .await;
    let cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    call(&stack, "PUT", "/notifications/read-all", Some(&t), None).await;
    let next = call(
        &stack,
        "GET",
        &format!("/notifications?is_read=false&limit=1&cursor={cursor}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(next.status, 200, "{}", next.json);
    assert_eq!(next.json["notifications"], json!([]));
    assert_eq!(next.json["next_cursor"], Value::Null);
}
