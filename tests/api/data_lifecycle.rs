//! A user's data (README, "Erase and export a user"): `DELETE /me/data` takes everything held
//! about the user apart — no item of theirs left in any table, the admin totals down by exactly
//! their share — through the eraser on its queue; events for a user being erased are refused;
//! `GET /me/data/export` holds everything about them.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use meterbell_dev::poller::Consumer;
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{
    app_for, consumer, drain, midnight_days_ago, queue_pair, queues, send, Queues, TestApi,
    UsageEventBuilder,
};

struct Lifecycle {
    api: TestApi,
    q: Queues,
    /// The erase route, queueing on the test's own EraseQueue.
    erase_route: TestApi,
    eraser: Consumer,
}

impl Lifecycle {
    async fn new() -> Lifecycle {
        let api = TestApi::spawn().await;
        let q = queues(&api.stack, 3).await;
        let (work, dlq) = queue_pair(&api.stack.clients.sqs, "erase", 3, 5).await;
        let erase_route = api.function_with("DataEraseFunction", &[("ERASE_QUEUE_URL", &work)]);
        let app = app_for(
            &api.stack,
            "DataEraserFunction",
            &q,
            &[("ERASE_QUEUE_URL", &work), ("ERASE_DLQ_URL", &dlq)],
        );
        let eraser = consumer(&api.stack, "DataEraserFunction", &work, app);
        Lifecycle {
            api,
            q,
            erase_route,
            eraser,
        }
    }

    /// A user with usage on a model and provider of their own over three days, a payment, a
    /// budget, an alert rule, preferences, a webhook endpoint and notifications.
    async fn rich_user(&self, prefix: &str) -> (String, String) {
        let u = unique_user(prefix);
        let model = format!("model-{u}");
        let mut events = vec![UsageEventBuilder::payment()
            .user(&u)
            .credits(5_000)
            .amount("20")
            .build()];
        for day in 0..3 {
            for i in 0..4 {
                events.push(
                    UsageEventBuilder::request()
                        .user(&u)
                        .provider(&format!("provider-{u}"))
                        .model(&model)
                        .endpoint(&format!("/v1/endpoint-{i}"))
                        .cost("0.25")
                        .at(midnight_days_ago(day) + chrono::Duration::hours(9 + i))
                        .build(),
                );
            }
        }
        let reply = self
            .api
            .as_service()
            .post_events(&json!({ "events": events }))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        let me = self.api.as_user(&u);
        assert_eq!(
            me.put("/budgets/monthly", &json!({"amount_usd": 100}))
                .await
                .status,
            201
        );
        assert_eq!(
            me.put(
                "/alerts/rules/errors",
                &json!({"kind": "error_rate", "threshold_percent": 5})
            )
            .await
            .status,
            201
        );
        assert_eq!(
            me.update_preferences(
                &json!({"email_address": "someone@example.com", "reports": {"weekly": true}})
            )
            .await
            .status,
            200
        );
        assert_eq!(
            me.create_webhook(&json!({"url": "https://example.com/hook"}))
                .await
                .status,
            201
        );
        for title in ["one", "two"] {
            self.api.as_admin().notify(&u, "info", title).await;
        }
        (u, model)
    }

    async fn erase(&self, u: &str) -> Value {
        let reply = self.erase_route.as_user(u).delete("/me/data").await;
        assert_eq!(reply.status, 202, "{}", reply.json);
        reply.json
    }

    async fn run_eraser(&self) {
        drain(
            &self.api.stack,
            std::slice::from_ref(&self.eraser),
            Duration::from_secs(120),
        )
        .await;
    }

