//! Zones off the whole hour (README, "Time zones"): Asia/Kolkata (+05:30) and Asia/Kathmandu
//! (+05:45) days begin on a quarter hour and their totals are exact on both sides of it;
//! `start` and `end` may fall on any quarter hour and on nothing finer.

use chrono::{DateTime, Duration, Utc};
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{midnight_days_ago, TestApi, UsageEventBuilder};

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Six requests around 18:15–18:30 UTC of day D (ten days ago), each with its own power of two
/// of credits so a sum names the events it holds:
/// D 12:00 → 1, D 18:14 → 2, D 18:16 → 4, D 18:29 → 8, D 18:31 → 16, D+1 12:00 → 32.
async fn fixture(api: &TestApi) -> (String, DateTime<Utc>) {
    let user = unique_user("zones");
    let d = midnight_days_ago(10);
    let events: Vec<Value> = [
        (0, 12, 0, 1, "gpt-4o"),
        (0, 18, 14, 2, "gpt-4o"),
        (0, 18, 16, 4, "gpt-4o-mini"),
        (0, 18, 29, 8, "gpt-4o-mini"),
        (0, 18, 31, 16, "gpt-4o"),
        (1, 12, 0, 32, "gpt-4o-mini"),
    ]
    .iter()
    .map(|(days, h, m, credits, model)| {
        UsageEventBuilder::request()
            .id(&format!("{user}-{credits}"))
            .user(&user)
            .at(d + Duration::days(*days) + Duration::hours(*h) + Duration::minutes(*m))
            .provider("openai")
            .model(model)
            .credits(*credits)
            .cost("0.01")
            .build()
    })
    .collect();
    let r = api
        .as_service()
        .post_events(&json!({ "events": events }))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["rejected"], 0, "{}", r.json);
    (user, d)
}

/// (local date, requests, credits) of each day of a daily series.
fn days(r: &Value) -> Vec<(String, i64, i64)> {
    r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_str().unwrap().to_owned(),
                p["requests"].as_i64().unwrap(),
                p["credits"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn kolkata_daily_totals_are_exact_on_both_sides_of_the_half_hour_midnight() {
    let api = TestApi::spawn().await;
    let (user, d) = fixture(&api).await;
    // Kolkata's date of D begins at D−1 18:30 UTC; the next at D 18:30 UTC.
    let start = d - Duration::days(1) + Duration::minutes(18 * 60 + 30);

    let r = api
        .as_user(&user)
        .time_series(&format!(
            "granularity=day&tz=Asia/Kolkata&start={}&end={}",
            iso(start),
            iso(start + Duration::days(2))
        ))
        .await;

    assert_eq!(r.status, 200, "{}", r.json);
    let date = |n: i64| (d + Duration::days(n)).date_naive().to_string();
    assert_eq!(
        days(&r.json),
        [(date(0), 4, 1 + 2 + 4 + 8), (date(1), 2, 16 + 32)]
    );
}

#[tokio::test]
async fn kathmandu_daily_totals_are_exact_on_both_sides_of_the_quarter_to_midnight() {
    let api = TestApi::spawn().await;
    let (user, d) = fixture(&api).await;
    // Kathmandu (+05:45): the date of D begins at D−1 18:15 UTC.
    let start = d - Duration::days(1) + Duration::minutes(18 * 60 + 15);

    let r = api
        .as_user(&user)
        .time_series(&format!(
            "granularity=day&tz=Asia/Kathmandu&start={}&end={}",
            iso(start),
            iso(start + Duration::days(2))
        ))
        .await;

    assert_eq!(r.status, 200, "{}", r.json);
    let date = |n: i64| (d + Duration::days(n)).date_naive().to_string();
    assert_eq!(
        days(&r.json),
        [(date(0), 2, 1 + 2), (date(1), 4, 4 + 8 + 16 + 32)]
    );
}

#[tokio::test]
async fn a_kolkata_summary_is_exact_and_its_model_breakdowns_count_every_event_once() {
    let api = TestApi::spawn().await;
    let (user, d) = fixture(&api).await;
    let start = d - Duration::days(1) + Duration::minutes(18 * 60 + 30);
    let me = api.as_user(&user);
    let summary = |from: DateTime<Utc>| {
        let me = &me;
        async move {
            let q = format!(
                "tz=Asia/Kolkata&start={}&end={}",
                iso(from),
                iso(from + Duration::days(1))
            );
            let r = me.summary(&q).await;
            assert_eq!(r.status, 200, "{}", r.json);
            r.json
        }
    };

    let first = summary(start).await;
    let second = summary(start + Duration::days(1)).await;

    assert_eq!(first["usage"]["total_credits"], 1 + 2 + 4 + 8);
    assert_eq!(second["usage"]["total_credits"], 16 + 32);
    // A UTC hour cut by midnight lends its model counts to the day holding its midpoint (here
    // D 18:00–19:00 to the second day): each hour once, so the two days add up to every event.
    let models = |s: &Value| -> i64 {
        s["by_model"]
            .as_object()
            .unwrap()
            .values()
            .map(|m| m["requests"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(models(&first) + models(&second), 6);
    assert_eq!(
        models(&first),
        1,
        "D 12:00 only: hour 18 goes to the next day"
    );
}

#[tokio::test]
async fn start_and_end_on_a_quarter_hour_are_exact_and_other_minutes_are_refused() {
    let api = TestApi::spawn().await;
    let (user, d) = fixture(&api).await;
    let me = api.as_user(&user);
    let at = |h: i64, m: i64| d + Duration::hours(h) + Duration::minutes(m);

    for ((from, to), credits) in [
        ((at(18, 15), at(18, 30)), 4 + 8),
        ((at(18, 30), at(18, 45)), 16),
        ((at(18, 0), at(18, 15)), 2),
        ((at(18, 45), at(36, 15)), 32),
    ] {
        let r = me
            .summary(&format!("start={}&end={}", iso(from), iso(to)))
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(r.json["usage"]["total_credits"], credits, "{from}..{to}");
    }
    for (from, to, field) in [
        (at(18, 10), at(19, 0), "start"),
        (at(18, 0), at(18, 50), "end"),
    ] {
        let r = me
            .time_series(&format!("start={}&end={}", iso(from), iso(to)))
            .await;
        assert_eq!(r.status, 400, "{}", r.json);
        assert_eq!(r.json["error"]["field"], field, "{}", r.json);
    }
}

#[tokio::test]
async fn every_zone_off_the_whole_hour_is_served_by_every_analytics_route() {
    let api = TestApi::spawn().await;
    let (user, _) = fixture(&api).await;
    let me = api.as_user(&user);
    for tz in [
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "America/St_Johns",
        "Australia/Adelaide",
        "Australia/Eucla",
    ] {
        for path in [
            "/analytics/summary?days=30",
            "/analytics/time-series?granularity=hour&days=2",
            "/analytics/time-series?granularity=week&days=30",
            "/analytics/providers?days=30",
            "/analytics/top-models?days=30",
            "/analytics/endpoints?days=30",
            "/analytics/performance?days=30",
            "/analytics/report",
            "/analytics/report?period=week",
            "/analytics/forecast",
        ] {
            let sep = if path.contains('?') { '&' } else { '?' };
            let r = me.get(&format!("{path}{sep}tz={tz}")).await;
            assert_eq!(r.status, 200, "{path} in {tz}: {}", r.json);
        }
        let month = me.summary(&format!("days=30&tz={tz}")).await;
        assert_eq!(month.json["usage"]["total_credits"], 63, "{tz}");
    }
}
