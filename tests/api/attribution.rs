//! Attribution by tag against DynamoDB Local: the deployment's declared keys (`project`, `team`,
//! `feature` by default) are rolled up per value exactly once, and every read slices by them
//! with `group_by` and `filter`.

use chrono::{Duration, Utc};
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{TestApi, UsageEventBuilder};

/// A request an hour ago for `user`, tagged `tags`, costing `cost` USD.
fn tagged(user: &str, n: usize, model: &str, tags: Value, cost: &str) -> Value {
    UsageEventBuilder::request()
        .id(&format!("{user}-{n}"))
        .user(user)
        .at(Utc::now() - Duration::hours(1))
        .model(model)
        .credits(10)
        .cost(cost)
        .set("tags", tags)
        .build()
}

/// Twelve requests: search on gpt-4o (4 × $0.10) and on gpt-4o-mini (2 × $0.01), chat on
/// gpt-4o (3 × $0.05, team core), and three untagged on gpt-4o-mini ($0.02 each) of which one
/// carries a tag that is not attributed.
fn twelve(user: &str) -> Vec<Value> {
    let mut events = vec![];
    for n in 0..4 {
        events.push(tagged(
            user,
            n,
            "gpt-4o",
            json!({"project": "search", "team": "ml"}),
            "0.10",
        ));
    }
    for n in 4..6 {
        events.push(tagged(
            user,
            n,
            "gpt-4o-mini",
            json!({"project": "search"}),
            "0.01",
        ));
    }
    for n in 6..9 {
        events.push(tagged(
            user,
            n,
            "gpt-4o",
            json!({"project": "chat", "team": "core"}),
            "0.05",
        ));
    }
    for n in 9..11 {
        events.push(tagged(user, n, "gpt-4o-mini", json!({}), "0.02"));
    }
    events.push(tagged(
        user,
        11,
        "gpt-4o-mini",
        json!({"region": "eu"}),
        "0.02",
    ));
    events
}

fn group<'a>(body: &'a Value, key: &str) -> &'a Value {
    body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {body}"))
}

#[tokio::test]
async fn usage_is_attributed_to_each_declared_tag_once_under_retries_and_concurrent_writers() {
    // Arrange: the same twelve events sent by three writers at once, then retried whole.
    let api = TestApi::spawn().await;
    let user = unique_user("attributed");
    let events = twelve(&user);
    let batch = json!({"events": events});
    let part = json!({"events": events[3..9]});
    let service = api.as_service();
    let (a, b, c) = tokio::join!(
        service.post_events(&batch),
        service.post_events(&batch),
        service.post_events(&part),
    );
    for r in [a, b, c] {
        assert_eq!(r.status, 200, "{}", r.json);
    }

    // Act
    let retried = service.post_events(&batch).await;
    let projects = api
        .as_user(&user)
        .get("/analytics/breakdown?group_by=tag:project&days=2")
        .await;
    let teams = api
        .as_user(&user)
        .get("/analytics/breakdown?group_by=tag:team&days=2")
        .await;

    // Assert
    assert_eq!(retried.json["duplicates"], 12, "{}", retried.json);
    assert_eq!(projects.status, 200, "{}", projects.json);
    assert_eq!(projects.json["total"]["requests"], 12);
    assert_eq!(projects.json["total_groups"], 2);
    let search = group(&projects.json, "search");
    assert_eq!(search["requests"], 6);
    assert_eq!(search["cost_usd"], 0.42);
    assert_eq!(search["credits"], 60);
    assert_eq!(group(&projects.json, "chat")["requests"], 3);
    assert_eq!(group(&projects.json, "chat")["cost_usd"], 0.15);
    let untagged = group(&projects.json, "untagged");
    assert_eq!(untagged["requests"], 3);
    assert_eq!(untagged["cost_usd"], 0.06);
    assert_eq!(group(&teams.json, "ml")["requests"], 4);
    assert_eq!(group(&teams.json, "core")["requests"], 3);
    assert_eq!(group(&teams.json, "untagged")["requests"], 5);
}

#[tokio::test]
async fn a_tag_filter_slices_summary_series_models_and_exports_by_that_value() {
    // Arrange
    let api = TestApi::spawn().await;
    let user = unique_user("sliced");
    let r = api
        .as_service()
        .post_events(&json!({"events": twelve(&user)}))
        .await;
    assert_eq!(r.json["accepted"], 12, "{}", r.json);
    let caller = api.as_user(&user);

    // Act
    let summary = caller
        .summary("days=2&filter=tag:project=search&group_by=model")
        .await;
    let series = caller
        .time_series("days=2&granularity=day&group_by=tag:project")
        .await;
    let models = caller.top_models("days=2&filter=tag:project=chat").await;
    let export = caller.export_json("days=2&filter=tag:project=search").await;
    let csv = caller.export_csv("days=2").await;

    // Assert: the search project is 6 requests, $0.42, on two models.
    assert_eq!(summary.status, 200, "{}", summary.json);
    assert_eq!(summary.json["usage"]["total_requests"], 6);
    assert_eq!(summary.json["usage"]["total_cost_usd"], 0.42);
    assert_eq!(summary.json["by_model"]["openai/gpt-4o"]["requests"], 4);
    assert_eq!(
        summary.json["by_model"]["openai/gpt-4o-mini"]["requests"],
        2
    );
    assert_eq!(group(&summary.json, "openai/gpt-4o")["cost_usd"], 0.4);
    // Each day's groups add up to the day.
    for point in summary_points(&series.json) {
        let sum: i64 = point["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["requests"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, point["requests"].as_i64().unwrap(), "{point}");
    }
    assert_eq!(models.json["models"][0]["model"], "openai/gpt-4o");
    assert_eq!(models.json["models"][0]["requests"], 3);
    assert_eq!(models.json["total"], 1);
    let rows = export.json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["tags"]["project"] == "search"));
    let header = csv.text.lines().next().unwrap();
    assert!(
        header.ends_with("tag:project,tag:team,tag:feature,Other tags"),
        "{header}"
    );
    assert!(
        csv.text.contains("\"{\"\"region\"\":\"\"eu\"\"}\""),
        "{}",
        csv.text
    );
}

