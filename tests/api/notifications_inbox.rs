//! The inbox routes end to end: admin create, list with filters, offsets and
//! cursors, unread count, mark read, read all, delete; another user's items; bad input.

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::TestApi;

/// The titles of a list reply, in order.
fn titles(v: &Value) -> Vec<String> {
    v["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_admin_creates_a_notification_in_the_seed_shape() {
    let api = TestApi::spawn().await;
    let alice = unique_user("alice");

    let reply = api
        .as_admin()
        .create_notification(
            &json!({"user_id": alice, "type": "info", "title": "System Maintenance",
            "message": "Scheduled maintenance on Jan 20, 2024 from 2-4 AM UTC",
            "send_email": true, "send_webhook": false}),
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
    let list = api.as_user(&alice).notifications("").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json["notifications"][0], *n);
    assert_eq!(list.json["total"], 1);
    assert_eq!(list.json["limit"], 50);
    assert_eq!(list.json["offset"], 0);
    assert_eq!(api.as_user(&alice).unread().await, 1);
}

#[tokio::test]
async fn only_an_admin_may_create_notifications() {
    let api = TestApi::spawn().await;
    let bob = unique_user("bob");
    let body = json!({"user_id": bob, "type": "info", "title": "t", "message": "m"});

    let by_user = api.as_user(&bob).create_notification(&body).await;
    let by_service = api.as_service().create_notification(&body).await;

    assert_eq!(by_user.status, 403);
    assert_eq!(by_user.json["error"]["code"], "forbidden");
    assert_eq!(by_service.status, 403);
    assert_eq!(api.as_user(&bob).unread().await, 0);
}

#[tokio::test]
async fn the_inbox_is_newest_first_and_filters_by_read_state_and_type() {
    let api = TestApi::spawn().await;
    let carol = unique_user("carol");
    let mut ids = vec![];
    for (kind, title) in [
        ("info", "one"),
        ("warning", "two"),
        ("error", "three"),
        ("warning", "four"),
    ] {
        ids.push(id_of(&api.as_admin().notify(&carol, kind, title).await));
    }
    let inbox = api.as_user(&carol);
    let reply = inbox.mark_read(&ids[1]).await;
    assert_eq!(reply.status, 200);

    let all = inbox.notifications("").await;
    let unread = inbox.notifications("is_read=false").await;
    let read = inbox.notifications("is_read=true").await;
    let warnings = inbox.notifications("type=warning").await;
    let unread_warnings = inbox.notifications("type=warning&is_read=false").await;

    assert_eq!(titles(&all.json), ["four", "three", "two", "one"]);
    assert_eq!(all.json["total"], 4);
    assert_eq!(titles(&unread.json), ["four", "three", "one"]);
    assert_eq!(unread.json["total"], 3);
    assert_eq!(titles(&read.json), ["two"]);
    assert_eq!(read.json["total"], 1);
    assert_eq!(read.json["notifications"][0]["is_read"], true);
    assert!(read.json["notifications"][0]["read_at"].is_string());
    assert_eq!(titles(&warnings.json), ["four", "two"]);
    assert_eq!(warnings.json["total"], 2);
    assert_eq!(titles(&unread_warnings.json), ["four"]);
    assert_eq!(unread_warnings.json["total"], 1);
}

#[tokio::test]
async fn limit_and_offset_page_through_the_inbox() {
    let api = TestApi::spawn().await;
    let dan = unique_user("dan");
    for i in 0..7 {
        api.as_admin().notify(&dan, "info", &format!("n{i}")).await;
    }

    let page = api.as_user(&dan).notifications("limit=3&offset=2").await;
    let beyond = api.as_user(&dan).notifications("offset=7").await;

    assert_eq!(page.status, 200);
    assert_eq!(titles(&page.json), ["n4", "n3", "n2"]);
    assert_eq!(page.json["total"], 7);
    assert_eq!(page.json["limit"], 3);
    assert_eq!(page.json["offset"], 2);
    assert_eq!(beyond.json["notifications"], json!([]));
    assert_eq!(beyond.json["next_cursor"], Value::Null);
}

#[tokio::test]
async fn the_cursor_pages_through_every_notification_exactly_once() {
    let api = TestApi::spawn().await;
    let erin = unique_user("erin");
    let mut created = vec![];
    for i in 0..11 {
        let kind = if i % 2 == 0 { "info" } else { "error" };
        created.push(api.as_admin().notify(&erin, kind, &format!("n{i}")).await["id"].clone());
    }
    let inbox = api.as_user(&erin);

    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            None => "limit=4".to_owned(),
            Some(c) => format!("limit=4&cursor={c}"),
        };
        let page = inbox.notifications(&query).await;
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
    // With a filter, the cursor keeps it.
    let errors = inbox.whole_inbox("&type=error").await;

    created.reverse();
    assert_eq!(seen, created);
    assert_eq!(pages, 3);
    assert_eq!(errors.len(), 5);
    assert!(errors.iter().all(|n| n["type"] == "error"));
}

