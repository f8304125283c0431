//! The unread count stays exact: concurrent create / read / read-all / delete against DynamoDB
//! Local, and read-all and delete on an inbox of 10,000 notifications within a request's time.

use std::time::{Duration, Instant};

use crate::helpers::{
    call, create_for, notifications, seed_inbox, uid, unread_count, user, whole_inbox,
};
use futures::future::join_all;
use meterbell_dev::testing::stack;
use serde_json::Value;

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// What the inbox holds, counted from the items themselves.
async fn counted(stack: &meterbell_dev::stack::LocalStack, token: &str) -> (u64, u64) {
    let all = whole_inbox(stack, token, "").await;
    let unread = all.iter().filter(|n| n["is_read"] == false).count() as u64;
    (all.len() as u64, unread)
}

#[tokio::test]
async fn unread_count_stays_exact_under_concurrent_create_read_read_all_and_delete() {
    let stack = stack().await;
    let (u, t) = user("hammer");
    let mut ids = vec![];
    for i in 0..24 {
        ids.push(id_of(
            &create_for(&stack, &u, "info", &format!("seed {i}")).await,
        ));
    }
    let stack_ref = &stack;
    let t_ref = t.as_str();
    let u_ref = u.as_str();
    let mut work: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = u16> + '_>>> = vec![];
    for i in 0..16 {
        work.push(Box::pin(async move {
            let kind = if i % 2 == 0 { "warning" } else { "info" };
            create_for(stack_ref, u_ref, kind, &format!("new {i}")).await;
            201
        }));
    }
    for id in ids.iter().take(16) {
        // Each of these is marked read twice at once, and some are deleted at the same time.
        for _ in 0..2 {
            let path = format!("/notifications/{id}/read");
            work.push(Box::pin(async move {
                call(stack_ref, "PUT", &path, Some(t_ref), None)
                    .await
                    .status
            }));
        }
    }
    for id in ids.iter().skip(8).take(12) {
        let path = format!("/notifications/{id}");
        work.push(Box::pin(async move {
            call(stack_ref, "DELETE", &path, Some(t_ref), None)
                .await
                .status
        }));
    }
    for _ in 0..3 {
        work.push(Box::pin(async move {
            call(
                stack_ref,
                "PUT",
                "/notifications/read-all",
                Some(t_ref),
                None,
            )
            .await
            .status
        }));
    }
    let statuses = join_all(work).await;
    assert!(
        statuses.iter().all(|s| [200, 201, 204, 404].contains(s)),
        "{statuses:?}"
    );

    let (total, unread) = counted(&stack, &t).await;
    assert_eq!(unread_count(&stack, &t).await, unread);
    let counters = notifications(&stack).counters(&uid(&u)).await.unwrap();
    assert_eq!(counters.total, total);
    assert_eq!(counters.unread, unread);
    // 24 + 16 created, 12 deleted (each once).
    assert_eq!(total, 28);
    let unread_listed = whole_inbox(&stack, &t, "&is_read=false").await.len() as u64;
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
    let stack = stack().await;
    let (u, t) = user("negative");
    let id = id_of(&create_for(&stack, &u, "error", "only").await);
    let read = format!("/notifications/{id}/read");
    let delete = format!("/notifications/{id}");
    let mut work = vec![];
    for i in 0..12 {
        let (method, path) = if i % 3 == 0 {
            ("DELETE", delete.as_str())
        } else {
            ("PUT", read.as_str())
        };
        let (s, t) = (&stack, t.as_str());
        work.push(async move { call(s, method, path, Some(t), None).await.status });
    }
    let statuses = join_all(work).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(unread_count(&stack, &t).await, 0);
    let counters = notifications(&stack).counters(&uid(&u)).await.unwrap();
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
    let stack = stack().await;
    let (u, t) = user("burst");
    let work: Vec<_> = (0..20)
        .map(|i| {
            let (s, u) = (&stack, u.as_str());
            async move { create_for(s, u, "success", &format!("b{i}")).await }
        })
        .collect();
    let created = join_all(work).await;
    assert_eq!(unread_count(&stack, &t).await, 20);
    let inbox = whole_inbox(&stack, &t, "").await;
    assert_eq!(inbox.len(), 20);
    let ids: Vec<String> = inbox.iter().map(id_of).collect();
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
    let stack = stack().await;
    let (u, t) = user("heavy");
    let ids = seed_inbox(&stack, &u, 10_000).await;
    assert_eq!(unread_count(&stack, &t).await, 10_000);

    let started = Instant::now();
    let reply = call(&stack, "PUT", "/notifications/read-all", Some(&t), None).await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["count"], 10_000);
    // The function's timeout is 10 s; read-all is one write plus a bounded tidy-up.
    assert!(took < Duration::from_secs(6), "read-all took {took:?}");
    assert_eq!(unread_count(&stack, &t).await, 0);

    let page = call(
        &stack,
        "GET",
        "/notifications?is_read=false",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(page.json["total"], 0);
    assert_eq!(page.json["notifications"], serde_json::json!([]));
    let page = call(&stack, "GET", "/notifications?limit=100", Some(&t), None).await;
    assert!(page.json["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["is_read"] == true));

    let started = Instant::now();
    for id in ids.iter().take(5) {
        let reply = call(
            &stack,
            "DELETE",
            &format!("/notifications/{id}"),
            Some(&t),
            None,
        )
        .await;
        assert_eq!(reply.status, 204);
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    let counters = notifications(&stack).counters(&uid(&u)).await.unwrap();
    assert_eq!((counters.total, counters.unread), (9_995, 0));

    // Later notifications are unread and counted, above the watermark.
    create_for(&stack, &u, "info", "after").await;
    assert_eq!(unread_count(&stack, &t).await, 1);
    let reply = call(&stack, "PUT", "/notifications/read-all", Some(&t), None).await;
    assert_eq!(reply.json["count"], 1);
}
