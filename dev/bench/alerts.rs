//! What alerting costs: ingest with and without budgets (write and read units per event, reads
//! per batch, events/s), and the scheduled metric-rule run (items read per user with rules, time
//! for many users). Needs the emulators (scripts/bench.sh starts its own).

use std::time::Instant;

use anyhow::{anyhow, Result};
use chrono::{Duration, DurationRound, Utc};
use meterbell::analytics::alert_rule::{Rule, RuleKind, Status};
use meterbell::analytics::budget::{Amount, Budget, BudgetPeriod, Filter};
use meterbell::analytics::ingest::{ingest, rollups_store};
use meterbell::analytics::store::{process_stats, Registry, Scope};
use meterbell::platform::domain::UserId;
use meterbell::platform::handler::Tick;
use serde_json::{json, Value};

use crate::poller::Consumer;
use crate::stack::LocalStack;

fn app(stack: &LocalStack, id: &str) -> Result<std::sync::Arc<meterbell::App>> {
    let f = stack
        .template
        .function(id)
        .ok_or_else(|| anyhow!("no {id} in template.yaml"))?;
    stack.app_for(f)
}

/// A batch of `n` request events of `user`, this minute, spread over models and endpoints.
fn batch(user: &str, tag: &str, n: usize) -> Vec<Value> {
    let at = (Utc::now() - Duration::minutes(1)).to_rfc3339();
    let models = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4"];
    let endpoints = ["/v1/chat/completions", "/v1/messages"];
    (0..n)
        .map(|i| {
            json!({"event_id": format!("bench-alerts-{tag}-{i}"), "user_id": user, "timestamp": at,
                "kind": "request", "provider": "openai", "model": models[i % models.len()],
                "endpoint": endpoints[i % endpoints.len()], "status_code": 200, "latency_ms": 200,
                "input_tokens": 100, "output_tokens": 20, "credits": 1, "cost_usd": 0.001})
        })
        .collect()
}

fn budget(id: &str, period: BudgetPeriod, tz: &str, amount_usd: i64, filter: Filter) -> Budget {
    let now = Utc::now();
    Budget {
        id: id.into(),
        amount: Amount::UsdMicros(amount_usd * 1_000_000),
        period,
        tz: tz.into(),
        thresholds: vec![50, 75, 90, 100],
        filter,
        created_at: now,
        updated_at: now,
        rev: now.timestamp_millis(),
        fired_period: None,
        fired: vec![],
        pending: vec![],
        notify: None,
    }
}

/// Ingest of `batches` batches of 100 events, each for its own user, through the whole ingest
/// path (record, low-credit and budget evaluation); each user given the budgets `list` first.
async fn ingest_run(
    stack: &LocalStack,
    label: &str,
    batches: usize,
    list: &[Budget],
) -> Result<()> {
    let app = app(stack, "UsageIngestFunction")?;
    let store = rollups_store(&app)
        .await
        .map_err(|e| anyhow!("store: {e}"))?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let users: Vec<String> = (0..batches)
        .map(|i| format!("bench-alerts-{}-{i}", &run[..8]))
        .collect();
    for u in &users {
        let user = UserId::parse(u).map_err(anyhow::Error::msg)?;
        // Credits enough that the low-credit alert stays quiet.
        let top_up = json!([{"event_id": format!("{u}-top-up"), "user_id": u,
            "timestamp": Utc::now().to_rfc3339(), "kind": "payment", "status": "succeeded",
            "amount_usd": 10, "credits": 1_000_000}]);
        ingest(
            &app,
            top_up.as_array().map(Vec::as_slice).unwrap_or_default(),
        )
        .await
        .map_err(|e| anyhow!("top-up: {e}"))?;
        if !list.is_empty() {
            store
                .save_budgets(&Scope::User(user.clone()), 0, list, &[])
                .await?;
        }
    }
    let before = process_stats();
    let started = Instant::now();
    for (i, u) in users.iter().enumerate() {
        let events = batch(u, &format!("{run}-{i}"), 100);
        ingest(&app, &events)
            .await
            .map_err(|e| anyhow!("ingest: {e}"))?;
    }
    let secs = started.elapsed().as_secs_f64();
    let after = process_stats();
    let events = (batches * 100) as f64;
    let per_batch = |a: u64, b: u64| (a - b) as f64 / batches as f64;
    println!(
        "{label:36} {:>9.1} {:>11.1} {:>11.2} {:>9.0}",
        per_batch(after.read_requests, before.read_requests),
        per_batch(after.items_read, before.items_read),
        (after.read_units - before.read_units) / batches as f64,
        events / secs
    );
    Ok(())
}

