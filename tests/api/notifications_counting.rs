//! The unread count stays exact: concurrent create / read / read-all / delete against DynamoDB
//! Local, and read-all and delete on an inbox of 10,000 notifications within a request's time.

use std::time::{Duration, Instant};

use futures::future::join_all;
use meterbell_dev::testing::unique_user;
use serde_json::Value;

use crate::helpers::{notifications, seed_inbox, uid, Caller, TestApi};

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// What the caller's inbox holds, counted from the items themselves: (total, unread).
async fn counted(inbox: &Caller<'_>) -> (u64, u64) {
    let all = inbox.whole_inbox("").await;
    let unread = all.iter().filter(|n| n["is_read"] == false).count() as u64;
    (all.len() as u64, unread)
}

#[tokio::test]
async fn unread_count_stays_exact_under_concurrent_create_read_read_all_and_delete() {
    let api = TestApi::spawn().await;
    let u = unique_user("hammer");
    let mut ids = vec![];
    for i in 0..24 {
        ids.push(id_of(
            &api.as_admin()
                .notify(&u, "info", &format!("seed {i}"))
                .await,
        ));
    }
    let admin = api.as_admin();
    let inbox = api.as_user(&u);
    let (admin, inbox, u_ref) = (&admin, &inbox, u.as_str());

    let mut work: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = u16> + '_>>> = vec![];
    for i in 0..16 {
        work.push(Box::pin(async move {
            let kind = if i % 2 == 0 { "warning" } else { "info" };
            admin.notify(u_ref, kind, &format!("new {i}")).await;
            201
        }));
    }
    for id in ids.iter().take(16) {
        // Each of these is marked read twice at once, and some are deleted at the same time.
        for _ in 0..2 {
            work.push(Box::pin(async move { inbox.mark_read(id).await.status }));
        }
    }
    for id in ids.iter().skip(8).take(12) {
        work.push(Box::pin(async move {
            inbox.delete_notification(id).await.status
        }));
    }
    for _ in 0..3 {
        work.push(Box::pin(async move { inbox.read_all().await.status }));
    }
    let statuses = join_all(work).await;

    assert!(
        statuses.iter().all(|s| [200, 201, 204, 404].contains(s)),
        "{statuses:?}"
    );
    let (total, unread) = counted(inbox).await;
    assert_eq!(inbox.unread().await, unread);
    let counters = notifications(&api.stack).counters(&uid(&u)).await.unwrap();
    assert_eq!(counters.total, total);
    assert_eq!(counters.unread, unread);
    // 24 + 16 created, 12 deleted (each once).
    assert_eq!(total, 28);
    let unread_listed = inbox.whole_inbox("&is_read=false").await.len() as u64;
    assert_eq!(unread_listed, unread);
    let per_type: u64 = ["info", "warning", "error", "success"]
        .iter()
        .map(|k| {
            counters.matching(
                Some(false),
                meterbell::notifications::notification::NotificationType::parse(k),
            )
        })
        .sum();
    assert_eq!(per_type, unread);
}

#[tokio::test]
async fn unread_count_never_goes_negative() {
    let api = TestApi::spawn().await;
    let u = unique_user("negative");
    let id = id_of(&api.as_admin().notify(&u, "error", "only").await);
    let inbox = api.as_user(&u);

    let mut work = vec![];
    for i in 0..12 {
        let (inbox, id) = (&inbox, id.as_str());
        work.push(async move {
            if i % 3 == 0 {
                inbox.delete_notification(id).await.status
            } else {
                inbox.mark_read(id).await.status
            }
        });
    }
    let statuses = join_all(work).await;

    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(inbox.unread().await, 0);
    let stack = &api.stack;
    let counters = notifications(stack).counters(&uid(&u)).await.unwrap();
    assert_eq!((counters.total, counters.unread), (0, 0));
    let raw = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(&stack.resolver.refs["NotificationsTable"])
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{u}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("COUNTERS".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    for attr in ["unread", "unread_error", "total", "total_error"] {
        assert_eq!(raw[attr].as_n().unwrap(), "0", "{attr}");
    }
}

#[tokio::test]
async fn concurrent_creates_for_one_user_all_count_and_keep_the_inbox_ordered() {
    let api = TestApi::spawn().await;
    let u = unique_user("burst");
    let admin = api.as_admin();

    let work: Vec<_> = (0..20)
        .map(|i| {
            let (admin, u) = (&admin, u.as_str());
            async move { admin.notify(u, "success", &format!("b{i}")).await }
        })
        .collect();
    let created = join_all(work).await;

    let inbox = api.as_user(&u);
    assert_eq!(inbox.unread().await, 20);
    let listed = inbox.whole_inbox("").await;
    assert_eq!(listed.len(), 20);
    let ids: Vec<String> = listed.iter().map(id_of).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first by id");
    // The ids the creates answered are the ids stored.
    let mut answered: Vec<String> = created.iter().map(id_of).collect();
    answered.sort_by(|a, b| b.cmp(a));
    assert_eq!(answered, ids);
}

#[tokio::test]
async fn read_all_and_delete_stay_fast_for_a_user_with_10000_notifications() {
    let api = TestApi::spawn().await;
    let u = unique_user("heavy");
    let ids = seed_inbox(&api.stack, &u, 10_000).await;
    let inbox = api.as_user(&u);
    assert_eq!(inbox.unread().await, 10_000);

    let started = Instant::now();
    let reply = inbox.read_all().await;
    let took = started.elapsed();

    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["count"], 10_000);
    // The function's timeout is 10 s; read-all is one write plus a bounded tidy-up.
    assert!(took < Duration::from_secs(6), "read-all took {took:?}");
    assert_eq!(inbox.unread().await, 0);
    let page = inbox.notifications("is_read=false").await;
    assert_eq!(page.json["total"], 0);
    assert_eq!(page.json["notifications"], serde_json::json!([]));
    let page = inbox.notifications("limit=100").await;
    assert!(page.json["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["is_read"] == true));

    let started = Instant::now();
    for id in ids.iter().take(5) {
        let reply = inbox.delete_notification(&id.to_string()).await;
        assert_eq!(reply.status, 204);
    }

    assert!(started.elapsed() < Duration::from_secs(3));
    let counters = notifications(&api.stack).counters(&uid(&u)).await.unwrap();
    assert_eq!((counters.total, counters.unread), (9_995, 0));

    // Later notifications are unread and counted, above the watermark.
    api.as_admin().notify(&u, "info", "after").await;
    assert_eq!(inbox.unread().await, 1);
    let reply = inbox.read_all().await;
    assert_eq!(reply.json["count"], 1);
}
