//! Test support: the template's stack on the emulators (provisioned once per test process, with
//! fresh clients per test so each test's runtime owns its connections), tokens, and requests
//! answered by the local router exactly as `make dev` answers them.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use meterbell::App;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::local_api::LocalResponse;
use crate::stack::{Clients, Endpoints, LocalStack};
use crate::template::{Resolver, Template};
use crate::tokens::{mint, DEV_CURSOR_SECRET, DEV_JWT_SECRET};

static PROVISIONED: OnceCell<Resolver> = OnceCell::const_new();

pub fn template() -> Template {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    match Template::load(&path) {
        Ok(t) => t,
        Err(e) => panic!("template.yaml does not load: {e:#}"),
    }
}

/// The local stack for one test. Panics with the way out when the emulators are not running:
/// an integration test never skips silently.
pub async fn stack() -> LocalStack {
    // Logs go through the test harness, so a failing test shows its own and others stay quiet.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let endpoints = Endpoints::from_env().unwrap_or_else(|e| panic!("{e:#}"));
    let clients = Clients::local(&endpoints);
    let resolver = PROVISIONED
        .get_or_try_init(|| async {
            let mut params = BTreeMap::new();
            params.insert("JwtSecret".to_owned(), DEV_JWT_SECRET.to_owned());
            params.insert("CursorSecret".to_owned(), DEV_CURSOR_SECRET.to_owned());
            for (name, value) in crate::tokens::DEV_NOTIFICATION_PARAMS {
                params.insert((*name).to_owned(), (*value).to_owned());
            }
            // Tests retry failed webhooks after a second, not after the deployed schedule.
            params.insert("WebhookRetryDelays".to_owned(), "1".to_owned());
            LocalStack::provision(template(), clients.clone(), &params)
                .await
                .map(|s| s.resolver)
        })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot provision the local stack on {endpoints:?}: {e:#}\n\
                 run `make test`, or `scripts/stack.sh start && source scripts/env.sh` first"
            )
        })
        .clone();
    LocalStack {
        template: template(),
        resolver,
        clients,
    }
}

/// The [`App`] of the template's function `logical_id`, as the local runner builds it.
pub fn app(stack: &LocalStack, logical_id: &str) -> Arc<App> {
    let function = stack
        .template
        .function(logical_id)
        .unwrap_or_else(|| panic!("no function {logical_id} in template.yaml"));
    stack.app_for(function).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A development token for `sub` with `roles`, valid for an hour.
pub fn token(sub: &str, roles: &[&str]) -> String {
    mint(DEV_JWT_SECRET, sub, roles, 3600).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A unique user id, so tests sharing the emulators never see each other's data.
pub fn unique_user(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// A response as a test reads it.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub json: Value,
    /// The body as sent, for checking how numbers are written (`0.0150`, not `0.015`).
    pub text: String,
}

impl Reply {
    /// The JSON text at `path` exactly as written, e.g. `reply.raw(&["usage", "total_cost_usd"])`;
    /// array positions are given as numbers.
    pub fn raw(&self, path: &[&str]) -> String {
        use serde_json::value::RawValue;
        let mut current: Box<RawValue> = match RawValue::from_string(self.text.clone()) {
            Ok(v) => v,
            Err(e) => panic!("body is not JSON: {e}"),
        };
        for step in path {
            current = match step.parse::<usize>() {
                Ok(i) => serde_json::from_str::<Vec<Box<RawValue>>>(current.get())
                    .ok()
                    .and_then(|mut v| (i < v.len()).then(|| v.swap_remove(i)))
                    .unwrap_or_else(|| panic!("no [{i}] in {}", current.get())),
                Err(_) => serde_json::from_str::<std::collections::HashMap<String, Box<RawValue>>>(
                    current.get(),
                )
                .ok()
                .and_then(|mut m| m.remove(*step))
                .unwrap_or_else(|| panic!("no {step} in {}", current.get())),
            };
        }
        current.get().to_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl From<LocalResponse> for Reply {
    fn from(r: LocalResponse) -> Self {
        let json = if r.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&r.body).unwrap_or(Value::Null)
        };
        let text = String::from_utf8_lossy(&r.body).into_owned();
        Reply {
            status: r.status,
            headers: r.headers,
            json,
            text,
        }
    }
}

/// The [`App`] of function `logical_id` with some environment variables replaced, e.g. another
/// JWT algorithm or key.
pub fn app_with(
    stack: &LocalStack,
    logical_id: &str,
    overrides: &[(&str, &str)],
) -> Result<Arc<App>> {
    let function = stack
        .template
        .function(logical_id)
        .ok_or_else(|| anyhow::anyhow!("no function {logical_id}"))?;
    let mut env = stack.resolver.environment(&stack.template, function)?;
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = meterbell::Config::from_lookup(|name| env.get(name).cloned())?;
    Ok(App::with_clients(
        config,
        stack.clients.dynamodb.clone(),
        stack.clients.sqs.clone(),
        stack.clients.ses.clone(),
    )?)
}
