//! `GET analytics/forecast` (README, "Forecasts"): the period's figures so far and projected,
//! honest with little or no history, in the caller's zone, with budgets and the credit balance;
//! bad input is a 400 naming the parameter.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{minutes_ago, TestApi, UsageEventBuilder};

async fn ingest(api: &TestApi, events: Vec<Value>) {
    for chunk in events.chunks(100) {
        let r = api
            .as_service()
            .post_events(&json!({ "events": chunk }))
            .await;
        assert_eq!(r.status, 200, "{}", r.json);
        assert_eq!(r.json["rejected"], 0, "{}", r.json);
    }
}

/// One request costing `usd` and `credits` at noon UTC of each of the last `days` days (not today).
fn daily(user: &str, days: i64, usd: &str, credits: i64) -> Vec<Value> {
    let noon = Utc::now()
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    (1..=days)
        .map(|k| {
            UsageEventBuilder::request()
                .user(user)
                .cost(usd)
                .credits(credits)
                .at(noon - Duration::days(k))
                .build()
        })
        .collect()
}

fn usd(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn date(v: &Value) -> NaiveDate {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn steady_daily_spend_is_projected_to_the_month_end_inside_its_band() {
    let api = TestApi::spawn().await;
    let user = unique_user("steady");
    ingest(&api, daily(&user, 20, "1", 10)).await;

    let r = api.as_user(&user).get("/analytics/forecast").await;

    assert_eq!(r.status, 200, "{}", r.json);
    let f = &r.json;
    assert_eq!(f["horizon"], "month");
    assert_eq!(f["confidence"], "medium");
    assert_eq!(f["history_days"], 20);
    let today = Utc::now().date_naive();
    let first: NaiveDate = f["period"]["start"].as_str().unwrap()[..10]
        .parse()
        .unwrap();
    let spent_this_month = (1..=20)
        .filter(|k| today - Duration::days(*k) >= first)
        .count() as f64;
    assert_eq!(usd(&f["cost_usd"]["to_date"]), spent_this_month);
    // A flat dollar a day: the rest of today and each day left add up to at most a dollar each.
    let left = f["period"]["days_left"].as_f64().unwrap();
    let projected = usd(&f["cost_usd"]["projected"]);
    assert!(
        projected >= spent_this_month + left - 1.0 && projected <= spent_this_month + left,
        "{f}"
    );
    assert!(usd(&f["cost_usd"]["low"]) <= projected && projected <= usd(&f["cost_usd"]["high"]));
    assert_eq!(f["requests"]["to_date"], spent_this_month as i64);
    assert!(f["credits"]["projected"].as_i64().unwrap() >= 10 * spent_this_month as i64);
}

#[tokio::test]
async fn three_days_of_history_is_low_confidence_with_a_wide_band() {
    let api = TestApi::spawn().await;
    let user = unique_user("newish");
    ingest(&api, daily(&user, 3, "2", 0)).await;

    let r = api
        .as_user(&user)
        .get("/analytics/forecast?horizon=10&metric=cost")
        .await;

    assert_eq!(r.status, 200, "{}", r.json);
    let f = &r.json;
    assert_eq!(f["confidence"], "low");
    assert_eq!(f["history_days"], 3);
    let (low, mid, high) = (
        usd(&f["cost_usd"]["low"]),
        usd(&f["cost_usd"]["projected"]),
        usd(&f["cost_usd"]["high"]),
    );
    assert!(
        mid > 0.0 && high - mid >= 0.5 * mid * 0.9 && low < mid,
        "{f}"
    );
    assert!(
        f.get("requests").is_none(),
        "metric=cost answers cost only: {f}"
    );
}

#[tokio::test]
async fn a_user_without_usage_gets_zeros_and_no_run_out_dates() {
    let api = TestApi::spawn().await;
    let user = unique_user("idle");

    let r = api
        .as_user(&user)
        .get("/analytics/forecast?horizon=week")
        .await;

    assert_eq!(r.status, 200, "{}", r.json);
    let f = &r.json;
    assert_eq!(f["confidence"], "low");
    assert_eq!(f["history_days"], 0);
    assert_eq!(
        f["cost_usd"],
        json!({"to_date": 0.0, "projected": 0.0, "low": 0.0, "high": 0.0})
    );
    assert_eq!(f["requests"]["projected"], 0);
    assert_eq!(f["credit_balance"]["runs_out_on"], Value::Null);
    assert_eq!(f["budgets"], json!([]));
    assert_eq!(f["period"]["days"], 7);
}

#[tokio::test]
async fn today_is_the_callers_local_day() {
    let api = TestApi::spawn().await;
    let user = unique_user("zoned");
    let at = minutes_ago(13 * 60);
    ingest(
        &api,
        vec![UsageEventBuilder::request()
            .user(&user)
            .cost("3")
            .at(at)
            .build()],
    )
    .await;

    for zone in ["Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"] {
        let r = api
            .as_user(&user)
            .get(&format!("/analytics/forecast?horizon=1&tz={zone}"))
            .await;

        assert_eq!(r.status, 200, "{zone}: {}", r.json);
        let tz: chrono_tz::Tz = zone.parse().unwrap();
        let local = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
        let expected = if local(at) == local(Utc::now()) {
            3.0
        } else {
            0.0
        };
        assert_eq!(
            usd(&r.json["cost_usd"]["to_date"]),
            expected,
            "{zone}: {}",
            r.json
        );
        assert_eq!(r.json["timezone"], zone);
    }
}

#[tokio::test]
async fn budgets_show_their_projected_end_and_the_day_they_run_out() {
    let api = TestApi::spawn().await;
    let user = unique_user("budgeted");
    ingest(
        &api,
        vec![UsageEventBuilder::request()
            .user(&user)
            .cost("2")
            .at(minutes_ago(1))
            .build()],
    )
    .await;
    let me = api.as_user(&user);
    for (id, body) in [
        (
            "daily",
            json!({"amount_usd": 1, "period": "day", "thresholds": [50, 100]}),
        ),
        ("roomy", json!({"amount_usd": 1000})),
    ] {
        let r = me.put(&format!("/budgets/{id}"), &body).await;
        assert_eq!(r.status, 201, "{}", r.json);
    }

    let r = me.get("/analytics/forecast").await;

    assert_eq!(r.status, 200, "{}", r.json);
    let budgets = r.json["budgets"].as_array().unwrap();
    let daily = budgets.iter().find(|b| b["id"] == "daily").unwrap();
    let today = Utc::now().date_naive().to_string();
    assert_eq!(daily["spent_usd"], 2.0);
    assert_eq!(daily["runs_out_on"], today);
    assert_eq!(
        daily["thresholds"],
        json!([{"percent": 50, "reached": true, "on": today}, {"percent": 100, "reached": true, "on": today}])
    );
    let roomy = budgets.iter().find(|b| b["id"] == "roomy").unwrap();
    assert_eq!(roomy["runs_out_on"], Value::Null);
    assert!(usd(&roomy["projected_usd"]["expected"]) >= 2.0, "{roomy}");
    assert_eq!(
        roomy["thresholds"][0],
        json!({"percent": 50, "reached": false, "on": null})
    );
}

#[tokio::test]
async fn the_credit_balance_runs_out_when_the_daily_use_reaches_it() {
    let api = TestApi::spawn().await;
    let user = unique_user("draining");
    let mut events = daily(&user, 28, "0.1", 10);
    events.push(
        UsageEventBuilder::payment()
            .user(&user)
            .credits(1_080)
            .amount("10")
            .at(minutes_ago(29 * 24 * 60))
            .build(),
    );
    ingest(&api, events).await;

    let r = api.as_user(&user).get("/analytics/forecast").await;

    assert_eq!(r.status, 200, "{}", r.json);
    // 800 credits left at 10 a day: about 80 days from now.
    assert_eq!(r.json["credit_balance"]["now"], 800);
    let out = date(&r.json["credit_balance"]["runs_out_on"]);
    let days = (out - Utc::now().date_naive()).num_days();
    assert!((78..=81).contains(&days), "{}", r.json);
    assert_eq!(r.json["confidence"], "high");
}

#[tokio::test]
async fn an_admin_reads_a_users_or_the_system_wide_forecast() {
    let api = TestApi::spawn().await;
    let user = unique_user("watched");
    ingest(&api, daily(&user, 2, "1", 0)).await;

    let of_user = api
        .as_admin()
        .get(&format!("/analytics/forecast?user_id={user}"))
        .await;
    let system = api.as_admin().get("/analytics/forecast?system=true").await;

    assert_eq!(of_user.status, 200, "{}", of_user.json);
    assert_eq!(of_user.json["user_id"], user.as_str());
    assert_eq!(system.status, 200, "{}", system.json);
    assert_eq!(system.json["scope"], "system");
    assert!(system.json.get("credit_balance").is_none());
    assert!(
        system.json["budgets"].is_array(),
        "the system-wide budgets: {}",
        system.json
    );
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_parameter() {
    let api = TestApi::spawn().await;
    let user = unique_user("careless");
    let me = api.as_user(&user);

    for (query, field) in [
        ("horizon=0", "horizon"),
        ("horizon=91", "horizon"),
        ("horizon=year", "horizon"),
        ("metric=tokens", "metric"),
        ("tz=Mars/Olympus", "tz"),
        ("system=maybe", "system"),
        ("days=30", "days"),
    ] {
        let r = me.get(&format!("/analytics/forecast?{query}")).await;
        assert_eq!(r.status, 400, "{query}: {}", r.json);
        assert_eq!(r.json["error"]["field"], field, "{query}");
    }
    assert_eq!(me.get("/analytics/forecast?system=true").await.status, 403);
    let both = api
        .as_admin()
        .get(&format!("/analytics/forecast?system=true&user_id={user}"))
        .await;
    assert_eq!(both.json["error"]["field"], "system", "{}", both.json);
    assert_eq!(
        me.get("/analytics/forecast?user_id=someone-else")
            .await
            .status,
        403
    );
    assert_eq!(api.anonymous().get("/analytics/forecast").await.status, 401);
}