#[tokio::test]
async fn a_forged_altered_or_borrowed_cursor_is_a_400_never_another_page() {
    let api = TestApi::spawn().await;
    let frank = unique_user("frank");
    let mallory = unique_user("mallory");
    for i in 0..3 {
        api.as_admin()
            .notify(&frank, "info", &format!("n{i}"))
            .await;
    }
    let page = api.as_user(&frank).notifications("limit=1").await;
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
        (mallory.as_str(), format!("cursor={cursor}")),
        (frank.as_str(), format!("cursor={forged}")),
        (frank.as_str(), format!("cursor={payload}.AAAA")),
        (frank.as_str(), "cursor=garbage".to_owned()),
        (frank.as_str(), format!("cursor={cursor}&type=info")),
        (frank.as_str(), format!("cursor={cursor}&is_read=false")),
    ];

    for (who, query) in cases {
        let reply = api.as_user(who).notifications(&query).await;

        assert_eq!(reply.status, 400, "{query}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], "cursor", "{query}");
        assert!(reply.json.get("notifications").is_none());
    }
    let both = api
        .as_user(&frank)
        .notifications(&format!("cursor={cursor}&offset=0"))
        .await;
    assert_eq!(both.status, 400);
    assert_eq!(both.json["error"]["field"], "offset");
}

#[tokio::test]
async fn marking_read_counts_once_however_often_it_is_asked() {
    let api = TestApi::spawn().await;
    let gina = unique_user("gina");
    let id = id_of(&api.as_admin().notify(&gina, "info", "a").await);
    api.as_admin().notify(&gina, "info", "b").await;

    for _ in 0..3 {
        let reply = api.as_user(&gina).mark_read(&id).await;

        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json,
            json!({"message": "Notification marked as read"})
        );
    }
    assert_eq!(api.as_user(&gina).unread().await, 1);
}

#[tokio::test]
async fn another_users_notification_is_a_404_for_every_route() {
    let api = TestApi::spawn().await;
    let owner = unique_user("owner");
    let other = api.as_user(&unique_user("other"));
    let id = id_of(&api.as_admin().notify(&owner, "info", "mine").await);

    let replies = [
        ("mark read", other.mark_read(&id).await),
        ("delete", other.delete_notification(&id).await),
        ("deliveries", other.deliveries(&id).await),
    ];
    let missing = api
        .as_user(&owner)
        .mark_read(&uuid::Uuid::now_v7().to_string())
        .await;

    for (route, reply) in replies {
        assert_eq!(reply.status, 404, "{route} {id}");
        assert_eq!(reply.json["error"]["code"], "not_found");
    }
    // Untouched for its owner.
    assert_eq!(api.as_user(&owner).unread().await, 1);
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn delete_answers_204_and_counts_the_notification_out() {
    let api = TestApi::spawn().await;
    let hal = unique_user("hal");
    let unread_id = id_of(&api.as_admin().notify(&hal, "info", "a").await);
    let read_id = id_of(&api.as_admin().notify(&hal, "error", "b").await);
    api.as_admin().notify(&hal, "info", "c").await;
    let inbox = api.as_user(&hal);
    inbox.mark_read(&read_id).await;

    for id in [&unread_id, &read_id] {
        let reply = inbox.delete_notification(id).await;
        let again = inbox.delete_notification(id).await;

        assert_eq!(reply.status, 204);
        assert_eq!(reply.json, Value::Null, "no body");
        assert_eq!(again.status, 404);
    }
    assert_eq!(inbox.unread().await, 1);
    let list = inbox.notifications("").await;
    assert_eq!(list.json["total"], 1);
    assert_eq!(list.json["notifications"][0]["title"], "c");
}

#[tokio::test]
async fn read_all_marks_everything_read_and_says_how_many() {
    let api = TestApi::spawn().await;
    let ivy = unique_user("ivy");
    for i in 0..5 {
        api.as_admin()
            .notify(&ivy, "warning", &format!("n{i}"))
            .await;
    }
    let inbox = api.as_user(&ivy);
    let first = inbox.whole_inbox("").await;
    inbox.mark_read(first[0]["id"].as_str().unwrap()).await;

    let reply = inbox.read_all().await;

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json,
        json!({"message": "Marked 4 notifications as read", "count": 4})
    );
    assert_eq!(inbox.unread().await, 0);
    let all = inbox.whole_inbox("").await;
    assert!(all
        .iter()
        .all(|n| n["is_read"] == true && n["read_at"].is_string()));
    assert!(inbox.whole_inbox("&is_read=false").await.is_empty());
    assert_eq!(inbox.whole_inbox("&is_read=true").await.len(), 5);

    let again = inbox.read_all().await;
    assert_eq!(again.json["count"], 0);

    // What arrives afterwards is unread.
    api.as_admin().notify(&ivy, "info", "later").await;
    assert_eq!(inbox.unread().await, 1);
    let unread = inbox.whole_inbox("&is_read=false").await;
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0]["title"], "later");
}

