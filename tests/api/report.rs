//! The usage report (README, "The usage report"): a month (or an ISO week) against the one
//! before, from the rollups, with recommendations carrying their numbers; JSON, CSV and HTML.

use chrono::{Datelike, Duration, NaiveDate, Utc};
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{TestApi, UsageEventBuilder};

/// The first day of the month `back` months before this one.
fn month_start(back: u32) -> NaiveDate {
    let today = Utc::now().date_naive();
    today
        .with_day(1)
        .unwrap()
        .checked_sub_months(chrono::Months::new(back))
        .unwrap()
}

async fn usage(
    api: &TestApi,
    u: &str,
    day: NaiveDate,
    model: &str,
    n: usize,
    errors: usize,
    cost: &str,
) {
    let at = day.and_hms_opt(10, 0, 0).unwrap().and_utc();
    let events: Vec<Value> = (0..n)
        .map(|i| {
            UsageEventBuilder::request()
                .user(u)
                .model(model)
                .endpoint("/v1/chat")
                .status_code(if i < errors { 500 } else { 200 })
                .cost(cost)
                .at(at + Duration::seconds(i as i64))
                .build()
        })
        .collect();
    for chunk in events.chunks(100) {
        let reply = api
            .as_service()
            .post_events(&json!({ "events": chunk }))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
    }
}

#[tokio::test]
async fn last_months_report_compares_it_with_the_month_before_and_recommends_with_numbers() {
    let api = TestApi::spawn().await;
    let u = unique_user("report");
    let last = month_start(1);
    let before = month_start(2);
    usage(
        &api,
        &u,
        before + Duration::days(3),
        "gpt-4o",
        100,
        1,
        "0.05",
    )
    .await;
    usage(&api, &u, last + Duration::days(3), "gpt-4o", 100, 9, "0.05").await;
    usage(
        &api,
        &u,
        last + Duration::days(4),
        "gpt-4o-mini",
        60,
        0,
        "0.001",
    )
    .await;
    let month = last.format("%Y-%m").to_string();

    let report = api
        .as_user(&u)
        .get(&format!("/analytics/report?period=month&month={month}"))
        .await;

    assert_eq!(report.status, 200, "{}", report.json);
    let r = &report.json;
    assert_eq!(r["report"], month.as_str());
    assert_eq!(r["totals"]["requests"], 160);
    assert_eq!(r["totals"]["errors"], 9);
    assert_eq!(r["change_percent"]["requests"], json!(60.0));
    let days_in_month = (month_start(0) - last).num_days() as usize;
    assert_eq!(r["daily"].as_array().unwrap().len(), days_in_month);
    assert_eq!(r["peak_hour"], 10);
    assert_eq!(r["top_models"][0]["name"], "openai/gpt-4o");
    let kinds: Vec<&str> = r["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"concentration"), "{kinds:?}");
    assert!(kinds.contains(&"cheaper_model"), "{kinds:?}");
    assert!(kinds.contains(&"error_rate"), "{kinds:?}");
    let errors = r["recommendations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "error_rate")
        .unwrap();
    assert_eq!(
        errors["text"],
        "Errors on /v1/chat: 5.6% against 1.0% last month."
    );
    let next = &r["forecast"];
    assert_eq!(next["period"]["first_day"], month_start(0).to_string());
    assert_eq!(
        next["basis_days"],
        days_in_month - 3,
        "from its first day of usage"
    );
    let cost = &next["cost_usd"];
    let (low, expected, high) = (
        cost["low"].as_f64().unwrap(),
        cost["expected"].as_f64().unwrap(),
        cost["high"].as_f64().unwrap(),
    );
    assert!(low <= expected && expected <= high, "{next}");

    let csv = api
        .as_user(&u)
        .get(&format!("/analytics/report?month={month}&format=csv"))
        .await;
    assert!(csv.text.starts_with("report,,period,"), "{}", csv.text);
    assert!(csv.text.contains("totals,,requests,160"));
    assert!(csv.text.contains("forecast,"), "{}", csv.text);
    let page = api
        .as_user(&u)
        .get(&format!("/analytics/report?month={month}&format=html"))
        .await;
    assert!(page.text.contains("<h1>Usage report"), "{}", page.text);
    assert!(page.text.contains("Errors on /v1/chat"));
    assert!(page.text.contains("Next period at this pace"));
}

#[tokio::test]
async fn a_report_names_the_bad_field() {
    let api = TestApi::spawn().await;
    let me = api.as_user(&unique_user("report-bad"));
    for (query, field) in [
        ("month=2026-13", "month"),
        ("month=2026-1", "month"),
        ("period=year", "period"),
        ("period=week&week=2026-W60", "week"),
        ("period=week&month=2026-10", "month"),
        ("format=pdf", "format"),
        ("tz=Mars/Olympus", "tz"),
    ] {
        let reply = me.get(&format!("/analytics/report?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], field, "{query}");
    }
    let week = me.get("/analytics/report?period=week&week=2026-W43").await;
    assert_eq!(week.status, 200, "{}", week.json);
    assert_eq!(week.json["report"], "2026-W43");
    assert_eq!(week.json["daily"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn the_platforms_report_is_for_admins_and_ranks_the_users_behind_the_spend() {
    // Arrange: a user who spent $50,000 last month (far above any other test's users).
    let api = TestApi::spawn().await;
    let big = unique_user("platform-report");
    let last = month_start(1);
    usage(
        &api,
        &big,
        last + Duration::days(2),
        "gpt-4o",
        5,
        0,
        "10000",
    )
    .await;
    let month = last.format("%Y-%m").to_string();

    // Act
    let report = api
        .as_admin()
        .get(&format!(
            "/analytics/report?period=month&month={month}&system=true"
        ))
        .await;
    let html = api
        .as_admin()
        .get(&format!(
            "/analytics/report?period=month&month={month}&system=true&format=html"
        ))
        .await;
    let refused = api
        .as_user(&big)
        .get(&format!(
            "/analytics/report?period=month&month={month}&system=true"
        ))
        .await;

    // Assert
    assert_eq!(report.status, 200, "{}", report.json);
    assert_eq!(report.json["scope"], "system");
    assert_eq!(
        report.json["top_users"][0]["name"],
        big.as_str(),
        "{}",
        report.json
    );
    assert_eq!(report.json["top_users"][0]["cost_usd"], 50000.0);
    assert!(report.json["totals"]["cost_usd"].as_f64().unwrap() >= 50000.0);
    assert!(html.text.contains("Top users"), "{}", html.text);
    assert_eq!(refused.status, 403, "{}", refused.json);
}
