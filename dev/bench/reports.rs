//! The scheduled report-email run for many subscribers: a day of quarter-hourly runs of
//! `report-schedule` (time, items and billed read units each), then `report-sender` draining
//! `ReportQueue` (time, items and read units per email). Subscribers are spread over zones on
//! and off the whole hour, a share of them with usage the day before. Needs the emulators
//! (scripts/bench.sh starts its own).

use std::time::Instant;

use anyhow::{anyhow, Result};
use chrono::{Duration, DurationRound, Utc};
use futures::StreamExt;
use meterbell::analytics::ingest::ingest;
use meterbell::notifications::preferences::{CheckedUpdate, EmailAddress};
use meterbell::notifications::store::accounts;
use meterbell::platform::domain::UserId;
use meterbell::platform::handler::Tick;
use serde_json::{json, Value};

use super::cost::Recorder;
use crate::poller::Consumer;
use crate::stack::{Clients, LocalStack};

/// Zones and their share of subscribers (per cent): on the hour, half and quarter hours.
const ZONES: [(&str, usize); 8] = [
    ("UTC", 10),
    ("Europe/Paris", 20),
    ("America/New_York", 20),
    ("Asia/Kolkata", 25),
    ("Asia/Kathmandu", 5),
    ("America/St_Johns", 5),
    ("Australia/Adelaide", 10),
    ("Australia/Eucla", 5),
];
/// One subscriber in this many has usage the day before the run.
const ACTIVE_ONE_IN: usize = 4;

fn zone_of(i: usize) -> &'static str {
    let slot = i % 100;
    let mut acc = 0;
    for (zone, share) in ZONES {
        acc += share;
        if slot < acc {
            return zone;
        }
    }
    "UTC"
}