    /// Every item of every table that names `u` (its keys, an index key or `user_id`), but the
    /// erasure receipts.
    async fn items_of(&self, u: &str) -> Vec<String> {
        let mut found = vec![];
        for table in [
            "EventsTable",
            "RollupsTable",
            "NotificationsTable",
            "AccountsTable",
        ] {
            let name = self.api.stack.resolver.refs[table].clone();
            let mut start = None;
            loop {
                let out = self
                    .api
                    .stack
                    .clients
                    .dynamodb
                    .scan()
                    .table_name(&name)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .unwrap();
                for item in out.items() {
                    let names_user = item.iter().any(|(k, v)| match v {
                        AttributeValue::S(text) => {
                            (["pk", "sk", "gsi1pk", "gsi1sk", "user_id"].contains(&k.as_str()))
                                && (text == u || text.contains(&format!("#{u}")))
                        }
                        _ => false,
                    });
                    let receipt = item
                        .get("pk")
                        .and_then(|v| v.as_s().ok())
                        .is_some_and(|pk| pk.starts_with("ERASURE#"));
                    if names_user && !receipt {
                        found.push(format!("{table}: {:?}", item.get("sk")));
                    }
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        found
    }
}

#[tokio::test]
async fn an_erase_removes_every_item_of_the_user_and_their_share_of_the_admin_totals() {
    let t = Lifecycle::new().await;
    let (u, model) = t.rich_user("erase-all").await;
    let neighbour = unique_user("erase-neighbour");
    t.api
        .as_service()
        .post_events(
            &json!({"events": [UsageEventBuilder::request().user(&neighbour)
            .model(&model).cost("1").build()]}),
        )
        .await;
    let period = "days=7";
    let before = t.api.as_admin().admin_overview(period).await;
    assert_eq!(
        before.json["by_model"][format!("provider-{u}/{model}")]["requests"],
        12
    );

    let started = t.erase(&u).await;
    t.run_eraser().await;

    assert_eq!(started["status"], "running");
    let status = t.api.as_user(&u).get("/me/data/erasure").await;
    assert_eq!(status.status, 200, "{}", status.json);
    assert_eq!(status.json["status"], "done");
    let removed = &status.json["removed"];
    assert_eq!(removed["usage_events"], 13, "{removed}");
    assert_eq!(removed["notifications"], 2);
    assert_eq!(removed["budgets"], 1);
    assert_eq!(removed["alert_rules"], 1);
    assert_eq!(removed["webhook_endpoints"], 1);
    assert_eq!(removed["preferences"], 1);
    assert_eq!(t.items_of(&u).await, Vec::<String>::new());
    let after = t.api.as_admin().admin_overview(period).await;
    assert!(
        after.json["by_model"]
            .get(format!("provider-{u}/{model}"))
            .is_none_or(|m| m["requests"] == 0),
        "{}",
        after.json["by_model"]
    );
    assert_eq!(
        after.json["by_provider"][format!("provider-{u}")]["requests"]
            .as_i64()
            .unwrap_or(0),
        0
    );
    assert_eq!(
        after.json["by_model"][format!("openai/{model}")]["requests"],
        1,
        "the neighbour's usage stays"
    );
    assert_eq!(
        t.api.as_user(&u).summary("days=7").await.json["usage"]["total_requests"],
        0
    );

    // Again: harmless, and a receipt of nothing.
    t.erase(&u).await;
    t.run_eraser().await;
    let again = t.api.as_user(&u).get("/me/data/erasure").await;
    assert_eq!(again.json["status"], "done");
    assert_eq!(again.json["removed"]["usage_events"], 0);
}

#[tokio::test]
async fn events_for_a_user_being_erased_are_refused_until_the_erase_is_done() {
    let t = Lifecycle::new().await;
    let (u, _) = t.rich_user("erase-race").await;
    t.erase(&u).await;

    let during = t
        .api
        .as_service()
        .post_events(&json!({"events": [UsageEventBuilder::request().user(&u).build()]}))
        .await;
    t.run_eraser().await;
    let after = t
        .api
        .as_service()
        .post_events(&json!({"events": [UsageEventBuilder::request().user(&u).build()]}))
        .await;

    assert_eq!(during.json["rejected"], 1, "{}", during.json);
    assert_eq!(during.json["results"][0]["field"], "user_id");
    assert_eq!(after.json["accepted"], 1, "{}", after.json);
    assert_eq!(
        t.api.as_user(&u).summary("days=1").await.json["usage"]["total_requests"],
        1
    );
}

#[tokio::test]
async fn a_large_erase_goes_in_steps_and_resumes_where_it_stopped() {
    let t = Lifecycle::new().await;
    let (u, _) = t.rich_user("erase-steps").await;
    let started = t.erase(&u).await;
    let id = started["erase_id"].as_str().unwrap().to_owned();
    let app = t.eraser.app.clone();
    let user = meterbell::platform::domain::UserId::parse(&u).unwrap();

    let mut invocations = 0;
    while !meterbell::lifecycle::erase::run(&app, &user, &id, Duration::from_millis(1))
        .await
        .unwrap()
    {
        invocations += 1;
        assert!(invocations < 100, "the erase does not advance");
    }

    assert!(invocations > 3, "{invocations} steps");
    assert_eq!(t.items_of(&u).await, Vec::<String>::new());
    drop(t.q);
}

#[tokio::test]
async fn an_erase_message_that_is_not_one_goes_to_the_dead_letter_queue() {
    let t = Lifecycle::new().await;
    send(
        &t.api.stack,
        &t.eraser.queue_url,
        "{\"user_id\": \"a#b\", \"erase_id\": \"x\"}",
    )
    .await;

    t.run_eraser().await;

    assert_eq!(
        crate::helpers::count(&t.api.stack.clients.sqs, &t.eraser.queue_url).await,
        0
    );
}

#[tokio::test]
async fn the_export_holds_everything_about_the_user() {
    let t = Lifecycle::new().await;
    let (u, model) = t.rich_user("export").await;

    let export = t.api.as_user(&u).get("/me/data/export").await;

    assert_eq!(export.status, 200, "{}", export.json);
    let e = &export.json;
    assert_eq!(e["user_id"], u.as_str());
    assert_eq!(e["credit_totals"]["credits_purchased"], 5_000);
    assert_eq!(e["preferences"]["email_address"], "someone@example.com");
    assert_eq!(e["webhook_endpoints"].as_array().unwrap().len(), 1);
    assert!(e["webhook_endpoints"][0].get("secret").is_none());
    assert_eq!(e["budgets"][0]["id"], "monthly");
    assert_eq!(e["alert_rules"][0]["id"], "errors");
    let events = e["usage_events"]["items"].as_array().unwrap();
    assert_eq!(events.len(), 13);
    assert!(events.iter().any(|ev| ev["kind"] == "payment"));
    assert!(events.iter().any(|ev| ev["model"] == model.as_str()));
    assert_eq!(e["usage_events"]["next_cursor"], Value::Null);
    assert_eq!(e["notifications"]["items"].as_array().unwrap().len(), 2);

    let bad_part = t
        .api
        .as_user(&u)
        .get("/me/data/export?part=everything")
        .await;
    assert_eq!(bad_part.status, 400);
    assert_eq!(bad_part.json["error"]["field"], "part");
    let forged = t
        .api
        .as_user(&u)
        .get("/me/data/export?cursor=abc.def")
        .await;
    assert_eq!(forged.status, 400);
    let someone_else = t
        .api
        .as_user(&unique_user("export-other"))
        .get(&format!("/me/data/export?user_id={u}"))
        .await;
    assert_eq!(someone_else.status, 403);
}
