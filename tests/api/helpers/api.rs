//! The typed client of the tests: `api.as_user(&alice).summary("days=30").await`. Every request
//! still goes through the template's routes in-process, answered by the local router exactly as
//! `make dev` answers them ([`Router::handle`]); the client only names the routes and the callers.

use std::sync::Arc;

use meterbell::App;
use meterbell_dev::local_api::{Route, Router};
use meterbell_dev::stack::LocalStack;
use meterbell_dev::testing::{app, app_with, stack, token, Reply};
use serde_json::{json, Value};

/// The template's API on the emulators, for one test.
pub struct TestApi {
    pub stack: LocalStack,
    /// `Some`: only this function's routes, served by an App of other settings.
    only: Option<(String, Arc<App>)>,
}

impl TestApi {
    /// The whole API of template.yaml (the stack is provisioned once per test process).
    pub async fn spawn() -> TestApi {
        TestApi {
            stack: stack().await,
            only: None,
        }
    }

    /// Only the routes of function `logical_id`, as the template configures it.
    pub fn function(&self, logical_id: &str) -> TestApi {
        self.function_served_by(logical_id, app(&self.stack, logical_id))
    }

    /// Only the routes of function `logical_id`, with some of its environment replaced: a
    /// deployment of other settings, e.g. `[("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")]`.
    pub fn function_with(&self, logical_id: &str, overrides: &[(&str, &str)]) -> TestApi {
        let app = app_with(&self.stack, logical_id, overrides).unwrap_or_else(|e| panic!("{e:#}"));
        self.function_served_by(logical_id, app)
    }

    /// Only the routes of function `logical_id`, served by `app`.
    pub fn function_served_by(&self, logical_id: &str, app: Arc<App>) -> TestApi {
        TestApi {
            stack: LocalStack {
                template: self.stack.template.clone(),
                resolver: self.stack.resolver.clone(),
                clients: self.stack.clients.clone(),
            },
            only: Some((logical_id.to_owned(), app)),
        }
    }

    /// A user without roles.
    pub fn as_user(&self, user: &str) -> Caller<'_> {
        self.with_token(&token(user, &[]))
    }

    /// An operator with the admin role.
    pub fn as_admin(&self) -> Caller<'_> {
        self.with_token(&admin_token())
    }

    /// The upstream service that reports usage (the service role).
    pub fn as_service(&self) -> Caller<'_> {
        self.with_token(&token("upstream", &["service"]))
    }

    /// `sub` with `roles`.
    pub fn as_caller(&self, sub: &str, roles: &[&str]) -> Caller<'_> {
        self.with_token(&token(sub, roles))
    }

    /// Any bearer token, valid or not.
    pub fn with_token(&self, token: &str) -> Caller<'_> {
        self.with_authorization(&format!("Bearer {token}"))
    }

    /// Any Authorization header, e.g. `Basic dXNlcjpwYXNz`.
    pub fn with_authorization(&self, authorization: &str) -> Caller<'_> {
        Caller {
            api: self,
            authorization: Some(authorization.to_owned()),
            headers: vec![],
        }
    }

    /// No Authorization header.
    pub fn anonymous(&self) -> Caller<'_> {
        Caller {
            api: self,
            authorization: None,
            headers: vec![],
        }
    }

    /// `GET {path}` outside `/api/v1` (the portal's page and files), with no token.
    pub async fn get_page(&self, path: &str) -> Reply {
        self.router()
            .handle("GET", &format!("/prod{path}"), &[], b"")
            .await
            .into()
    }

    fn router(&self) -> Router {
        match &self.only {
            None => Router::from_stack(&self.stack).unwrap_or_else(|e| panic!("{e:#}")),
            Some((logical_id, app)) => {
                let function = self
                    .stack
                    .template
                    .function(logical_id)
                    .unwrap_or_else(|| panic!("no function {logical_id} in template.yaml"));
                let handler = match meterbell::functions::by_binary(&function.binary) {
                    Some(meterbell::functions::Handler::Http(h)) => h,
                    _ => panic!("{logical_id} is not an HTTP function"),
                };
                Router {
                    stage: "prod".into(),
                    routes: function
                        .routes
                        .iter()
                        .map(|r| Route::new(&r.method, &r.path, handler, app.clone()))
                        .collect(),
                    cors: vec![],
                }
            }
        }
    }
}

