//! The local queue poller behaves as Lambda's SQS event source mapping: partial batch failures
//! are retried through the visibility timeout and end in the dead-letter queue by the redrive
//! policy, while the rest of the batch is deleted once. Against moto's SQS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use meterbell::platform::handler::SqsFuture;
use meterbell_dev::poller::Consumer;
use meterbell_dev::template::QueueSource;
use meterbell_dev::testing::{app, stack};

use crate::helpers::{count, queue_pair};

static SEEN: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

fn seen(body: &str) -> usize {
    SEEN.lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(body).copied())
        .unwrap_or(0)
}

/// Fails every message whose body starts with "poison", succeeds the rest.
fn fail_poison(_app: Arc<meterbell::App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let mut failures = vec![];
        for record in event.records {
            let body = record.body.unwrap_or_default();
            *SEEN
                .lock()
                .unwrap()
                .get_or_insert_with(HashMap::new)
                .entry(body.clone())
                .or_default() += 1;
            if body.starts_with("poison") {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.unwrap_or_default();
                failures.push(failure);
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        response
    })
}

/// A fresh queue with a one-second visibility timeout and a dead-letter queue, and an id that
/// keeps this test's message bodies apart.
async fn queue_with_dlq(sqs: &aws_sdk_sqs::Client, max_receive: u32) -> (String, String, String) {
    let (queue, dlq) = queue_pair(sqs, "poller", max_receive, 1).await;
    (queue, dlq, uuid::Uuid::new_v4().simple().to_string())
}

#[tokio::test]
async fn a_failed_message_is_retried_then_dead_lettered_while_its_batch_mates_are_done_once() {
    let stack = stack().await;
    let sqs = stack.clients.sqs.clone();
    let (queue, dlq, id) = queue_with_dlq(&sqs, 2).await;
    for body in [
        format!("ok-1-{id}"),
        format!("poison-{id}"),
        format!("ok-2-{id}"),
    ] {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let consumer = Consumer {
        function: "TestConsumer".into(),
        queue_url: queue.clone(),
        queue_arn: "arn:aws:sqs:us-east-1:123456789012:test".into(),
        source: QueueSource {
            queue: "Test".into(),
            batch_size: 10,
            report_batch_item_failures: true,
        },
        handler: fail_poison,
        app: app(&stack, "UnreadCountFunction"),
    };

    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&sqs, &dlq).await == 0 {
        assert!(
            Instant::now() < deadline,
            "the poison message never reached the dead-letter queue"
        );
        consumer
            .poll_once(&sqs, Duration::from_secs(1))
            .await
            .unwrap();
    }

    assert_eq!(seen(&format!("ok-1-{id}")), 1);
    assert_eq!(seen(&format!("ok-2-{id}")), 1);
    assert_eq!(
        seen(&format!("poison-{id}")),
        2,
        "delivered maxReceiveCount times"
    );
    assert_eq!(count(&sqs, &queue).await, 0);
    let dead = sqs
        .receive_message()
        .queue_url(&dlq)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap();
    assert_eq!(
        dead[0].body.as_deref(),
        Some(format!("poison-{id}").as_str())
    );
}

#[tokio::test]
async fn without_report_batch_item_failures_a_returned_failure_is_ignored_as_lambda_does() {
    let stack = stack().await;
    let sqs = stack.clients.sqs.clone();
    let (queue, dlq, id) = queue_with_dlq(&sqs, 2).await;
    sqs.send_message()
        .queue_url(&queue)
        .message_body(format!("poison-x-{id}"))
        .send()
        .await
        .unwrap();
    let consumer = Consumer {
        function: "TestConsumer".into(),
        queue_url: queue.clone(),
        queue_arn: String::new(),
        source: QueueSource {
            queue: "Test".into(),
            batch_size: 10,
            report_batch_item_failures: false,
        },
        handler: fail_poison,
        app: app(&stack, "UnreadCountFunction"),
    };

    let (received, failed) = consumer
        .poll_once(&sqs, Duration::from_secs(1))
        .await
        .unwrap();

    assert_eq!((received, failed), (1, 0));
    assert_eq!(count(&sqs, &queue).await, 0);
    assert_eq!(count(&sqs, &dlq).await, 0);
}