pub async fn run(stack: &LocalStack) -> Result<()> {
    let users: usize = std::env::var("BENCH_REPORT_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let function = |id: &str| {
        stack
            .template
            .function(id)
            .ok_or_else(|| anyhow!("no {id} in template.yaml"))
    };
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    // Yesterday (UTC), so every 08:00 of the day and the usage before it are in the past.
    let day = Utc::now().duration_trunc(Duration::days(1))? - Duration::days(1);

    // Subscribers, through the store the preferences route uses (registry included).
    let setup = Instant::now();
    let prefs_app = stack.app_for(function("PreferencesPutFunction")?)?;
    let store = accounts(&prefs_app).await?;
    let names: Vec<String> = (0..users)
        .map(|i| format!("bench-rep-{run_id}-{i}"))
        .collect();
    let mut writes = futures::stream::iter(names.iter().enumerate().map(|(i, u)| {
        let store = &store;
        async move {
            let user = UserId::parse(u).map_err(anyhow::Error::msg)?;
            let update = CheckedUpdate {
                email_address: Some(Some(
                    EmailAddress::parse(&format!("{u}@example.com")).map_err(anyhow::Error::msg)?,
                )),
                reports: vec![("daily", true)],
                tz: Some(Some(zone_of(i).to_owned())),
                ..CheckedUpdate::default()
            };
            store.update_preferences(&user, &update).await?;
            Ok::<_, anyhow::Error>(())
        }
    }))
    .buffer_unordered(16);
    while let Some(done) = writes.next().await {
        done?;
    }
    drop(writes);
    // Usage the day before each active subscriber's 08:00: five requests each.
    let ingest_app = stack.app_for(function("UsageIngestFunction")?)?;
    let mut events: Vec<Value> = vec![];
    for (i, u) in names
        .iter()
        .enumerate()
        .filter(|(i, _)| i % ACTIVE_ONE_IN == 0)
    {
        let at = day - Duration::hours(2) - Duration::minutes((i % 600) as i64);
        for n in 0..5 {
            events.push(json!({"event_id": format!("{u}-{n}"), "user_id": u,
                "timestamp": (at - Duration::hours(n)).to_rfc3339(), "kind": "request",
                "provider": "openai", "model": if n % 2 == 0 { "gpt-4o" } else { "gpt-4o-mini" },
                "endpoint": "/v1/chat/completions", "status_code": 200, "latency_ms": 300,
                "input_tokens": 500, "output_tokens": 100, "credits": 3, "cost_usd": 0.002}));
        }
    }
    for chunk in events.chunks(100) {
        ingest(&ingest_app, chunk)
            .await
            .map_err(|e| anyhow!("ingest: {e}"))?;
    }
    println!(
        "  set up {users} subscribers (daily report) over {} zones, one in {ACTIVE_ONE_IN} with \
         usage, in {:.1} s",
        ZONES.len(),
        setup.elapsed().as_secs_f64()
    );

    // Every read billed: a DynamoDB client that records them (one call at a time).
    let recorder = Recorder::default();
    let recorded = LocalStack {
        template: stack.template.clone(),
        resolver: stack.resolver.clone(),
        clients: Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                stack
                    .clients
                    .dynamodb
                    .config()
                    .to_builder()
                    .interceptor(recorder.clone())
                    .build(),
            ),
            ..stack.clients.clone()
        },
    };
    let schedule_app = recorded.app_for(function("ReportScheduleFunction")?)?;
    let Some(meterbell::functions::Handler::Schedule(schedule)) =
        meterbell::functions::by_binary("report-schedule")
    else {
        return Err(anyhow!("report-schedule is not a scheduled handler"));
    };
    recorder.take()?;
    let mut runs = vec![];
    let started = Instant::now();
    for q in 0..96 {
        let at = day + Duration::minutes(15 * q);
        let t = Instant::now();
        schedule(
            schedule_app.clone(),
            Tick {
                at,
                id: "bench".into(),
            },
        )
        .await
        .map_err(|e| anyhow!("schedule: {e}"))?;
        let (_, rru, items) = recorder.take()?;
        runs.push((at, t.elapsed().as_secs_f64(), items, rru));
    }
    let day_secs = started.elapsed().as_secs_f64();
    let total_items: usize = runs.iter().map(|r| r.2).sum();
    let total_rru: f64 = runs.iter().map(|r| r.3).sum();
    let busiest = runs
        .iter()
        .max_by_key(|r| r.2)
        .ok_or_else(|| anyhow!("no runs"))?;
    let idle = runs
        .iter()
        .min_by_key(|r| r.2)
        .ok_or_else(|| anyhow!("no runs"))?;
    println!(
        "  schedule, 96 runs of one day: {day_secs:.2} s in all, {total_items} items read \
         ({total_rru:.1} RRU); every subscriber read once plus the zone list per run"
    );
    println!(
        "  busiest run ({} UTC, 08:00 in Asia/Kolkata): {:.3} s, {} items, {:.1} RRU; idle run \
         ({} UTC): {:.3} s, {} items, {:.1} RRU",
        busiest.0.format("%H:%M"),
        busiest.1,
        busiest.2,
        busiest.3,
        idle.0.format("%H:%M"),
        idle.1,
        idle.2,
        idle.3
    );

    // The sender, one poller so the recorder bills one call at a time.
    let sender = function("ReportSenderFunction")?;
    let consumer = Consumer {
        function: sender.logical_id.clone(),
        queue_url: recorded.queue_url("ReportQueue")?.to_owned(),
        queue_arn: String::new(),
        source: sender.queue_sources[0].clone(),
        handler: match meterbell::functions::by_binary(&sender.binary) {
            Some(meterbell::functions::Handler::Sqs(h)) => h,
            _ => return Err(anyhow!("report-sender is not a consumer")),
        },
        app: recorded.app_for(sender)?,
    };
    let before = meterbell::analytics::store::process_stats();
    let started = Instant::now();
    let mut empty = 0;
    let mut messages = 0;
    while empty < 3 {
        let (got, _) = consumer
            .poll_once(&stack.clients.sqs, std::time::Duration::from_millis(200))
            .await?;
        messages += got;
        empty = if got == 0 { empty + 1 } else { 0 };
    }
    let secs = started.elapsed().as_secs_f64();
    let (_, rru, items) = recorder.take()?;
    let after = meterbell::analytics::store::process_stats();
    let n = users as f64;
    println!(
        "  senders: {messages} messages, {users} emails built and sent in {secs:.1} s with one \
         poller ({:.0} emails/s); per email {:.1} items and {:.2} RRU read ({:.1} items from \
         the rollups), plus 2 writes (claim, sent)",
        n / secs,
        items as f64 / n,
        rru / n,
        (after.items_read - before.items_read) as f64 / n,
    );
    Ok(())
}