/// `users` users with one error-rate rule each (a tenth of them with usage in the last hour),
/// queued by the schedule and evaluated by the consumer, as the hourly run does.
async fn rule_run(stack: &LocalStack, users: usize) -> Result<()> {
    let evaluator_app = app(stack, "AlertRulesEvaluatorFunction")?;
    let store = rollups_store(&evaluator_app)
        .await
        .map_err(|e| anyhow!("store: {e}"))?;
    let now = Utc::now();
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let ingest_app = app(stack, "UsageIngestFunction")?;
    let setup = Instant::now();
    for i in 0..users {
        let u = format!("bench-rules-{}-{i}", &run[..8]);
        let user = UserId::parse(&u).map_err(anyhow::Error::msg)?;
        let rule = Rule {
            id: "errors".into(),
            kind: RuleKind::ErrorRate,
            limit: 500,
            window_hours: 1,
            min_requests: 10,
            filter: Filter::default(),
            created_at: now,
            updated_at: now,
            rev: 1,
            status: Status::Ok,
            epoch: 0,
            decided_through: None,
        };
        store
            .save_alert_rules(&user, 0, &[rule], &[], &[], Registry::Update)
            .await?;
        if i % 10 == 0 {
            let mut events = batch(&u, &format!("{run}-{i}"), 20);
            for e in &mut events {
                e["timestamp"] = json!((hour - Duration::minutes(30)).to_rfc3339());
            }
            ingest(&ingest_app, &events)
                .await
                .map_err(|e| anyhow!("ingest: {e}"))?;
        }
    }
    println!(
        "  set up {users} users with one rule each in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    // The schedule, queueing on the template's AlertRulesQueue.
    let schedule_app = app(stack, "AlertRulesScheduleFunction")?;
    let Some(meterbell::functions::Handler::Schedule(schedule)) =
        meterbell::functions::by_binary("alert-rules-schedule")
    else {
        return Err(anyhow!("alert-rules-schedule is not a scheduled handler"));
    };
    let before = process_stats();
    let started = Instant::now();
    schedule(
        schedule_app,
        Tick {
            at: hour + Duration::minutes(2),
            id: "bench".into(),
        },
    )
    .await
    .map_err(|e| anyhow!("schedule: {e}"))?;
    let queued = started.elapsed().as_secs_f64();
    let after_schedule = process_stats();

    // The evaluator, as Lambda's event source mapping runs it: here 4 concurrent pollers.
    let function = stack
        .template
        .function("AlertRulesEvaluatorFunction")
        .ok_or_else(|| anyhow!("no AlertRulesEvaluatorFunction"))?;
    let queue = stack.queue_url("AlertRulesQueue")?.to_owned();
    let mut tasks = vec![];
    let evaluated = Instant::now();
    for _ in 0..4 {
        let consumer = Consumer {
            function: function.logical_id.clone(),
            queue_url: queue.clone(),
            queue_arn: String::new(),
            source: function.queue_sources[0].clone(),
            handler: match meterbell::functions::by_binary(&function.binary) {
                Some(meterbell::functions::Handler::Sqs(h)) => h,
                _ => return Err(anyhow!("the evaluator is not a consumer")),
            },
            app: evaluator_app.clone(),
        };
        let sqs = stack.clients.sqs.clone();
        tasks.push(tokio::spawn(async move {
            let mut empty = 0;
            while empty < 3 {
                let (got, _) = consumer
                    .poll_once(&sqs, std::time::Duration::from_millis(200))
                    .await?;
                empty = if got == 0 { empty + 1 } else { 0 };
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = evaluated.elapsed().as_secs_f64();
    let after = process_stats();
    let n = users as f64;
    println!(
        "  schedule: {:.2} s to page the registry and queue {} messages ({:.1} read units)",
        queued,
        users.div_ceil(meterbell::seam::alert_rules::USERS_PER_MESSAGE),
        after_schedule.read_units - before.read_units
    );
    println!(
        "  evaluation: {:.1} s for {users} users with 4 pollers ({:.0} users/s); per user {:.2} reads, \
         {:.2} items and {:.2} read units ({:.0}% of users with usage in the window)",
        secs,
        n / secs,
        (after.read_requests - after_schedule.read_requests) as f64 / n,
        (after.items_read - after_schedule.items_read) as f64 / n,
        (after.read_units - after_schedule.read_units) / n,
        10.0
    );
    Ok(())
}

pub async fn run(stack: &LocalStack) -> Result<()> {
    let batches: usize = std::env::var("BENCH_ALERT_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    println!("ingest with alert evaluation: {batches} batches of 100 events, one user per batch");
    println!(
        "(reads after the commit, per batch; writes: none unless a threshold is crossed, so the \
         write units per event are bench-cost's figures with or without budgets)"
    );
    println!(
        "{:36} {:>9} {:>11} {:>11} {:>9}",
        "", "reads", "items", "RU (local)", "events/s"
    );
    let three = |tz: &str, periods: [BudgetPeriod; 3]| {
        vec![
            budget("all", periods[0], tz, 1_000, Filter::default()),
            budget(
                "gpt-4o",
                periods[1],
                tz,
                500,
                Filter {
                    model: Some("gpt-4o".into()),
                    ..Filter::default()
                },
            ),
            budget(
                "chat",
                periods[2],
                tz,
                100,
                Filter {
                    endpoint: Some("/v1/chat/completions".into()),
                    ..Filter::default()
                },
            ),
        ]
    };
    use BudgetPeriod::{Day, Month, Week};
    ingest_run(stack, "no budgets (low-credit check only)", batches, &[]).await?;
    ingest_run(
        stack,
        "3 monthly budgets, UTC, none crossed",
        batches,
        &three("UTC", [Month, Month, Month]),
    )
    .await?;
    ingest_run(
        stack,
        "month+week+day budgets, Europe/Paris",
        batches,
        &three("Europe/Paris", [Month, Week, Day]),
    )
    .await?;
    let users: usize = std::env::var("BENCH_RULE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    println!("\nscheduled metric-rule run: {users} users with one rule each");
    rule_run(stack, users).await
}