#[tokio::test]
async fn an_admin_may_read_another_users_inbox_but_a_user_may_not() {
    let api = TestApi::spawn().await;
    let jo = unique_user("jo");
    let nosy = unique_user("nosy");
    api.as_admin().notify(&jo, "info", "x").await;

    let by_admin = api.as_admin().notifications(&format!("user_id={jo}")).await;
    let by_user = api
        .as_user(&nosy)
        .notifications(&format!("user_id={jo}"))
        .await;

    assert_eq!(by_admin.status, 200);
    assert_eq!(by_admin.json["total"], 1);
    assert_eq!(by_user.status, 403);
}

#[tokio::test]
async fn an_idempotency_key_makes_a_retried_create_notify_once() {
    let api = TestApi::spawn().await;
    let kim = unique_user("kim");
    let key = uuid::Uuid::new_v4().to_string();
    let body = json!({"user_id": kim, "type": "success", "title": "Once", "message": "m"});

    let mut ids = HashSet::new();
    let mut statuses = vec![];
    for _ in 0..2 {
        let reply = api
            .as_admin()
            .with_header("idempotency-key", &key)
            .create_notification(&body)
            .await;
        statuses.push(reply.status);
        ids.insert(reply.json["id"].clone());
    }

    assert_eq!(statuses, [201, 200]);
    assert_eq!(ids.len(), 1);
    assert_eq!(api.as_user(&kim).unread().await, 1);
}

#[tokio::test]
async fn every_inbox_route_refuses_a_missing_or_bad_token() {
    let api = TestApi::spawn().await;
    let id = uuid::Uuid::now_v7();
    let routes = [
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
    ];

    for (method, path) in routes {
        for caller in [api.anonymous(), api.with_token("not-a-jwt")] {
            let reply = caller.send(method, &path, Some("{}")).await;

            assert_eq!(reply.status, 401, "{method} {path}");
            assert_eq!(reply.json["error"]["code"], "unauthorized");
        }
    }
}

#[tokio::test]
async fn every_bad_list_parameter_is_a_400_naming_it() {
    let api = TestApi::spawn().await;
    let lee = api.as_user(&unique_user("lee"));

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
        let reply = lee.notifications(query).await;

        assert_eq!(reply.status, 400, "{query}: {}", reply.json);
        assert_eq!(reply.json["error"]["code"], "invalid_parameter", "{query}");
        assert_eq!(reply.json["error"]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn a_notification_id_that_is_not_a_uuid_is_a_400() {
    let api = TestApi::spawn().await;
    let max = api.as_user(&unique_user("max"));

    let replies = [
        ("PUT /notifications/123/read", max.mark_read("123").await),
        (
            "DELETE /notifications/not-a-uuid",
            max.delete_notification("not-a-uuid").await,
        ),
        (
            "GET /notifications/xyz/deliveries",
            max.deliveries("xyz").await,
        ),
    ];
    let extra = max.put_empty("/notifications/read-all?x=1").await;

    for (route, reply) in replies {
        assert_eq!(reply.status, 400, "{route}");
        assert_eq!(reply.json["error"]["field"], "id");
    }
    assert_eq!(extra.status, 400);
    assert_eq!(extra.json["error"]["field"], "x");
}

#[tokio::test]
async fn every_bad_create_body_is_refused_and_writes_nothing() {
    let api = TestApi::spawn().await;
    let ned = unique_user("ned");
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
        let reply = api.as_admin().create_notification_raw(&body).await;

        let shown: String = body.chars().take(80).collect();
        assert_eq!(reply.status, status, "{shown}: {}", reply.json);
        assert!(reply.json["error"]["message"].is_string(), "{shown}");
        if let Some(field) = field {
            assert_eq!(reply.json["error"]["field"], field, "{shown}");
        }
    }
    let reply = api.as_user(&ned).notifications("").await;
    assert_eq!(reply.json["total"], 0);
}

#[tokio::test]
async fn an_unread_page_cursor_from_before_a_read_all_ends_the_listing() {
    let api = TestApi::spawn().await;
    let u = unique_user("pager");
    for i in 0..3 {
        api.as_admin().notify(&u, "info", &format!("n{i}")).await;
    }
    let inbox = api.as_user(&u);
    let first = inbox.notifications("is_read=false&limit=1").await;
    let cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    inbox.read_all().await;

    let next = inbox
        .notifications(&format!("is_read=false&limit=1&cursor={cursor}"))
        .await;

    assert_eq!(next.status, 200, "{}", next.json);
    assert_eq!(next.json["notifications"], json!([]));
    assert_eq!(next.json["next_cursor"], Value::Null);
}
