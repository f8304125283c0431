//! The sample events in `events/` for the notification functions answer as `sam local invoke`
//! would: parsed exactly as the Lambda runtime parses them, handed to the function's handler
//! with the environment the template gives it.

use aws_lambda_events::sqs::SqsEvent;
use meterbell::functions::{by_binary, Handler};
use meterbell_dev::testing::{app, stack};

/// (function, binary, the statuses its sample event may get on a stack used before)
const FUNCTIONS: &[(&str, &str, &[u16])] = &[
    ("NotificationsListFunction", "notifications-list", &[200]),
    (
        "NotificationsCreateFunction",
        "notifications-create",
        &[201],
    ),
    ("NotificationReadFunction", "notification-read", &[404]),
    (
        "NotificationsReadAllFunction",
        "notifications-read-all",
        &[200],
    ),
    ("NotificationDeleteFunction", "notification-delete", &[404]),
    (
        "NotificationDeliveriesFunction",
        "notification-deliveries",
        &[404],
    ),
    ("PreferencesGetFunction", "preferences-get", &[200]),
    ("PreferencesPutFunction", "preferences-put", &[200]),
    ("WebhooksCreateFunction", "webhooks-create", &[201, 409]),
    ("WebhooksListFunction", "webhooks-list", &[200]),
    ("WebhookDeleteFunction", "webhook-delete", &[404]),
];

fn event(binary: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/events/{binary}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn each_http_sample_event_gets_the_answer_its_route_gives() {
    let stack = stack().await;
    for (logical_id, binary, status) in FUNCTIONS {
        let Some(Handler::Http(handler)) = by_binary(binary) else {
            panic!("{binary} is not an HTTP function");
        };
        let req = lambda_http::request::from_str(&event(binary)).unwrap();

        let response = handler(app(&stack, logical_id), req).await;

        let got = response.status().as_u16();
        assert!(status.contains(&got), "events/{binary}.json: {got}");
    }
}

#[tokio::test]
async fn each_queue_sample_event_is_handled_without_failures() {
    let stack = stack().await;
    for (logical_id, binary) in [
        ("NotificationDispatcherFunction", "notification-dispatcher"),
        ("EmailSenderFunction", "email-sender"),
        ("WebhookSenderFunction", "webhook-sender"),
    ] {
        let Some(Handler::Sqs(handler)) = by_binary(binary) else {
            panic!("{binary} is not a queue consumer");
        };
        let batch: SqsEvent = serde_json::from_str(&event(binary)).unwrap();

        let response = handler(app(&stack, logical_id), batch).await;

        assert!(
            response.batch_item_failures.is_empty(),
            "events/{binary}.json: {:?}",
            response.batch_item_failures
        );
    }
}
