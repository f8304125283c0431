//! The `UsageEventsQueue` consumer over real SQS (moto) and DynamoDB Local: exactly-once under
//! re-delivery and retries, partial batch failures, and malformed messages dead-lettered with
//! their reason without blocking their batch.

use std::time::{Duration as StdDuration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{Duration, Utc};
use meterbell::analytics::consumer::usage_consumer;
use meterbell_dev::poller::Consumer;
use meterbell_dev::stack::LocalStack;
use meterbell_dev::template::QueueSource;
use meterbell_dev::testing::{app, app_with, unique_user};
use serde_json::{json, Value};

use crate::helpers::{send, TestApi, UsageEventBuilder};

/// A request of two minutes ago without the optional endpoint and token counts.
fn event(id: &str, user: &str, credits: i64) -> Value {
    UsageEventBuilder::request()
        .id(id)
        .user(user)
        .at(Utc::now() - Duration::minutes(2))
        .latency_ms(120)
        .credits(credits)
        .cost("0.002")
        .without("endpoint")
        .without("input_tokens")
        .without("output_tokens")
        .build()
}

/// A private queue with a one-second visibility timeout, so retries happen within the test.
async fn queue(stack: &LocalStack) -> String {
    let name = format!("usage-test-{}", uuid::Uuid::new_v4().simple());
    stack
        .clients
        .sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

fn consumer(app: std::sync::Arc<meterbell::App>, queue: &str) -> Consumer {
    Consumer {
        function: "UsageConsumerFunction".into(),
        queue_url: queue.to_owned(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:usage-test".into(),
        source: QueueSource {
            queue: "UsageEventsQueue".into(),
            batch_size: 10,
            report_batch_item_failures: true,
        },
        handler: usage_consumer,
        app,
    }
}

async fn drain(stack: &LocalStack, c: &Consumer) {
    let deadline = Instant::now() + StdDuration::from_secs(20);
    loop {
        let (received, failed) = c
            .poll_once(&stack.clients.sqs, StdDuration::from_secs(1))
            .await
            .unwrap();
        if received == 0 && failed == 0 {
            let attrs = stack
                .clients
                .sqs
                .get_queue_attributes()
                .queue_url(&c.queue_url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .unwrap()
                .attributes
                .unwrap();
            let n = |k| {
                attrs
                    .get(&k)
                    .and_then(|v: &String| v.parse::<u32>().ok())
                    .unwrap_or(0)
            };
            if n(QueueAttributeName::ApproximateNumberOfMessages)
                + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                == 0
            {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the queue never drained");
    }
}

/// The user's (requests, credits) of the last day, from the summary route.
async fn requests_of(api: &TestApi, user: &str) -> (i64, i64) {
    let r = api.as_user(user).summary("days=1").await;
    (
        r.json["usage"]["total_requests"].as_i64().unwrap(),
        r.json["usage"]["total_credits"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_message_delivered_twice_is_counted_once() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let user = unique_user("twice");
    let q = queue(stack).await;
    let body = json!([
        event(&format!("{user}-a"), &user, 1),
        event(&format!("{user}-b"), &user, 2),
        event(&format!("{user}-c"), &user, 4)
    ])
    .to_string();
    send(stack, &q, &body).await;
    send(stack, &q, &body).await;

    drain(stack, &consumer(app(stack, "UsageConsumerFunction"), &q)).await;

    assert_eq!(requests_of(&api, &user).await, (3, 7));
}

#[tokio::test]
async fn a_failed_batch_is_retried_and_an_event_written_before_a_crash_counts_once() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let user = unique_user("retry");
    let q = queue(stack).await;
    let (first, second) = (
        event(&format!("{user}-1"), &user, 10),
        event(&format!("{user}-2"), &user, 20),
    );
    send(stack, &q, &json!([first.clone(), second]).to_string()).await;
    // An attempt that cannot reach its rollups table fails the whole message back to the queue.
    let broken = app_with(
        stack,
        "UsageConsumerFunction",
        &[("ROLLUPS_TABLE", "NoSuchTable")],
    )
    .unwrap();
    let (received, failed) = consumer(broken, &q)
        .poll_once(&stack.clients.sqs, StdDuration::from_secs(1))
        .await
        .unwrap();
    assert_eq!((received, failed), (1, 1));
    // Meanwhile the first event was recorded by an attempt that crashed before deleting its message.
    let ingest = api
        .as_caller("svc", &["service"])
        .post_events(&json!([first]))
        .await;
    assert_eq!(ingest.json["accepted"], 1);

    drain(stack, &consumer(app(stack, "UsageConsumerFunction"), &q)).await;

    assert_eq!(requests_of(&api, &user).await, (2, 30));
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_with_their_reason_without_blocking_the_batch() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let user = unique_user("mixed");
    let q = queue(stack).await;
    let marker = format!("{user}-bad");
    send(stack, &q, &format!("not json {marker}")).await;
    send(
        stack,
        &q,
        &event(&format!("{user}-ok"), &user, 5).to_string(),
    )
    .await;
    send(
        stack,
        &q,
        &json!({"event_id": marker, "user_id": user, "kind": "request"}).to_string(),
    )
    .await;

    drain(stack, &consumer(app(stack, "UsageConsumerFunction"), &q)).await;

    assert_eq!(requests_of(&api, &user).await, (1, 5));

    let dlq = stack
        .queue_url("UsageEventsDeadLetterQueue")
        .unwrap()
        .to_owned();
    let mut reasons = vec![];
    let deadline = Instant::now() + StdDuration::from_secs(15);
    while reasons.len() < 2 && Instant::now() < deadline {
        let got = stack
            .clients
            .sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        for m in got.messages.unwrap_or_default() {
            if m.body.as_deref().unwrap_or_default().contains(&marker) {
                let reason = m
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get("reason"))
                    .and_then(|v| v.string_value.clone())
                    .unwrap_or_default();
                reasons.push(reason);
                stack
                    .clients
                    .sqs
                    .delete_message()
                    .queue_url(&dlq)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    reasons.sort();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0].contains("body is not JSON"), "{reasons:?}");
    assert!(reasons[1].contains("timestamp"), "{reasons:?}");
}

#[tokio::test]
async fn the_sample_sqs_event_is_consumed_without_failures() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let raw = std::fs::read_to_string(format!(
        "{}/events/usage-consumer.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut event: aws_lambda_events::sqs::SqsEvent = serde_json::from_str(&raw).unwrap();
    // The sample's timestamps are fixed; move them into the retention window.
    for record in &mut event.records {
        let mut body: Value = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
        let now = (Utc::now() - Duration::minutes(1)).to_rfc3339();
        match &mut body {
            Value::Array(list) => list.iter_mut().for_each(|e| e["timestamp"] = json!(now)),
            other => other["timestamp"] = json!(now),
        }
        record.body = Some(body.to_string());
    }

    let response = usage_consumer(app(stack, "UsageConsumerFunction"), event).await;

    assert!(response.batch_item_failures.is_empty());
}
