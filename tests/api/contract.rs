//! The OpenAPI document (`docs/openapi.json`, served at `GET /api/v1/openapi.json`) cannot
//! drift: every route of template.yaml is in it, its schemas compile, the message contracts
//! accept the README's examples, and every answer the other tests see is checked against it
//! by the typed client (`helpers::contract`).

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::contract::{document, template_of, validator};
use crate::helpers::TestApi;

fn documented_operations() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in document()["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn every_route_of_the_template_is_in_the_document_and_the_document_names_no_other() {
    let template = meterbell_dev::testing::template();
    let routes: BTreeSet<(String, String)> = template
        .functions
        .iter()
        .flat_map(|f| f.routes.iter())
        .map(|r| (r.method.to_ascii_uppercase(), r.path.clone()))
        .collect();

    let documented = documented_operations();

    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes missing from docs/openapi.json: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "docs/openapi.json names routes the template lacks: {extra:?}"
    );
}

#[test]
fn every_operation_declares_its_errors_and_every_protected_one_the_bearer_scheme() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"], json!([{"bearerAuth": []}]));
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert_eq!(
                op["responses"]["4XX"]["$ref"], "#/components/responses/Error",
                "{method} {path} must declare the error shape"
            );
            let public = op.get("security") == Some(&json!([]));
            assert_eq!(
                public,
                path == "/api/v1/openapi.json"
                    || path.starts_with("/portal")
                    || path == "/api/v1/unsubscribe",
                "{method} {path}: only the document, the portal's files and the unsubscribe \
                 link (its token is the authorization) are public"
            );
        }
    }
}

#[test]
fn every_schema_of_the_document_compiles() {
    for name in document()["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
    {
        validator(
            &format!("schema {name}"),
            &json!({"$ref": format!("#/components/schemas/{name}")}),
        );
    }
}

#[test]
fn paths_with_ids_find_their_template_and_literal_segments_win() {
    assert_eq!(
        template_of("/api/v1/notifications/read-all"),
        Some("/api/v1/notifications/read-all")
    );
    assert_eq!(
        template_of("/api/v1/notifications/abc/read"),
        Some("/api/v1/notifications/{id}/read")
    );
    assert_eq!(template_of("/api/v1/nowhere"), None);
}

fn valid(schema: &str, instance: &Value) -> bool {
    validator(
        &format!("schema {schema}"),
        &json!({"$ref": format!("#/components/schemas/{schema}")}),
    )
    .is_valid(instance)
}

#[test]
fn the_message_contracts_accept_the_readmes_examples_and_refuse_a_missing_required_field() {
    let event = json!({"event_id": "evt_01J", "user_id": "user123", "timestamp": "2026-11-22T10:04:05Z",
        "kind": "request", "provider": "openai", "model": "gpt-4o", "endpoint": "/v1/chat/completions",
        "status_code": 200, "latency_ms": 850, "input_tokens": 1200, "output_tokens": 300,
        "credits": 150, "cost_usd": 0.0150, "tags": {"project": "search"}, "description": "LLM completion"});
    let job = json!({"job_id": "job_123", "user_id": "user123", "type": "warning", "title": "Low Credits",
        "message": "Your credit balance is low (500 credits remaining).", "data": {"credits_remaining": 500},
        "channels": ["in_app", "email", "webhook"]});
    let payload = json!({"type": "notification.created", "timestamp": "2026-11-24T11:40:59.228Z",
        "data": {"id": "01a20d5b-f198-7149-afa9-bc1e9939360a", "user_id": "demo-user", "type": "warning",
        "title": "Low Credits", "message": "m", "data": {"credits_remaining": 500}, "is_read": false,
        "read_at": null, "created_at": "2026-11-24T11:40:59.160Z"}});

    assert!(valid("UsageEvent", &event));
    assert!(valid("UsageBatch", &json!({"events": [event.clone()]})));
    assert!(valid("NotificationJob", &job));
    assert!(valid("WebhookPayload", &payload));
    let mut no_id = event.clone();
    no_id.as_object_mut().unwrap().remove("event_id");
    assert!(!valid("UsageEvent", &no_id));
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let api = TestApi::spawn().await;

    let reply = api.anonymous().get("/openapi.json").await;

    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(&reply.json, document());
}

#[tokio::test]
async fn the_document_takes_no_query_parameters() {
    let api = TestApi::spawn().await;

    let reply = api.anonymous().get("/openapi.json?v=2").await;

    assert_eq!(reply.status, 400);
    assert_eq!(reply.json["error"]["field"], "v");
}

#[test]
fn an_answer_with_a_field_the_document_lacks_or_an_undeclared_status_fails_the_check() {
    use crate::helpers::contract::check;
    let path = "/api/v1/notifications/unread-count";
    let json = Some("application/json");

    let extra_field = std::panic::catch_unwind(|| {
        check("GET", path, 200, json, br#"{"unread_count": 1, "x": 2}"#)
    });
    let wrong_type =
        std::panic::catch_unwind(|| check("GET", path, 200, json, br#"{"unread_count": "1"}"#));
    let undeclared = std::panic::catch_unwind(|| check("GET", path, 201, json, br#"{}"#));
    let body_on_304 = std::panic::catch_unwind(|| check("GET", path, 304, None, b"{}"));

    assert!(extra_field.is_err());
    assert!(wrong_type.is_err());
    assert!(undeclared.is_err());
    assert!(body_on_304.is_err());
    check("GET", path, 200, json, br#"{"unread_count": 1}"#);
    check("GET", path, 304, None, b"");
}
