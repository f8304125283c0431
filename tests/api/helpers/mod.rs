//! Helpers of the notification integration tests: routes called in-process, queues of the test's
//! own (so a test's consumers and its special settings never meet another test's messages),
//! queue pumping as Lambda's event source mapping does, moto's recorded emails, and bulk inboxes.
#![allow(dead_code)]

mod api;
mod events;

pub use api::{Caller, TestApi};
pub use events::{midnight_days_ago, minutes_ago, UsageEventBuilder};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use futures::StreamExt;
use meterbell::notifications::notification::{Notification, NotificationType};
use meterbell::notifications::store::accounts::Accounts;
use meterbell::notifications::store::Notifications;
use meterbell::platform::domain::UserId;
use meterbell::App;
use meterbell_dev::poller::Consumer;
use meterbell_dev::stack::{Endpoints, LocalStack};
use meterbell_dev::testing::{app_with, request, token, unique_user, Reply};
use serde_json::Value;

pub fn admin() -> String {
    token("ops-admin", &["admin"])
}

/// A fresh user and their token.
pub fn user(prefix: &str) -> (String, String) {
    let id = unique_user(prefix);
    let t = token(&id, &[]);
    (id, t)
}

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

/// A request through the template's routes.
pub async fn call(
    stack: &LocalStack,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let body = body.map(|b| b.to_string());
    request(
        stack,
        method,
        &format!("/prod/api/v1{path}"),
        token,
        body.as_deref(),
    )
    .await
    .unwrap()
}

/// A notification for `user`, created through the admin route.
pub async fn create_for(stack: &LocalStack, user: &str, kind: &str, title: &str) -> Value {
    let reply = call(
        stack,
        "POST",
        "/notifications",
        Some(&admin()),
        Some(
            serde_json::json!({"user_id": user, "type": kind, "title": title,
            "message": format!("{title} message")}),
        ),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.json);
    reply.json
}

