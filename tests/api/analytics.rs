//! Every analytics route against DynamoDB Local, with the expected figures worked out by hand
//! from the events each test sends.

use chrono::{DateTime, Datelike, Duration, DurationRound, NaiveDate, Utc};
use meterbell_dev::stack::LocalStack;
use meterbell_dev::testing::{request, stack, token, unique_user, Reply};
use serde_json::{json, Value};

fn midnight_days_ago(n: i64) -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::days(1)).unwrap() - Duration::days(n)
}

#[allow(clippy::too_many_arguments)]
fn request_event(
    id: &str,
    user: &str,
    at: DateTime<Utc>,
    provider: &str,
    model: &str,
    endpoint: &str,
    status: u16,
    latency: u32,
    credits: i64,
    cost: &str,
    tin: i64,
    tout: i64,
    description: &str,
) -> Value {
    let mut e = json!({"event_id": id, "user_id": user, "timestamp": at.to_rfc3339(), "kind": "request",
        "provider": provider, "model": model, "endpoint": endpoint, "status_code": status, "latency_ms": latency,
        "credits": credits, "input_tokens": tin, "output_tokens": tout, "description": description});
    e["cost_usd"] = serde_json::from_str(cost).unwrap();
    e
}

fn payment(
    id: &str,
    user: &str,
    at: DateTime<Utc>,
    status: &str,
    amount: &str,
    credits: i64,
) -> Value {
    let mut e = json!({"event_id": id, "user_id": user, "timestamp": at.to_rfc3339(), "kind": "payment", "status": status, "credits": credits});
    e["amount_usd"] = serde_json::from_str(amount).unwrap();
    e
}

