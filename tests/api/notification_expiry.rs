//! Counts stay exact past retention (README, "Known limits" no more): when DynamoDB's TTL removes
//! a notification, the NotificationsTable stream hands the removal to `notification-expiry`,
//! which corrects the counters once. DynamoDB Local does not expire items, so these tests do
//! what TTL does — delete the item — and feed the consumer the stream record AWS would send,
//! with the item's old image as read from the table.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use meterbell::platform::handler::StreamBatch;
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::TestApi;

/// An attribute in DynamoDB's JSON, as stream records carry it.
fn ddb_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::L(l) => json!({"L": l.iter().map(ddb_json).collect::<Vec<_>>()}),
        AttributeValue::M(m) => {
            json!({"M": m.iter().map(|(k, v)| (k.clone(), ddb_json(v))).collect::<serde_json::Map<_, _>>()})
        }
        other => panic!("unexpected attribute {other:?}"),
    }
}

struct Expiry {
    api: TestApi,
    table: String,
}

impl Expiry {
    async fn new() -> Expiry {
        let api = TestApi::spawn().await;
        let table = api.stack.resolver.refs["NotificationsTable"].clone();
        Expiry { api, table }
    }

    /// Removes notification `id` of `user` the way TTL does; the stream record of it
    /// (`ttl`: by DynamoDB itself, or else by a caller).
    async fn remove(&self, user: &str, id: &str, ttl: bool, seq: u64) -> Value {
        let key = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(format!("USER#{user}"))),
            ("sk".to_owned(), AttributeValue::S(format!("NOTIF#{id}"))),
        ]);
        let old = self
            .api
            .stack
            .clients
            .dynamodb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        let mut record = json!({
            "eventID": format!("e{seq}"), "eventName": "REMOVE", "eventSource": "aws:dynamodb",
            "dynamodb": {
                "Keys": key.iter().map(|(k, v)| (k.clone(), ddb_json(v))).collect::<serde_json::Map<_, _>>(),
                "OldImage": old.iter().map(|(k, v)| (k.clone(), ddb_json(v))).collect::<serde_json::Map<_, _>>(),
                "SequenceNumber": format!("{seq:024}"), "StreamViewType": "OLD_IMAGE"
            }
        });
        if ttl {
            record["userIdentity"] =
                json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
        }
        record
    }

    async fn feed(&self, records: &[Value]) -> Value {
        let batch: StreamBatch = serde_json::from_value(json!({ "Records": records })).unwrap();
        let Some(meterbell::functions::Handler::Stream(handler)) =
            meterbell::functions::by_binary("notification-expiry")
        else {
            panic!("notification-expiry is not a stream consumer");
        };
        let app =
            meterbell_dev::testing::app_with(&self.api.stack, "NotificationExpiryFunction", &[])
                .unwrap();
        serde_json::to_value(handler(app, batch).await).unwrap()
    }

    async fn counts(&self, user: &str) -> (u64, u64) {
        let me = self.api.as_user(user);
        let total = me.notifications("limit=1").await.json["total"]
            .as_u64()
            .unwrap();
        (me.unread().await, total)
    }
}

#[tokio::test]
async fn an_unread_notification_removed_by_ttl_leaves_the_counts_once() {
    let t = Expiry::new().await;
    let u = unique_user("expiry");
    let first = t.api.as_admin().notify(&u, "warning", "old news").await;
    t.api.as_admin().notify(&u, "warning", "fresh news").await;
    assert_eq!(t.counts(&u).await, (2, 2));

    let record = t.remove(&u, first["id"].as_str().unwrap(), true, 1).await;
    let answer = t.feed(std::slice::from_ref(&record)).await;
    let again = t.feed(&[record]).await;

    assert_eq!(answer["batchItemFailures"], json!([]));
    assert_eq!(again["batchItemFailures"], json!([]));
    assert_eq!(t.counts(&u).await, (1, 1), "counted out once");
    let by_type = t.api.as_user(&u).notifications("type=warning").await;
    assert_eq!(by_type.json["total"], 1);
}

#[tokio::test]
async fn a_read_notification_expiring_changes_only_the_total() {
    let t = Expiry::new().await;
    let u = unique_user("expiry-read");
    let read = t.api.as_admin().notify(&u, "info", "seen").await;
    t.api.as_admin().notify(&u, "info", "unseen").await;
    t.api
        .as_user(&u)
        .mark_read(read["id"].as_str().unwrap())
        .await;

    let record = t.remove(&u, read["id"].as_str().unwrap(), true, 2).await;
    t.feed(&[record]).await;

    assert_eq!(t.counts(&u).await, (1, 1));
}

#[tokio::test]
async fn a_notification_covered_by_read_all_expiring_leaves_the_unread_count_at_zero() {
    let t = Expiry::new().await;
    let u = unique_user("expiry-watermark");
    let old = t
        .api
        .as_admin()
        .notify(&u, "error", "before read-all")
        .await;
    t.api.as_user(&u).read_all().await;
    t.api.as_admin().notify(&u, "error", "after read-all").await;
    assert_eq!(t.counts(&u).await, (1, 2));

    let mut record = t.remove(&u, old["id"].as_str().unwrap(), true, 3).await;
    // As TTL may find it: the read-all's housekeeping had not marked it yet.
    record["dynamodb"]["OldImage"]["is_read"] = json!({"BOOL": false});
    t.feed(&[record]).await;

    assert_eq!(t.counts(&u).await, (1, 1));
}

#[tokio::test]
async fn removals_by_callers_and_other_items_are_left_alone() {
    let t = Expiry::new().await;
    let u = unique_user("expiry-ignored");
    let n = t
        .api
        .as_admin()
        .notify(&u, "info", "deleted by a caller")
        .await;
    t.api.as_admin().notify(&u, "info", "kept").await;

    let by_caller = t.remove(&u, n["id"].as_str().unwrap(), false, 4).await;
    let counters = json!({"eventName": "REMOVE", "userIdentity": {"type": "Service",
        "principalId": "dynamodb.amazonaws.com"}, "dynamodb": {"SequenceNumber": "5",
        "OldImage": {"pk": {"S": format!("USER#{u}")}, "sk": {"S": "JOB#x"}}}});
    let answer = t.feed(&[by_caller, counters]).await;

    assert_eq!(answer["batchItemFailures"], json!([]));
    assert_eq!(
        t.counts(&u).await,
        (2, 2),
        "the raw delete bypassed the route, so nothing corrected the counters"
    );
}