/// Every notification of the user's inbox, following the cursor.
pub async fn whole_inbox(stack: &LocalStack, token: &str, filter: &str) -> Vec<Value> {
    let mut out = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/notifications?limit=100{filter}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let reply = call(stack, "GET", &path, Some(token), None).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        out.extend(
            reply.json["notifications"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
        match reply.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

pub async fn unread_count(stack: &LocalStack, token: &str) -> u64 {
    let reply = call(
        stack,
        "GET",
        "/notifications/unread-count",
        Some(token),
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    reply.json["unread_count"].as_u64().unwrap()
}

// ------------------------------------------------------------------------ queues

/// Queues of one test, each main queue with its dead-letter queue.
pub struct Queues {
    pub jobs: String,
    pub jobs_dlq: String,
    pub email: String,
    pub email_dlq: String,
    pub webhook: String,
    pub webhook_dlq: String,
}

/// A queue named after `name` with its own dead-letter queue: (queue URL, DLQ URL).
pub async fn queue_pair(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    max_receive: u32,
    visibility: u32,
) -> (String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq-{id}"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let policy =
        serde_json::json!({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(format!("{name}-{id}"))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, policy)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (queue, dlq)
}

/// Fresh queues; a message is dead-lettered after `max_receive` deliveries.
pub async fn queues(stack: &LocalStack, max_receive: u32) -> Queues {
    let sqs = &stack.clients.sqs;
    let (jobs, jobs_dlq) = queue_pair(sqs, "jobs", max_receive, 2).await;
    let (email, email_dlq) = queue_pair(sqs, "email", max_receive, 1).await;
    let (webhook, webhook_dlq) = queue_pair(sqs, "webhook", max_receive, 1).await;
    Queues {
        jobs,
        jobs_dlq,
        email,
        email_dlq,
        webhook,
        webhook_dlq,
    }
}

/// The App of function `logical_id`, configured for the test's queues and `extra` settings.
pub fn app_for(
    stack: &LocalStack,
    logical_id: &str,
    q: &Queues,
    extra: &[(&str, &str)],
) -> Arc<App> {
    let mut overrides = vec![
        ("NOTIFICATION_JOBS_QUEUE_URL", q.jobs.as_str()),
        ("NOTIFICATION_JOBS_DLQ_URL", q.jobs_dlq.as_str()),
        ("EMAIL_QUEUE_URL", q.email.as_str()),
        ("WEBHOOK_QUEUE_URL", q.webhook.as_str()),
    ];
    overrides.extend_from_slice(extra);
    app_with(stack, logical_id, &overrides).unwrap()
}

/// Like [`app_for`], with SES at `ses_endpoint` (a fake) and no SDK-level retries.
pub fn app_with_ses(
    stack: &LocalStack,
    logical_id: &str,
    q: &Queues,
    extra: &[(&str, &str)],
    ses_endpoint: &str,
) -> Arc<App> {
    let function = stack.template.function(logical_id).unwrap();
    let mut env = stack
        .resolver
        .environment(&stack.template, function)
        .unwrap();
    env.insert("EMAIL_QUEUE_URL".into(), q.email.clone());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let config = meterbell::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let ses = aws_sdk_ses::Client::from_conf(
        aws_sdk_ses::config::Builder::from(&stack.clients.sdk)
            .endpoint_url(ses_endpoint)
            .retry_config(aws_sdk_ses::config::retry::RetryConfig::standard().with_max_attempts(1))
            .build(),
    );
    App::with_clients(
        config,
        stack.clients.dynamodb.clone(),
        stack.clients.sqs.clone(),
        ses,
    )
    .unwrap()
}

/// The delivery attempts of a notification, through the route.
pub async fn deliveries(stack: &LocalStack, token: &str, id: &str) -> Vec<Value> {
    let reply = call(
        stack,
        "GET",
        &format!("/notifications/{id}/deliveries"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["deliveries"].as_array().unwrap().clone()
}

/// The consumer of function `logical_id` on `queue_url`, as the template declares it.
pub fn consumer(stack: &LocalStack, logical_id: &str, queue_url: &str, app: Arc<App>) -> Consumer {
    let function = stack.template.function(logical_id).unwrap();
    let handler = match meterbell::functions::by_binary(&function.binary) {
        Some(meterbell::functions::Handler::Sqs(h)) => h,
        _ => panic!("{logical_id} is not a queue consumer"),
    };
    Consumer {
        function: logical_id.to_owned(),
        queue_url: queue_url.to_owned(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:test".into(),
        source: function.queue_sources[0].clone(),
        handler,
        app,
    }
}

/// The dispatcher, email sender and webhook sender on the test's queues.
pub fn pipeline(stack: &LocalStack, q: &Queues, extra: &[(&str, &str)]) -> Vec<Consumer> {
    vec![
        consumer(
            stack,
            "NotificationDispatcherFunction",
            &q.jobs,
            app_for(stack, "NotificationDispatcherFunction", q, extra),
        ),
        consumer(
            stack,
            "EmailSenderFunction",
            &q.email,
            app_for(stack, "EmailSenderFunction", q, extra),
        ),
        consumer(
            stack,
            "WebhookSenderFunction",
            &q.webhook,
            app_for(stack, "WebhookSenderFunction", q, extra),
        ),
    ]
}

/// Polls the consumers until every one of their queues is empty (retries included), or panics
/// after `timeout`.
pub async fn drain(stack: &LocalStack, consumers: &[Consumer], timeout: Duration) {
    let sqs = &stack.clients.sqs;
    let deadline = Instant::now() + timeout;
    loop {
        let mut received = 0;
        for c in consumers {
            received += c.poll_once(sqs, Duration::ZERO).await.unwrap().0;
        }
        if received == 0 {
            let mut left = 0;
            for c in consumers {
                left += count(sqs, &c.queue_url).await;
            }
            if left == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "queues not drained in {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub async fn send(stack: &LocalStack, queue: &str, body: &str) {
    stack
        .clients
        .sqs
        .send_message()
        .queue_url(queue)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

/// Messages on `url`, visible or in flight.
pub async fn count(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let n = |k: &QueueAttributeName| {
        attrs
            .get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    n(&QueueAttributeName::ApproximateNumberOfMessages)
        + n(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
}

/// Takes every visible message off `url` (with its attributes).
pub async fn take_all(stack: &LocalStack, url: &str) -> Vec<Message> {
    let mut out = vec![];
    loop {
        let got = stack
            .clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            return out;
        }
        for m in &got {
            stack
                .clients
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
        out.extend(got);
    }
}

// ------------------------------------------------------------------------ moto's SES

/// The emails moto's SES accepted for `to`: (subject, body, source).
pub async fn emails_to(to: &str) -> Vec<(String, String, String)> {
    let endpoints = Endpoints::from_env().unwrap();
    let url = format!("{}/moto-api/data.json", endpoints.ses.trim_end_matches('/'));
    let data: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .map(|m| {
            (
                m["subject"].as_str().unwrap_or_default().to_owned(),
                m["body"].as_str().unwrap_or_default().to_owned(),
                m["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------------ bulk inboxes

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
