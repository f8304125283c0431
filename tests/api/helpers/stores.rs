//! The tables behind the routes, for what a route does not show: counters, endpoints stored
//! directly, and bulk inboxes.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use futures::StreamExt;
use meterbell::notifications::notification::{Notification, NotificationType};
use meterbell::notifications::store::accounts::Accounts;
use meterbell::notifications::store::Notifications;
use meterbell::platform::domain::UserId;
use meterbell_dev::stack::LocalStack;

pub fn uid(raw: &str) -> UserId {
    UserId::parse(raw).unwrap()
}

pub fn notifications(stack: &LocalStack) -> Notifications {
    Notifications::new(
        stack.clients.dynamodb.clone(),
        stack.resolver.refs["NotificationsTable"].clone(),
    )
}

pub fn accounts(stack: &LocalStack) -> Accounts {
    Accounts::new(
        stack.clients.dynamodb.clone(),
        stack.resolver.refs["AccountsTable"].clone(),
    )
}

/// Gives a new user `n` unread notifications directly (BatchWriteItem, then the counters as
/// the insert transaction would have left them): a fixture for large inboxes.
pub async fn seed_inbox(stack: &LocalStack, user: &str, n: usize) -> Vec<uuid::Uuid> {
    let table = stack.resolver.refs["NotificationsTable"].clone();
    let client = stack.clients.dynamodb.clone();
    let expires = (chrono::Utc::now() + chrono::Duration::days(1)).timestamp();
    let notes: Vec<Notification> = (0..n)
        .map(|i| {
            Notification::new(
                uid(user),
                NotificationType::Info,
                "bulk",
                &format!("bulk {i}"),
                None,
            )
        })
        .collect();
    let ids: Vec<uuid::Uuid> = notes.iter().map(|x| x.id).collect();
    let batches: Vec<Vec<WriteRequest>> = notes
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|x| {
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(Notifications::item(x, expires)))
                                .build()
                                .unwrap(),
                        )
                        .build()
                })
                .collect()
        })
        .collect();
    let work: Vec<_> = batches
        .into_iter()
        .map(|batch| {
            let client = client.clone();
            let table = table.clone();
            async move {
                let mut pending = batch;
                while !pending.is_empty() {
                    let out = client
                        .batch_write_item()
                        .request_items(&table, pending)
                        .send()
                        .await
                        .unwrap();
                    pending = out
                        .unprocessed_items
                        .and_then(|mut m| m.remove(&table))
                        .unwrap_or_default();
                }
            }
        })
        .collect();
    futures::stream::iter(work)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let last = ids.iter().max().unwrap();
    let names: HashMap<String, String> = [
        ("#last", "last_sk"),
        ("#t", "total"),
        ("#ti", "total_info"),
        ("#u", "unread"),
        ("#ui", "unread_info"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    client
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(format!("USER#{user}")))
        .key("sk", AttributeValue::S("COUNTERS".into()))
        .update_expression("SET #last = :last ADD #t :n, #ti :n, #u :n, #ui :n")
        .set_expression_attribute_names(Some(names))
        .expression_attribute_values(":last", AttributeValue::S(format!("NOTIF#{last}")))
        .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
        .send()
        .await
        .unwrap();
    ids
}

/// A fresh, empty AccountsTable of the template's shape (its keys and indexes), for a test whose
/// scheduled runs read every user's due deliveries and must not meet another test's.
pub async fn fresh_accounts_table(stack: &LocalStack) -> String {
    let client = &stack.clients.dynamodb;
    let shape = client
        .describe_table()
        .table_name(&stack.resolver.refs["AccountsTable"])
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let name = format!("AccountsTable-{}", uuid::Uuid::new_v4().simple());
    let indexes = shape.global_secondary_indexes().iter().map(|g| {
        aws_sdk_dynamodb::types::GlobalSecondaryIndex::builder()
            .index_name(g.index_name().unwrap())
            .set_key_schema(Some(g.key_schema().to_vec()))
            .set_projection(g.projection().cloned())
            .build()
            .unwrap()
    });
    client
        .create_table()
        .table_name(&name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .set_key_schema(Some(shape.key_schema().to_vec()))
        .set_attribute_definitions(Some(shape.attribute_definitions().to_vec()))
        .set_global_secondary_indexes(Some(indexes.collect()).filter(|v: &Vec<_>| !v.is_empty()))
        .send()
        .await
        .unwrap();
    name
}