/// The admin token the notification tests use.
pub fn admin_token() -> String {
    token("ops-admin", &["admin"])
}

/// One caller of the API: the Authorization header it sends and any extra headers.
#[derive(Clone)]
pub struct Caller<'a> {
    api: &'a TestApi,
    authorization: Option<String>,
    headers: Vec<(String, String)>,
}

impl Caller<'_> {
    /// The same caller, sending one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `method` on `/api/v1{path}` (path with its query), with `body` as sent.
    pub async fn send(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(a) = &self.authorization {
            headers.push(("authorization".to_owned(), a.clone()));
        }
        headers.extend(self.headers.iter().cloned());
        let response = self
            .api
            .router()
            .handle(
                method,
                &format!("/prod/api/v1{path}"),
                &headers,
                body.unwrap_or("").as_bytes(),
            )
            .await;
        // Every answer a test sees is also held against the OpenAPI document.
        let bare = path.split('?').next().unwrap_or(path);
        let content_type = response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        super::contract::check(
            method,
            &format!("/api/v1{bare}"),
            response.status,
            content_type,
            &response.body,
        );
        response.into()
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(&body.to_string())).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, Some(&body.to_string())).await
    }

    pub async fn put_empty(&self, path: &str) -> Reply {
        self.send("PUT", path, None).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None).await
    }

    // ---------------------------------------------------------------- analytics

    /// `GET analytics/summary?{query}`.
    pub async fn summary(&self, query: &str) -> Reply {
        self.get(&with_query("/analytics/summary", query)).await
    }

    pub async fn time_series(&self, query: &str) -> Reply {
        self.get(&with_query("/analytics/time-series", query)).await
    }

    pub async fn providers(&self, query: &str) -> Reply {
        self.get(&with_query("/analytics/providers", query)).await
    }

    pub async fn top_models(&self, query: &str) -> Reply {
        self.get(&with_query("/analytics/top-models", query)).await
    }

    pub async fn endpoints(&self, query: &str) -> Reply {
        self.get(&with_query("/analytics/endpoints", query)).await
    }

    pub async fn performance(&self, query: &str) -> Reply {
        self.get(&with_query("/analytics/performance", query)).await
    }

    pub async fn export_csv(&self, query: &str) -> Reply {
        self.get(&with_query("/analytics/export/csv", query)).await
    }

    pub async fn export_json(&self, query: &str) -> Reply {
        self.get(&with_query("/analytics/export/json", query)).await
    }

    pub async fn admin_overview(&self, query: &str) -> Reply {
        self.get(&with_query("/admin/analytics/overview", query))
            .await
    }

    pub async fn admin_top_users(&self, query: &str) -> Reply {
        self.get(&with_query("/admin/analytics/top-users", query))
            .await
    }

    // ---------------------------------------------------------------- ingest

    /// `POST usage/events` with a batch: `{"events": [...]}` or a bare array.
    pub async fn post_events(&self, batch: &Value) -> Reply {
        self.post("/usage/events", batch).await
    }

    /// `POST usage/events` with a body as sent, JSON or not.
    pub async fn post_events_raw(&self, body: &str) -> Reply {
        self.send("POST", "/usage/events", Some(body)).await
    }

    // ---------------------------------------------------------------- the inbox

    /// `POST notifications` (admin).
    pub async fn create_notification(&self, body: &Value) -> Reply {
        self.post("/notifications", body).await
    }

    /// `POST notifications` with a body as sent, JSON or not.
    pub async fn create_notification_raw(&self, body: &str) -> Reply {
        self.send("POST", "/notifications", Some(body)).await
    }

    /// A notification for `user` created through the admin route; panics unless it is a 201.
    pub async fn notify(&self, user: &str, kind: &str, title: &str) -> Value {
        let reply = self
            .create_notification(&json!({"user_id": user, "type": kind, "title": title,
                "message": format!("{title} message")}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.json);
        reply.json
    }

    /// `GET notifications?{query}`.
    pub async fn notifications(&self, query: &str) -> Reply {
        self.get(&with_query("/notifications", query)).await
    }

    /// Every notification of the caller's inbox, following the cursor; `filter` is appended to
    /// the query, e.g. `"&is_read=false"`.
    pub async fn whole_inbox(&self, filter: &str) -> Vec<Value> {
        let mut out = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("limit=100{filter}");
            if let Some(c) = &cursor {
                query.push_str(&format!("&cursor={c}"));
            }
            let reply = self.notifications(&query).await;
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

    /// `GET notifications/unread-count?{query}`.
    pub async fn unread_count(&self, query: &str) -> Reply {
        self.get(&with_query("/notifications/unread-count", query))
            .await
    }

    /// The caller's unread count; panics unless the route answers 200.
    pub async fn unread(&self) -> u64 {
        let reply = self.unread_count("").await;
        assert_eq!(reply.status, 200);
        reply.json["unread_count"].as_u64().unwrap()
    }

    /// `POST portal/tokens` (service or admin).
    pub async fn mint_portal_token(&self, body: &Value) -> Reply {
        self.post("/portal/tokens", body).await
    }

    /// `PUT notifications/{id}/read`.
    pub async fn mark_read(&self, id: &str) -> Reply {
        self.put_empty(&format!("/notifications/{id}/read")).await
    }

    /// `PUT notifications/read-all`.
    pub async fn read_all(&self) -> Reply {
        self.put_empty("/notifications/read-all").await
    }

    /// `DELETE notifications/{id}`.
    pub async fn delete_notification(&self, id: &str) -> Reply {
        self.delete(&format!("/notifications/{id}")).await
    }

    /// `GET notifications/{id}/deliveries`.
    pub async fn deliveries(&self, id: &str) -> Reply {
        self.get(&format!("/notifications/{id}/deliveries")).await
    }

    /// The delivery attempts of a notification; panics unless the route answers 200.
    pub async fn delivery_log(&self, id: &str) -> Vec<Value> {
        let reply = self.deliveries(id).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        reply.json["deliveries"].as_array().unwrap().clone()
    }

    // ---------------------------------------------------------------- settings

    /// `GET notifications/preferences?{query}`.
    pub async fn preferences(&self, query: &str) -> Reply {
        self.get(&with_query("/notifications/preferences", query))
            .await
    }

    /// `PUT notifications/preferences`.
    pub async fn update_preferences(&self, body: &Value) -> Reply {
        self.put("/notifications/preferences", body).await
    }

    /// `PUT notifications/preferences` with a body as sent, JSON or not.
    pub async fn update_preferences_raw(&self, body: &str) -> Reply {
        self.send("PUT", "/notifications/preferences", Some(body))
            .await
    }

    /// `POST webhooks`.
    pub async fn create_webhook(&self, body: &Value) -> Reply {
        self.post("/webhooks", body).await
    }

    /// `POST webhooks` with a body as sent, JSON or not.
    pub async fn create_webhook_raw(&self, body: &str) -> Reply {
        self.send("POST", "/webhooks", Some(body)).await
    }

    /// `GET webhooks?{query}`.
    pub async fn webhooks(&self, query: &str) -> Reply {
        self.get(&with_query("/webhooks", query)).await
    }

    /// `DELETE webhooks/{id}`.
    pub async fn delete_webhook(&self, id: &str) -> Reply {
        self.delete(&format!("/webhooks/{id}")).await
    }
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}
