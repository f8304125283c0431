//! Every analytics route against DynamoDB Local, with the expected figures worked out by hand
//! from the events each test sends.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{midnight_days_ago, TestApi, UsageEventBuilder};

/// Sends `events` as the upstream service; every one must be taken.
async fn ingest(api: &TestApi, events: Vec<Value>) {
    let r = api
        .as_service()
        .post_events(&json!({"events": events}))
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["rejected"], 0, "{}", r.json);
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

async fn fixture(api: &TestApi) -> Fixture {
    let user = unique_user("analyst");
    let d = midnight_days_ago(10);
    let h = |days: i64, hours: i64, minutes: i64| {
        d + Duration::days(days) + Duration::hours(hours) + Duration::minutes(minutes)
    };
    let request = |n: &str| {
        UsageEventBuilder::request()
            .id(&format!("{user}-{n}"))
            .user(&user)
    };
    let payment = |n: &str| {
        UsageEventBuilder::payment()
            .id(&format!("{user}-{n}"))
            .user(&user)
    };
    ingest(
        api,
        vec![
            request("1")
                .at(h(0, 10, 15))
                .provider("openai")
                .model("gpt-4o")
                .endpoint("/v1/chat")
                .status_code(200)
                .latency_ms(100)
                .credits(100)
                .cost("0.0150")
                .tokens(1000, 200)
                .description("LLM, \"quoted\"")
                .build(),
            request("2")
                .at(h(0, 10, 45))
                .provider("openai")
                .model("gpt-4o")
                .endpoint("/v1/chat")
                .status_code(500)
                .latency_ms(2000)
                .credits(0)
                .cost("0")
                .tokens(0, 0)
                .description("=HYPERLINK(\"http://x\")")
                .build(),
            request("3")
                .at(h(0, 23, 30))
                .provider("anthropic")
                .model("claude-3-opus")
                .endpoint("/v1/messages")
                .status_code(200)
                .latency_ms(800)
                .credits(150)
                .cost("0.0450")
                .tokens(500, 300)
                .description("line\nbreak")
                .build(),
            request("4")
                .at(h(1, 4, 10))
                .provider("openai")
                .model("gpt-4o-mini")
                .endpoint("/v1/chat")
                .status_code(200)
                .latency_ms(50)
                .credits(10)
                .cost("0.0006")
                .tokens(100, 50)
                .description("+1")
                .build(),
            request("5")
                .at(h(3, 12, 0))
                .provider("anthropic")
                .model("claude-3-opus")
                .endpoint("/v1/messages")
                .status_code(429)
                .latency_ms(30)
                .credits(0)
                .cost("0")
                .tokens(0, 0)
                .description("rate limited")
                .build(),
            payment("p1")
                .at(h(1, 9, 0))
                .status("succeeded")
                .amount("20")
                .credits(2000)
                .build(),
            payment("p2")
                .at(h(2, 9, 0))
                .status("refunded")
                .amount("5")
                .credits(500)
                .build(),
            payment("p3")
                .at(h(2, 10, 0))
                .status("failed")
                .amount("10")
                .credits(0)
                .build(),
        ],
    )
    .await;
    Fixture { user, d }
}

