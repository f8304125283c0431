//! Queues of the test's own (so a test's consumers and its special settings never meet another
//! test's messages), the consumers of the template on them, and queue pumping as Lambda's event
//! source mapping does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use meterbell::App;
use meterbell_dev::poller::Consumer;
use meterbell_dev::stack::LocalStack;
use meterbell_dev::testing::app_with;

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
