//! The OpenAPI document as a checker: every answer the typed client gets is held against the
//! operation and status the document declares for it, so a response field the document lacks
//! (response objects are closed), a missing status or a wrong type fails the test that saw it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

/// The document the API serves.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        serde_json::from_str(meterbell::portal::openapi::DOCUMENT)
            .unwrap_or_else(|e| panic!("docs/openapi.json is not JSON: {e}"))
    })
}

/// The document's path template matching `path` (no stage, no query), e.g.
/// `/api/v1/notifications/{id}/read` for `/api/v1/notifications/0192.../read`.
pub fn template_of(path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object()?;
    // A literal segment beats a parameter (`read-all` is not an `{id}`).
    let mut best: Option<(&'static str, usize)> = None;
    for template in paths.keys() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literals = 0;
        let fits = parts.iter().zip(&segments).all(|(t, s)| {
            if t.starts_with('{') {
                !s.is_empty()
            } else {
                literals += 1;
                t == s
            }
        });
        if fits && best.is_none_or(|(_, l)| literals > l) {
            best = Some((template.as_str(), literals));
        }
    }
    best.map(|(t, _)| t)
}

/// Panics unless the answer `status`/`body` to `method path` is one the document declares.
/// Paths the document does not name (API Gateway's own refusals) and 5xx (bugs, which other
/// assertions catch) are not checked.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    let Some(template) = template_of(path) else {
        return;
    };
    let method = method.to_ascii_lowercase();
    let Some(operation) = document()["paths"][template].get(&method) else {
        return;
    };
    if status >= 500 {
        return;
    }
    let code = status.to_string();
    let range = format!("{}XX", status / 100);
    let response = operation["responses"]
        .get(&code)
        .or_else(|| operation["responses"].get(&range))
        .unwrap_or_else(|| {
            panic!("docs/openapi.json: {method} {template} does not declare status {status}")
        });
    let response = resolve(response);
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        assert!(
            body.is_empty(),
            "docs/openapi.json: {method} {template} {status} declares no body, got {}",
            String::from_utf8_lossy(body)
        );
        return;
    };
    let media = content_type
        .and_then(|c| c.split(';').next())
        .unwrap_or("")
        .trim();
    let declared = content.get(media).unwrap_or_else(|| {
        panic!("docs/openapi.json: {method} {template} {status} does not declare {media:?}")
    });
    if media != "application/json" {
        return;
    }
    let instance: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{method} {template} {status}: body is not JSON: {e}"));
    let validator = validator(
        &format!("{method} {template} {status}"),
        &declared["schema"],
    );
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(5)
        .collect();
    assert!(
        errors.is_empty(),
        "the answer to {method} {template} ({status}) breaks docs/openapi.json:\n  {}\nbody: {instance}",
        errors.join("\n  ")
    );
}

fn resolve(value: &Value) -> &Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            document()
                .pointer(pointer)
                .unwrap_or_else(|| panic!("docs/openapi.json: {reference} points nowhere"))
        }
        None => value,
    }
}

/// One compiled validator per operation and status; the document's components ride along so
/// `$ref`s resolve.
pub fn validator(key: &str, schema: &Value) -> Arc<jsonschema::Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry(key.to_owned())
        .or_insert_with(|| {
            let mut root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": document()["components"].clone(),
            });
            if let (Some(root), Some(schema)) = (root.as_object_mut(), schema.as_object()) {
                root.extend(schema.clone());
            }
            Arc::new(
                jsonschema::validator_for(&root)
                    .unwrap_or_else(|e| panic!("docs/openapi.json: {key}: bad schema: {e}")),
            )
        })
        .clone()
}