async fn ingest(stack: &LocalStack, events: Vec<Value>) {
    let r = request(
        stack,
        "POST",
        "/prod/api/v1/usage/events",
        Some(&token("upstream", &["service"])),
        Some(&json!({"events": events}).to_string()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["rejected"], 0, "{}", r.json);
}

async fn get(stack: &LocalStack, path: &str, user: &str, roles: &[&str]) -> Reply {
    request(
        stack,
        "GET",
        &format!("/prod/api/v1/{path}"),
        Some(&token(user, roles)),
        None,
    )
    .await
    .unwrap()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Five requests and three payments over four UTC days starting ten days ago (D):
/// 1. D 10:15 openai/gpt-4o /v1/chat 200, 100 ms, 100 credits, $0.0150, 1000/200 tokens
/// 2. D 10:45 openai/gpt-4o /v1/chat 500, 2000 ms, 0 credits, $0
/// 3. D 23:30 anthropic/claude-3-opus /v1/messages 200, 800 ms, 150 credits, $0.0450, 500/300
/// 4. D+1 04:10 openai/gpt-4o-mini /v1/chat 200, 50 ms, 10 credits, $0.0006, 100/50
/// 5. D+3 12:00 anthropic/claude-3-opus /v1/messages 429, 30 ms, 0 credits, $0
///
/// Payments: D+1 09:00 succeeded $20 (2000 credits); D+2 09:00 refunded $5 (500 credits);
/// D+2 10:00 failed $10.
struct Fixture {
    user: String,
    d: DateTime<Utc>,
}

async fn fixture(stack: &LocalStack) -> Fixture {
    let user = unique_user("analyst");
    let d = midnight_days_ago(10);
    let h = |days: i64, hours: i64, minutes: i64| {
        d + Duration::days(days) + Duration::hours(hours) + Duration::minutes(minutes)
    };
    let id = |n: &str| format!("{user}-{n}");
    ingest(
        stack,
        vec![
            request_event(
                &id("1"),
                &user,
                h(0, 10, 15),
                "openai",
                "gpt-4o",
                "/v1/chat",
                200,
                100,
                100,
                "0.0150",
                1000,
                200,
                "LLM, \"quoted\"",
            ),
            request_event(
                &id("2"),
                &user,
                h(0, 10, 45),
                "openai",
                "gpt-4o",
                "/v1/chat",
                500,
                2000,
                0,
                "0",
                0,
                0,
                "=HYPERLINK(\"http://x\")",
            ),
            request_event(
                &id("3"),
                &user,
                h(0, 23, 30),
                "anthropic",
                "claude-3-opus",
                "/v1/messages",
                200,
                800,
                150,
                "0.0450",
                500,
                300,
                "line\nbreak",
            ),
            request_event(
                &id("4"),
                &user,
                h(1, 4, 10),
                "openai",
                "gpt-4o-mini",
                "/v1/chat",
                200,
                50,
                10,
                "0.0006",
                100,
                50,
                "+1",
            ),
            request_event(
                &id("5"),
                &user,
                h(3, 12, 0),
                "anthropic",
                "claude-3-opus",
                "/v1/messages",
                429,
                30,
                0,
                "0",
                0,
                0,
                "rate limited",
            ),
            payment(&id("p1"), &user, h(1, 9, 0), "succeeded", "20", 2000),
            payment(&id("p2"), &user, h(2, 9, 0), "refunded", "5", 500),
            payment(&id("p3"), &user, h(2, 10, 0), "failed", "10", 0),
        ],
    )
    .await;
    Fixture { user, d }
}

impl Fixture {
    fn period(&self) -> String {
        format!(
            "start={}&end={}",
            iso(self.d),
            iso(self.d + Duration::days(4))
        )
    }
}

#[tokio::test]
async fn the_summary_adds_up_the_period_by_provider_model_and_day() {
    let stack = stack().await;
    let f = fixture(&stack).await;
    let r = get(
        &stack,
        &format!("analytics/summary?{}", f.period()),
        &f.user,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let u = &r.json["usage"];
    assert_eq!(u["total_requests"], 5);
    assert_eq!(u["failed_requests"], 2);
    assert_eq!(u["successful_requests"], 3);
    assert_eq!(u["total_credits"], 260);
    assert_eq!(r.raw(&["usage", "total_cost_usd"]), "0.06"); // $0.0606
    assert_eq!(r.raw(&["usage", "avg_cost_per_request_usd"]), "0.0121"); // 0.0606 / 5
    assert_eq!(r.raw(&["usage", "avg_credits_per_request"]), "52.00");
    assert_eq!(
        (u["input_tokens"].as_i64(), u["output_tokens"].as_i64()),
        (Some(1600), Some(550))
    );
    assert_eq!(
        r.json["by_provider"]["openai"],
        json!({"requests": 3, "credits": 110, "cost_usd": 0.02})
    );
    assert_eq!(r.raw(&["by_provider", "anthropic", "cost_usd"]), "0.05"); // 0.045 rounds half up
    assert_eq!(r.json["by_model"]["openai/gpt-4o"]["requests"], 2);
    let day = |n: i64| (f.d + Duration::days(n)).date_naive().to_string();
    assert_eq!(r.json["by_day"][day(0)]["requests"], 3);
    assert_eq!(r.json["by_day"][day(1)]["requests"], 1);
    assert_eq!(r.json["by_day"][day(3)]["requests"], 1);
    assert!(
        r.json["by_day"].get(day(2)).is_none(),
        "days without requests are left out of by_day"
    );
    let p = &r.json["payments"];
    assert_eq!(r.raw(&["payments", "total_paid_usd"]), "20.00");
    assert_eq!(
        (
            p["payment_count"].as_i64(),
            p["failed_payments"].as_i64(),
            p["refunds"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(p["total_credits_purchased"], 2000);
    assert_eq!(r.json["credit_balance"], 2000 - 500 - 260);
}

#[tokio::test]
async fn a_time_zone_moves_events_to_their_local_day() {
    let stack = stack().await;
    let f = fixture(&stack).await;
    let tz: chrono_tz::Tz = "America/New_York".parse().unwrap();
    // The four local days starting at local midnight of D's date.
    let local_d = f.d.date_naive();
    // Local midnights worked out with chrono-tz, independently of the code under test.
    let midnight = |d: NaiveDate| {
        use chrono::TimeZone;
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    };
    let start = midnight(local_d);
    let end = midnight(local_d + Duration::days(4));
    let path = format!(
        "analytics/time-series?granularity=day&tz=America/New_York&start={}&end={}",
        iso(start),
        iso(end)
    );
    let r = get(&stack, &path, &f.user, &[]).await;
    assert_eq!(r.status, 200, "{}", r.json);
    // Expected by hand: convert each event time to New York and count per local date.
    let times = [
        (0, 10, 15),
        (0, 10, 45),
        (0, 23, 30),
        (1, 4, 10),
        (3, 12, 0),
    ];
    let mut expected = std::collections::BTreeMap::<String, i64>::new();
    for day in 0..4 {
        expected.insert((local_d + Duration::days(day)).to_string(), 0);
    }
    for (d, h, m) in times {
        let t = f.d + Duration::days(d) + Duration::hours(h) + Duration::minutes(m);
        if t >= start && t < end {
            *expected
                .entry(t.with_timezone(&tz).date_naive().to_string())
                .or_default() += 1;
        }
    }
    let got: std::collections::BTreeMap<String, i64> = r.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_str().unwrap().to_owned(),
                p["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(r.json["timezone"], "America/New_York");
}

#[tokio::test]
async fn an_hourly_series_has_every_hour_even_empty_ones() {
    let stack = stack().await;
    let f = fixture(&stack).await;
    let start = f.d + Duration::hours(10);
    let path = format!(
        "analytics/time-series?granularity=hour&start={}&end={}",
        iso(start),
        iso(start + Duration::hours(3))
    );
    let r = get(&stack, &path, &f.user, &[]).await;
    let data = r.json["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(
        (data[0]["requests"].as_i64(), data[0]["errors"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(r.raw(&["data", "0", "cost_usd"]), "0.0150");
    assert_eq!(
        data[1],
        json!({"timestamp": data[1]["timestamp"], "requests": 0, "errors": 0, "credits": 0, "cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0})
    );
    assert_eq!(r.json["data_points"], 3);
}

#[tokio::test]
async fn weeks_start_on_monday_and_months_on_the_first() {
    let stack = stack().await;
    let user = unique_user("edges");
    let today = Utc::now().date_naive();
    let monday = today
        - Duration::days(i64::from(today.weekday().num_days_from_monday()))
        - Duration::days(14);
    let w = monday.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let first =
        NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap() - Duration::days(1);
    let m = NaiveDate::from_ymd_opt(first.year(), first.month(), 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let e = |n: &str, at| {
        request_event(
            &format!("{user}-{n}"),
            &user,
            at,
            "p",
            "m",
            "/e",
            200,
            10,
            1,
            "0.01",
            0,
            0,
            "",
        )
    };
    ingest(
        &stack,
        vec![
            e("w1", w - Duration::hours(1)),
            e("w2", w + Duration::hours(1)),
            e("m1", m - Duration::hours(1)),
            e("m2", m + Duration::hours(1)),
        ],
    )
    .await;

    let weeks = get(
        &stack,
        &format!(
            "analytics/time-series?granularity=week&start={}&end={}",
            iso(w - Duration::days(7)),
            iso(w + Duration::days(7))
        ),
        &user,
        &[],
    )
    .await;
    let labels: Vec<(&str, i64)> = weeks.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_str().unwrap(),
                p["requests"].as_i64().unwrap(),
            )
        })
        .collect();
    let before = (monday - Duration::days(7)).to_string();
    let expected_weeks = [(before.as_str(), 1), (monday.to_string().leak() as &str, 1)];
    assert_eq!(labels, expected_weeks);

    let months = get(
        &stack,
        &format!(
            "analytics/time-series?granularity=month&start={}&end={}",
            iso(m - Duration::days(1)),
            iso(m + Duration::days(1))
        ),
        &user,
        &[],
    )
    .await;
    let counts: Vec<i64> = months.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [1, 1]);
    assert_eq!(
        months.json["data"][1]["timestamp"],
        format!("{:04}-{:02}", m.year(), m.month())
    );
}

#[tokio::test]
async fn providers_models_and_endpoints_rank_and_share_the_cost() {
    let stack = stack().await;
    let f = fixture(&stack).await;
    let p = get(
        &stack,
        &format!("analytics/providers?{}", f.period()),
        &f.user,
        &[],
    )
    .await;
    assert_eq!(p.json["total_providers"], 2);
    assert_eq!(p.json["providers"][0]["provider"], "anthropic");
    assert_eq!(p.raw(&["providers", "0", "cost_percentage"]), "74.26"); // 0.045 / 0.0606
    assert_eq!(
        p.json["providers"][1]["models_used"],
        json!(["gpt-4o", "gpt-4o-mini"])
    );
    assert_eq!(p.raw(&["providers", "1", "avg_cost_per_request"]), "0.0052"); // 0.0156 / 3

    let m = get(
        &stack,
        &format!("analytics/top-models?limit=2&{}", f.period()),
        &f.user,
        &[],
    )
    .await;
    assert_eq!(m.json["total"], 3);
    let names: Vec<&str> = m.json["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["anthropic/claude-3-opus", "openai/gpt-4o"]);
    assert_eq!(m.json["models"][1]["model_name"], "gpt-4o");

    let e = get(
        &stack,
        &format!("analytics/endpoints?{}", f.period()),
        &f.user,
        &[],
    )
    .await;
    assert_eq!(e.json["endpoints"][0]["endpoint"], "/v1/chat");
    assert_eq!(
        (
            e.json["endpoints"][0]["requests"].as_i64(),
            e.json["endpoints"][0]["errors"].as_i64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(e.raw(&["endpoints", "1", "error_rate"]), "0.5000");
}

fn within_5_percent(got: &Value, exact: f64) {
    let got = got.as_f64().unwrap();
    assert!(
        (got - exact).abs() / exact <= 0.05,
        "{got} is not within 5% of {exact}"
    );
}

#[tokio::test]
async fn performance_reports_percentiles_within_five_percent_and_the_peak_hour() {
    let stack = stack().await;
    let f = fixture(&stack).await;
    let r = get(
        &stack,
        &format!("analytics/performance?{}", f.period()),
        &f.user,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    // Latencies 30, 50, 100, 800, 2000: nearest-rank p50 = 100, p95 = p99 = 2000.
    let o = &r.json["overall"];
    within_5_percent(&o["latency_ms"]["p50"], 100.0);
    within_5_percent(&o["latency_ms"]["p95"], 2000.0);
    within_5_percent(&o["latency_ms"]["p99"], 2000.0);
    assert_eq!(r.raw(&["overall", "latency_ms", "avg"]), "596.0");
    assert_eq!(r.raw(&["overall", "error_rate"]), "0.4000");
    assert_eq!(
        r.json["peak_hour"],
        json!({"hour": 10, "requests": 2, "timezone": "UTC"})
    );
    assert_eq!(
        r.json["most_used_endpoint"],
        json!({"endpoint": "/v1/chat", "requests": 3})
    );
    let opus = r.json["by_model"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "anthropic/claude-3-opus")
        .unwrap();
    within_5_percent(&opus["latency_ms"]["p99"], 800.0);
}

#[tokio::test]
async fn percentiles_stay_within_five_percent_over_many_latencies() {
    let stack = stack().await;
    let user = unique_user("latency");
    let at = midnight_days_ago(3) + Duration::hours(6);
    let latencies: Vec<u32> = (0..300u32).map(|i| 5 + (i * 7919) % 4000).collect();
    for (chunk_no, chunk) in latencies.chunks(100).enumerate() {
        let events = chunk
            .iter()
            .enumerate()
            .map(|(i, l)| {
                request_event(
                    &format!("{user}-{chunk_no}-{i}"),
                    &user,
                    at,
                    "p",
                    "m",
                    "/e",
                    200,
                    *l,
                    1,
                    "0",
                    0,
                    0,
                    "",
                )
            })
            .collect();
        ingest(&stack, events).await;
    }
    let r = get(
        &stack,
        &format!(
            "analytics/performance?start={}&end={}",
            iso(at),
            iso(at + Duration::hours(1))
        ),
        &user,
        &[],
    )
    .await;
    let mut sorted = latencies.clone();
    sorted.sort();
    for (q, name) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let rank = (q * sorted.len() as f64).ceil() as usize;
        within_5_percent(
            &r.json["overall"]["latency_ms"][name],
            f64::from(sorted[rank - 1]),
        );
    }
}

#[tokio::test]
async fn another_users_data_is_invisible_and_an_admin_may_ask_for_it() {
    let stack = stack().await;
    let f = fixture(&stack).await;
    let other = unique_user("other");
    let mine = get(
        &stack,
        &format!("analytics/summary?{}", f.period()),
        &other,
        &[],
    )
    .await;
    assert_eq!(mine.json["usage"]["total_requests"], 0);
    let peek = get(
        &stack,
        &format!("analytics/summary?user_id={}&{}", f.user, f.period()),
        &other,
        &[],
    )
    .await;
    assert_eq!(peek.status, 403);
    let admin = get(
        &stack,
        &format!("analytics/summary?user_id={}&{}", f.user, f.period()),
        "root",
        &["admin"],
    )
    .await;
    assert_eq!(admin.json["usage"]["total_requests"], 5);
}

#[tokio::test]
async fn the_csv_export_quotes_neutralises_and_pages_without_losing_a_row() {
    let stack = stack().await;
    let f = fixture(&stack).await;
    let mut rows = vec![];
    let mut path = format!("/prod/api/v1/analytics/export/csv?limit=2&{}", f.period());
    let router = meterbell_dev::local_api::Router::from_stack(&stack).unwrap();
    let auth = vec![(
        "authorization".to_owned(),
        format!("Bearer {}", token(&f.user, &[])),
    )];
    for page in 0.. {
        assert!(page < 10, "too many pages");
        let res = router.handle("GET", &path, &auth, b"").await;
        assert_eq!(res.status, 200);
        let header = |n: &str| {
            res.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            header("content-type").as_deref(),
            Some("text/csv; charset=utf-8")
        );
        let text = String::from_utf8(res.body.clone()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            reader.headers().unwrap(),
            vec![
                "Date",
                "Time",
                "Provider",
                "Model",
                "Credits",
                "Cost (USD)",
                "Description"
            ]
        );
        for record in reader.records() {
            rows.push(
                record
                    .unwrap()
                    .iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            );
        }
        match header("x-next-cursor") {
            Some(c) => path = format!("/prod/api/v1/analytics/export/csv?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[0][6], "LLM, \"quoted\"");
    assert_eq!(rows[0][5], "0.0150");
    assert_eq!(rows[0][1], "10:15:00");
    assert_eq!(rows[1][6], "'=HYPERLINK(\"http://x\")");
    assert_eq!(rows[2][6], "line\nbreak");
    assert_eq!(rows[3][6], "'+1");
    assert_eq!(rows[4][2], "anthropic");
}

#[tokio::test]
async fn the_json_export_has_the_same_rows_and_a_forged_cursor_is_a_400() {
    let stack = stack().await;
    let f = fixture(&stack).await;
    let r = get(
        &stack,
        &format!("analytics/export/json?{}", f.period()),
        &f.user,
        &[],
    )
    .await;
    assert_eq!(r.json["rows"].as_array().unwrap().len(), 5);
    assert_eq!(r.raw(&["rows", "0", "cost_usd"]), "0.0150");
    assert!(r.json["next_cursor"].is_null());
    let paged = get(
        &stack,
        &format!("analytics/export/json?limit=1&{}", f.period()),
        &f.user,
        &[],
    )
    .await;
    let cursor = paged.json["next_cursor"].as_str().unwrap().to_owned();
    let other = get(
        &stack,
        &format!("analytics/export/json?cursor={cursor}"),
        &unique_user("thief"),
        &[],
    )
    .await;
    assert_eq!(other.status, 400, "another user's cursor");
    let mut forged = cursor.clone();
    forged.replace_range(2..4, "zz");
    let bad = get(
        &stack,
        &format!("analytics/export/json?cursor={forged}"),
        &f.user,
        &[],
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["field"], "cursor");
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_naming_it() {
    let stack = stack().await;
    let cases = [
        ("analytics/summary?days=abc", "days"),
        ("analytics/summary?days=0", "days"),
        ("analytics/summary?days=100000", "days"),
        ("analytics/time-series?granularity=minute", "granularity"),
        ("analytics/top-models?limit=0", "limit"),
        ("analytics/top-models?limit=101", "limit"),
        (
            "analytics/summary?start=2026-11-02T00:00:00Z&end=2026-11-01T00:00:00Z",
            "start",
        ),
        ("analytics/summary?tz=Not/AZone", "tz"),
        ("analytics/providers?day=7", "day"),
        (
            "analytics/endpoints?start=yesterday&end=2026-11-01T00:00:00Z",
            "start",
        ),
        (
            "analytics/performance?days=7&start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z",
            "days",
        ),
        ("analytics/export/csv?limit=-1", "limit"),
        ("analytics/export/csv?cursor=nonsense", "cursor"),
        ("admin/analytics/top-users?by=mood", "by"),
    ];
    for (path, field) in cases {
        let r = get(&stack, path, "root", &["admin"]).await;
        assert_eq!(r.status, 400, "{path}: {}", r.json);
        assert_eq!(r.json["error"]["field"], field, "{path}");
    }
}

#[tokio::test]
async fn admin_routes_need_the_admin_role() {
    let stack = stack().await;
    for path in ["admin/analytics/overview", "admin/analytics/top-users"] {
        assert_eq!(get(&stack, path, "someone", &[]).await.status, 403);
        assert_eq!(get(&stack, path, "svc", &["service"]).await.status, 403);
    }
}

#[tokio::test]
async fn the_admin_overview_and_top_users_rank_everyone_on_the_period() {
    let stack = stack().await;
    // A day no other test writes to, so system-wide figures are ours alone (make test starts
    // with empty emulators; the random day keeps repeated local runs apart too).
    let offset = 100 + (uuid::Uuid::new_v4().as_u128() % 290) as i64;
    let day = midnight_days_ago(offset);
    let (x, y, z) = (unique_user("x"), unique_user("y"), unique_user("z"));
    let e = |u: &str, n: u32, cost: &str| {
        request_event(
            &format!("{u}-{n}"),
            u,
            day + Duration::hours(i64::from(n)),
            "openai",
            "gpt-4o",
            "/v1/chat",
            200,
            10,
            1,
            cost,
            0,
            0,
            "",
        )
    };
    ingest(
        &stack,
        vec![
            e(&x, 1, "0.30"),
            e(&y, 1, "0.05"),
            e(&y, 2, "0.03"),
            e(&y, 3, "0.02"),
            e(&z, 1, "0.15"),
            e(&z, 2, "0.05"),
        ],
    )
    .await;
    let period = format!("start={}&end={}", iso(day), iso(day + Duration::days(1)));

    let o = get(
        &stack,
        &format!("admin/analytics/overview?{period}"),
        "root",
        &["admin"],
    )
    .await;
    assert_eq!(o.status, 200, "{}", o.json);
    assert_eq!(o.json["totals"]["requests"], 6);
    assert_eq!(o.raw(&["totals", "cost_usd"]), "0.60");
    assert_eq!(
        o.json["active_users"]["daily"],
        json!([{"date": day.date_naive().to_string(), "users": 3}])
    );
    assert_eq!(o.json["active_users"]["distinct"], 3);
    assert_eq!(o.json["by_model"]["openai/gpt-4o"]["requests"], 6);

    let by_cost = get(
        &stack,
        &format!("admin/analytics/top-users?{period}"),
        "root",
        &["admin"],
    )
    .await;
    let order: Vec<&str> = by_cost.json["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, [x.as_str(), z.as_str(), y.as_str()]);
    let by_requests = get(
        &stack,
        &format!("admin/analytics/top-users?by=requests&limit=1&{period}"),
        "root",
        &["admin"],
    )
    .await;
    assert_eq!(
        by_requests.json["users"],
        json!([{"user_id": y, "requests": 3, "cost_usd": 0.10}])
    );
}