fn summary_points(series: &Value) -> Vec<&Value> {
    series["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["requests"].as_i64().unwrap() > 0)
        .collect()
}

#[tokio::test]
async fn values_beyond_the_limit_come_back_summed_as_other() {
    // Arrange: five projects costing $0.05, $0.04, ... $0.01.
    let api = TestApi::spawn().await;
    let user = unique_user("many-projects");
    let events: Vec<Value> = (0..5)
        .map(|n| {
            tagged(
                &user,
                n,
                "gpt-4o",
                json!({"project": format!("p{n}")}),
                &format!("0.0{}", 5 - n),
            )
        })
        .collect();
    api.as_service()
        .post_events(&json!({"events": events}))
        .await;

    // Act
    let r = api
        .as_user(&user)
        .get("/analytics/breakdown?group_by=tag:project&limit=2&days=2")
        .await;

    // Assert
    assert_eq!(r.status, 200, "{}", r.json);
    let keys: Vec<&str> = r.json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["p0", "p1", "other"]);
    assert_eq!(group(&r.json, "other")["values"], 3);
    assert_eq!(group(&r.json, "other")["cost_usd"], 0.06);
    assert_eq!(r.json["total_groups"], 5);
}

#[tokio::test]
async fn dimensions_the_rollups_cannot_answer_are_refused_naming_the_parameter() {
    // Arrange
    let api = TestApi::spawn().await;
    let user = unique_user("bad-dimensions");
    let caller = api.as_user(&user);
    let cases = [
        ("/analytics/breakdown?group_by=color", "group_by"),
        ("/analytics/breakdown?group_by=tag:region", "group_by"),
        ("/analytics/breakdown", "group_by"),
        ("/analytics/summary?filter=tag:region=eu", "filter"),
        ("/analytics/summary?filter=model", "filter"),
        (
            "/analytics/time-series?filter=endpoint=/v1/chat&group_by=model",
            "group_by",
        ),
        ("/analytics/endpoints?filter=tag:project=search", "filter"),
        ("/analytics/performance?filter=tag:project=search", "filter"),
    ];

    for (path, field) in cases {
        // Act
        let r = caller.get(path).await;

        // Assert
        assert_eq!(r.status, 400, "{path}: {}", r.json);
        assert_eq!(r.json["error"]["field"], field, "{path}: {}", r.json);
    }
    let undeclared = caller.get("/analytics/breakdown?group_by=tag:region").await;
    assert!(
        undeclared.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("region"),
        "{}",
        undeclared.json
    );
}

#[tokio::test]
async fn an_attributed_tag_with_an_unusable_value_is_rejected_naming_the_tag() {
    // Arrange
    let api = TestApi::spawn().await;
    let user = unique_user("bad-tag");
    let events = json!({"events": [
        tagged(&user, 0, "gpt-4o", json!({"project": "a|b"}), "0.01"),
        tagged(&user, 1, "gpt-4o", json!({"region": "a|b"}), "0.01"),
    ]});

    // Act
    let r = api.as_service().post_events(&events).await;

    // Assert: only the attributed key is held to the rule.
    assert_eq!(r.json["accepted"], 1, "{}", r.json);
    assert_eq!(r.json["results"][0]["field"], "tags.project", "{}", r.json);
}

#[tokio::test]
async fn a_tag_key_of_too_many_values_fills_its_model_item_and_later_events_count_untagged() {
    // Arrange: 600 requests of one user, model and hour, each with a project of its own (128
    // characters): more values than a 400 KB model item holds.
    let api = TestApi::spawn().await;
    let user = unique_user("tag-flood");
    let service = api.as_service();
    let value = |n: usize| format!("{n:0>128}");

    // Act
    let mut accepted = 0;
    for batch in 0..6 {
        let events: Vec<Value> = (batch * 100..batch * 100 + 100)
            .map(|n| tagged(&user, n, "gpt-4o", json!({ "project": value(n) }), "0.01"))
            .collect();
        let r = service.post_events(&json!({ "events": events })).await;
        assert_eq!(r.status, 200, "batch {batch}: {}", r.json);
        accepted += r.json["accepted"].as_i64().unwrap();
    }
    let projects = api
        .as_user(&user)
        .get("/analytics/breakdown?group_by=tag:project&days=2&limit=100")
        .await;

    // Assert: every event is counted once; the values past the item's room read as untagged.
    assert_eq!(accepted, 600);
    assert_eq!(projects.status, 200, "{}", projects.json);
    assert_eq!(projects.json["total"]["requests"], 600);
    let rows: i64 = projects.json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(rows, 600);
    let untagged = group(&projects.json, "untagged")["requests"]
        .as_i64()
        .unwrap();
    assert!((1..600).contains(&untagged), "{untagged} untagged");
}