/// A request of one credit at `at` on p/m /e (200, 10 ms, no tokens, no description).
fn small_request(id: &str, user: &str, at: DateTime<Utc>, cost: &str) -> Value {
    UsageEventBuilder::request()
        .id(id)
        .user(user)
        .at(at)
        .provider("p")
        .model("m")
        .endpoint("/e")
        .status_code(200)
        .latency_ms(10)
        .credits(1)
        .cost(cost)
        .tokens(0, 0)
        .description("")
        .build()
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
    let api = TestApi::spawn().await;
    let f = fixture(&api).await;

    let r = api.as_user(&f.user).summary(&f.period()).await;

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
    let api = TestApi::spawn().await;
    let f = fixture(&api).await;
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

    let r = api
        .as_user(&f.user)
        .time_series(&format!(
            "granularity=day&tz=America/New_York&start={}&end={}",
            iso(start),
            iso(end)
        ))
        .await;

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
    let api = TestApi::spawn().await;
    let f = fixture(&api).await;
    let start = f.d + Duration::hours(10);

    let r = api
        .as_user(&f.user)
        .time_series(&format!(
            "granularity=hour&start={}&end={}",
            iso(start),
            iso(start + Duration::hours(3))
        ))
        .await;

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
    let api = TestApi::spawn().await;
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
    let e = |n: &str, at| small_request(&format!("{user}-{n}"), &user, at, "0.01");
    ingest(
        &api,
        vec![
            e("w1", w - Duration::hours(1)),
            e("w2", w + Duration::hours(1)),
            e("m1", m - Duration::hours(1)),
            e("m2", m + Duration::hours(1)),
        ],
    )
    .await;

    let weeks = api
        .as_user(&user)
        .time_series(&format!(
            "granularity=week&start={}&end={}",
            iso(w - Duration::days(7)),
            iso(w + Duration::days(7))
        ))
        .await;
    let months = api
        .as_user(&user)
        .time_series(&format!(
            "granularity=month&start={}&end={}",
            iso(m - Duration::days(1)),
            iso(m + Duration::days(1))
        ))
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
    let api = TestApi::spawn().await;
    let f = fixture(&api).await;
    let analyst = api.as_user(&f.user);

    let p = analyst.providers(&f.period()).await;
    let m = analyst.top_models(&format!("limit=2&{}", f.period())).await;
    let e = analyst.endpoints(&f.period()).await;

    assert_eq!(p.json["total_providers"], 2);
    assert_eq!(p.json["providers"][0]["provider"], "anthropic");
    assert_eq!(p.raw(&["providers", "0", "cost_percentage"]), "74.26"); // 0.045 / 0.0606
    assert_eq!(
        p.json["providers"][1]["models_used"],
        json!(["gpt-4o", "gpt-4o-mini"])
    );
    assert_eq!(p.raw(&["providers", "1", "avg_cost_per_request"]), "0.0052"); // 0.0156 / 3

    assert_eq!(m.json["total"], 3);
    let names: Vec<&str> = m.json["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["model"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["anthropic/claude-3-opus", "openai/gpt-4o"]);
    assert_eq!(m.json["models"][1]["model_name"], "gpt-4o");

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
    let api = TestApi::spawn().await;
    let f = fixture(&api).await;

    let r = api.as_user(&f.user).performance(&f.period()).await;

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
    let api = TestApi::spawn().await;
    let user = unique_user("latency");
    let at = midnight_days_ago(3) + Duration::hours(6);
    let latencies: Vec<u32> = (0..300u32).map(|i| 5 + (i * 7919) % 4000).collect();
    for (chunk_no, chunk) in latencies.chunks(100).enumerate() {
        let events = chunk
            .iter()
            .enumerate()
            .map(|(i, l)| {
                UsageEventBuilder::request()
                    .id(&format!("{user}-{chunk_no}-{i}"))
                    .user(&user)
                    .at(at)
                    .provider("p")
                    .model("m")
                    .endpoint("/e")
                    .status_code(200)
                    .latency_ms(*l)
                    .credits(1)
                    .cost("0")
                    .tokens(0, 0)
                    .description("")
                    .build()
            })
            .collect();
        ingest(&api, events).await;
    }

    let r = api
        .as_user(&user)
        .performance(&format!(
            "start={}&end={}",
            iso(at),
            iso(at + Duration::hours(1))
        ))
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
    let api = TestApi::spawn().await;
    let f = fixture(&api).await;
    let other = unique_user("other");
    let theirs = format!("user_id={}&{}", f.user, f.period());

    let mine = api.as_user(&other).summary(&f.period()).await;
    let peek = api.as_user(&other).summary(&theirs).await;
    let admin = api.as_caller("root", &["admin"]).summary(&theirs).await;

    assert_eq!(mine.json["usage"]["total_requests"], 0);
    assert_eq!(peek.status, 403);
    assert_eq!(admin.json["usage"]["total_requests"], 5);
}

#[tokio::test]
async fn the_csv_export_quotes_neutralises_and_pages_without_losing_a_row() {
    let api = TestApi::spawn().await;
    let f = fixture(&api).await;
    let analyst = api.as_user(&f.user);

    let mut rows = vec![];
    let mut query = format!("limit=2&{}", f.period());
    for page in 0.. {
        assert!(page < 10, "too many pages");
        let res = analyst.export_csv(&query).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("text/csv; charset=utf-8"));
        assert!(
            !res.text.contains(char::REPLACEMENT_CHARACTER),
            "the CSV is UTF-8"
        );
        let mut reader = csv::Reader::from_reader(res.text.as_bytes());
        assert_eq!(
            reader.headers().unwrap(),
            vec![
                "Date",
                "Time",
                "Provider",
                "Model",
                "Credits",
                "Cost (USD)",
                "Description",
                "tag:project",
                "tag:team",
                "tag:feature",
                "Other tags"
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
        match res.header("x-next-cursor") {
            Some(c) => query = format!("limit=2&cursor={c}"),
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
    let api = TestApi::spawn().await;
    let f = fixture(&api).await;
    let analyst = api.as_user(&f.user);

    let r = analyst.export_json(&f.period()).await;
    let paged = analyst
        .export_json(&format!("limit=1&{}", f.period()))
        .await;
    let cursor = paged.json["next_cursor"].as_str().unwrap().to_owned();
    let other = api
        .as_user(&unique_user("thief"))
        .export_json(&format!("cursor={cursor}"))
        .await;
    let mut forged = cursor.clone();
    forged.replace_range(2..4, "zz");
    let bad = analyst.export_json(&format!("cursor={forged}")).await;

    assert_eq!(r.json["rows"].as_array().unwrap().len(), 5);
    assert_eq!(r.raw(&["rows", "0", "cost_usd"]), "0.0150");
    assert!(r.json["next_cursor"].is_null());
    assert_eq!(other.status, 400, "another user's cursor");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["error"]["field"], "cursor");
}

#[tokio::test]
async fn every_bad_parameter_is_a_400_naming_it() {
    let api = TestApi::spawn().await;
    let cases = [
        ("/analytics/summary?days=abc", "days"),
        ("/analytics/summary?days=0", "days"),
        ("/analytics/summary?days=100000", "days"),
        ("/analytics/time-series?granularity=minute", "granularity"),
        ("/analytics/top-models?limit=0", "limit"),
        ("/analytics/top-models?limit=101", "limit"),
        (
            "/analytics/summary?start=2026-11-02T00:00:00Z&end=2026-11-01T00:00:00Z",
            "start",
        ),
        ("/analytics/summary?tz=Not/AZone", "tz"),
        ("/analytics/providers?day=7", "day"),
        (
            "/analytics/endpoints?start=yesterday&end=2026-11-01T00:00:00Z",
            "start",
        ),
        (
            "/analytics/performance?days=7&start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z",
            "days",
        ),
        ("/analytics/export/csv?limit=-1", "limit"),
        ("/analytics/export/csv?cursor=nonsense", "cursor"),
        ("/admin/analytics/top-users?by=mood", "by"),
    ];

    for (path, field) in cases {
        let r = api.as_caller("root", &["admin"]).get(path).await;

        assert_eq!(r.status, 400, "{path}: {}", r.json);
        assert_eq!(r.json["error"]["field"], field, "{path}");
    }
}

#[tokio::test]
async fn admin_routes_need_the_admin_role() {
    let api = TestApi::spawn().await;

    for path in ["/admin/analytics/overview", "/admin/analytics/top-users"] {
        let user = api.as_user("someone").get(path).await;
        let service = api.as_caller("svc", &["service"]).get(path).await;

        assert_eq!(user.status, 403);
        assert_eq!(service.status, 403);
    }
}

#[tokio::test]
async fn the_admin_overview_and_top_users_rank_everyone_on_the_period() {
    let api = TestApi::spawn().await;
    // A day no other test writes to, so system-wide figures are ours alone (make test starts
    // with empty emulators; the random day keeps repeated local runs apart too).
    let offset = 100 + (uuid::Uuid::new_v4().as_u128() % 290) as i64;
    let day = midnight_days_ago(offset);
    let (x, y, z) = (unique_user("x"), unique_user("y"), unique_user("z"));
    let e = |u: &str, n: u32, cost: &str| {
        UsageEventBuilder::request()
            .id(&format!("{u}-{n}"))
            .user(u)
            .at(day + Duration::hours(i64::from(n)))
            .provider("openai")
            .model("gpt-4o")
            .endpoint("/v1/chat")
            .status_code(200)
            .latency_ms(10)
            .credits(1)
            .cost(cost)
            .tokens(0, 0)
            .description("")
            .build()
    };
    ingest(
        &api,
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
    let root = api.as_caller("root", &["admin"]);

    let o = root.admin_overview(&period).await;
    let by_cost = root.admin_top_users(&period).await;
    let by_requests = root
        .admin_top_users(&format!("by=requests&limit=1&{period}"))
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
    let order: Vec<&str> = by_cost.json["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, [x.as_str(), z.as_str(), y.as_str()]);
    assert_eq!(
        by_requests.json["users"],
        json!([{"user_id": y, "requests": 3, "cost_usd": 0.10}])
    );
}
