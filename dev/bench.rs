//! `make bench` figures. Timings are of this machine (shared, two cores, noisy): compare rows
//! within one run, not across machines.
//!
//! Cold start: each function's release binary is started against a local stand-in for the
//! Lambda Runtime API; init time is from process spawn until the binary's first
//! `GET /2018-06-01/runtime/invocation/next`. The same is measured for an empty `lambda_http`
//! function built with the same profile, and each function is printed as a ratio to it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::template::{Resolver, Template};

pub const BASELINE_BINARY: &str = "bench-empty";
const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";

/// Milliseconds from spawning `binary` until it asks the runtime API for its first event.
fn init_once(binary: &Path, env: &[(String, String)], listener: &TcpListener) -> Result<Duration> {
    let port = listener.local_addr()?.port();
    let start = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    listener.set_nonblocking(false)?;
    let result = (|| -> Result<Duration> {
        loop {
            let (mut stream, _) = listener.accept()?;
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line)?;
            if line.starts_with("GET ") && line.contains(NEXT_PATH) {
                let elapsed = start.elapsed();
                let _ = stream
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
                return Ok(elapsed);
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!(
                    "{} never asked for an event (first request: {line:?})",
                    binary.display()
                );
            }
        }
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The environment a function gets on Lambda: the runtime's variables plus the template's.
fn lambda_env(template: &Template, binary: &str) -> Result<Vec<(String, String)>> {
    let mut env = vec![
        ("AWS_LAMBDA_FUNCTION_NAME".to_owned(), binary.to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
            "256".to_owned(),
        ),
        (
            "AWS_LAMBDA_FUNCTION_VERSION".to_owned(),
            "$LATEST".to_owned(),
        ),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
        ("AWS_SESSION_TOKEN".to_owned(), "test".to_owned()),
        ("RUST_LOG".to_owned(), "info".to_owned()),
    ];
    if let Some(function) = template.functions.iter().find(|f| f.binary == binary) {
        let r = Resolver::offline(
            template,
            &[
                ("JwtSecret", crate::tokens::DEV_JWT_SECRET),
                ("CursorSecret", crate::tokens::DEV_CURSOR_SECRET),
            ],
        );
        env.extend(r.environment(template, function)?);
    }
    Ok(env)
}

/// Prints binary sizes and cold-start init times for every function of the template.
pub fn cold_start(template: &Template, bin_dir: &Path, runs: usize) -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut binaries: Vec<String> = vec![BASELINE_BINARY.to_owned()];
    binaries.extend(template.functions.iter().map(|f| f.binary.clone()));
    let envs: Vec<Vec<(String, String)>> = binaries
        .iter()
        .map(|b| lambda_env(template, b))
        .collect::<Result<_>>()?;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); binaries.len()];
    // Interleaved, so a burst of noise on the machine spreads over every binary alike.
    for _ in 0..runs {
        for (i, binary) in binaries.iter().enumerate() {
            samples[i].push(init_once(&bin_dir.join(binary), &envs[i], &listener)?);
        }
    }
    for s in &mut samples {
        s.sort();
    }
    let baseline = percentile(&samples[0], 0.5).as_secs_f64();
    println!("cold start: {runs} runs each, init = spawn → first GET {NEXT_PATH}");
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>8}  {:>12}",
        "binary", "size MB", "p50 ms", "p90 ms", "ratio", "target"
    );
    for (i, binary) in binaries.iter().enumerate() {
        let size = std::fs::metadata(bin_dir.join(binary))
            .map_err(|e| {
                anyhow!("{binary}: {e} (build with cargo build --release -p meterbell-functions)")
            })?
            .len() as f64
            / 1_000_000.0;
        let p50 = percentile(&samples[i], 0.5).as_secs_f64();
        let p90 = percentile(&samples[i], 0.9).as_secs_f64();
        let ratio = p50 / baseline;
        let verdict = if binary == BASELINE_BINARY {
            "baseline".to_owned()
        } else {
            let ok = ratio <= 1.5 && size <= 10.0;
            format!("{} ≤1.5×, ≤10MB", if ok { "meets" } else { "MISSES" })
        };
        println!(
            "{binary:<28} {size:>10.2} {:>10.2} {:>10.2} {ratio:>7.2}×  {verdict:>12}",
            p50 * 1e3,
            p90 * 1e3
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- analytics

pub mod analytics {
    //! Ingest rate and write units, read cost against event count, export rate and memory.
    //! Needs the emulators (scripts/bench.sh starts its own).

    use std::sync::Arc;
    use std::time::Instant;

    use anyhow::{anyhow, Result};
    use chrono::{Duration, DurationRound, Utc};
    use meterbell::analytics::event::{UsageEvent, Window};
    use meterbell::analytics::store::{
        process_conflicts, process_stats, ProcessCharges, UsageStore,
    };
    use meterbell::platform::domain::UserId;
    use serde_json::json;

    use crate::local_api::Router;
    use crate::stack::LocalStack;
    use crate::tokens::{mint, DEV_JWT_SECRET};

    fn store(stack: &LocalStack) -> UsageStore {
        UsageStore::new(
            stack.clients.dynamodb.clone(),
            stack.resolver.refs.get("EventsTable").map(String::as_str),
            stack.resolver.refs.get("RollupsTable").map(String::as_str),
            400,
        )
    }

    /// `n` request events for `user`, spread evenly over the last `days` days.
    pub fn events(user: &str, n: usize, days: i64, tag: &str) -> Vec<UsageEvent> {
        let now = Utc::now() - Duration::minutes(1);
        let span = Duration::days(days).num_seconds();
        let models = [
            "gpt-4o",
            "gpt-4o-mini",
            "claude-sonnet-4",
            "claude-haiku-4",
            "text-embedding-3-small",
        ];
        let endpoints = ["/v1/chat/completions", "/v1/messages", "/v1/embeddings"];
        let window = Window {
            now: Utc::now(),
            retention_days: 400,
        };
        (0..n)
            .filter_map(|i| {
                let at = now - Duration::seconds((i as i64 * 7919) % span.max(1));
                let raw = json!({"event_id": format!("bench-{tag}-{i}"), "user_id": user, "timestamp": at.to_rfc3339(),
                    "kind": "request", "provider": if i % 2 == 0 { "openai" } else { "anthropic" },
                    "model": models[i % models.len()], "endpoint": endpoints[i % endpoints.len()],
                    "status_code": if i % 31 == 0 { 500 } else { 200 }, "latency_ms": 50 + (i * 37) % 3000,
                    "input_tokens": 100 + i % 900, "output_tokens": 10 + i % 300, "credits": 1 + i % 50,
                    "cost_usd": ((1 + i % 50) as f64) / 10_000.0, "description": "bench"});
                UsageEvent::parse(&raw, window).ok()
            })
            .collect()
    }

    /// Records `events` in batches of `batch` from `workers` concurrent tasks.
    async fn ingest(
        stack: &LocalStack,
        events: Vec<UsageEvent>,
        batch: usize,
        workers: usize,
    ) -> Result<f64> {
        let batches: Vec<Vec<UsageEvent>> =
            events.chunks(batch).map(<[UsageEvent]>::to_vec).collect();
        let queue = Arc::new(tokio::sync::Mutex::new(batches));
        let mut tasks = vec![];
        let start = Instant::now();
        for _ in 0..workers {
            let queue = queue.clone();
            let store = store(stack);
            tasks.push(tokio::spawn(async move {
                loop {
                    let Some(next) = queue.lock().await.pop() else {
                        return Ok::<_, anyhow::Error>(());
                    };
                    store.record(&next).await?;
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok(start.elapsed().as_secs_f64())
    }

    pub async fn run(stack: &LocalStack, sizes: &[usize]) -> Result<()> {
        let workers: usize = std::env::var("BENCH_WORKERS")
            .ok()
            .and_then(|w| w.parse().ok())
            .unwrap_or(8);
        println!("\ningest: {workers} worker tasks in one process, events of 20 users over 2 days");
        println!(
            "{:>6} {:>8} {:>9} {:>10} {:>12} {:>10}",
            "batch", "events", "seconds", "events/s", "WCU/event", "retried"
        );
        for (batch, n) in [(1usize, 400usize), (25, 2500), (100, 5000)] {
            let tag = format!("ingest{batch}-{}", uuid::Uuid::new_v4().simple());
            let mut all = vec![];
            for u in 0..20 {
                all.extend(events(
                    &format!("bench-{tag}-u{u}"),
                    n / 20,
                    2,
                    &format!("{tag}-{u}"),
                ));
            }
            let w0 = process_stats().write_units;
            let c0 = process_conflicts();
            let secs = ingest(stack, all, batch, workers).await?;
            let w1 = process_stats().write_units;
            let retried = process_conflicts() - c0;
            println!(
                "{batch:>6} {n:>8} {secs:>9.2} {:>10.0} {:>12.2} {retried:>10}",
                n as f64 / secs,
                (w1 - w0) / n as f64
            );
        }

        println!("\nreads for one user, events spread over 90 days (handler time includes JSON)");
        println!(
            "{:>8} {:<34} {:>7} {:>9} {:>9}",
            "events", "route", "items", "RCU", "ms"
        );
        let secret = stack
            .resolver
            .parameters
            .get("JwtSecret")
            .cloned()
            .unwrap_or_else(|| DEV_JWT_SECRET.into());
        let router = Router::from_stack(stack)?;
        for &n in sizes {
            let user = format!("bench-reader-{n}-{}", uuid::Uuid::new_v4().simple());
            ingest(stack, events(&user, n, 90, &user), 100, 8).await?;
            let auth = vec![(
                "authorization".to_owned(),
                format!("Bearer {}", mint(&secret, &user, &[], 3600)?),
            )];
            for route in [
                "analytics/summary?days=90",
                "analytics/time-series?granularity=hour&days=7",
                "analytics/performance?days=90",
            ] {
                let ProcessCharges {
                    items_read: i0,
                    read_units: r0,
                    ..
                } = process_stats();
                let start = Instant::now();
                let res = router
                    .handle("GET", &format!("/prod/api/v1/{route}"), &auth, b"")
                    .await;
                let ms = start.elapsed().as_secs_f64() * 1e3;
                if res.status != 200 {
                    return Err(anyhow!("{route}: {}", String::from_utf8_lossy(&res.body)));
                }
                let ProcessCharges {
                    items_read: i1,
                    read_units: r1,
                    ..
                } = process_stats();
                println!(
                    "{n:>8} {route:<34} {:>7} {:>9.1} {ms:>9.1}",
                    i1 - i0,
                    r1 - r0
                );
            }
            if n == *sizes.last().unwrap_or(&0) {
                // Baseline: what answering from raw events would read.
                let ProcessCharges {
                    items_read: i0,
                    read_units: r0,
                    ..
                } = process_stats();
                let start = Instant::now();
                let s = store(stack);
                let uid = UserId::parse(&user).map_err(anyhow::Error::msg)?;
                let from = Utc::now().duration_trunc(Duration::days(1))? - Duration::days(89);
                let mut after: Option<String> = None;
                loop {
                    let page = s
                        .events_page(
                            &uid,
                            from,
                            Utc::now() + Duration::days(1),
                            after.as_deref(),
                            5000,
                        )
                        .await?;
                    match page.next {
                        Some(p) => after = Some(p),
                        None => break,
                    }
                }
                let ProcessCharges {
                    items_read: i1,
                    read_units: r1,
                    ..
                } = process_stats();
                println!(
                    "{n:>8} {:<34} {:>7} {:>9.1} {:>9.1}",
                    "baseline: query all raw events",
                    i1 - i0,
                    r1 - r0,
                    start.elapsed().as_secs_f64() * 1e3
                );
            }
            println!("{n:>8} {:<34}", format!("(export user id: {user})"));
        }
        Ok(())
    }

    /// Runs in a child process: pages through the user's CSV export, then reports
    /// rows, seconds and peak resident memory (VmHWM).
    pub async fn export_child(stack: &LocalStack, user: &str) -> Result<()> {
        let secret = stack
            .resolver
            .parameters
            .get("JwtSecret")
            .cloned()
            .unwrap_or_else(|| DEV_JWT_SECRET.into());
        let router = Router::from_stack(stack)?;
        let auth = vec![(
            "authorization".to_owned(),
            format!("Bearer {}", mint(&secret, user, &[], 3600)?),
        )];
        let mut path = "/prod/api/v1/analytics/export/csv?days=90".to_owned();
        let mut rows = 0usize;
        let start = Instant::now();
        loop {
            let res = router.handle("GET", &path, &auth, b"").await;
            if res.status != 200 {
                return Err(anyhow!("export: {}", String::from_utf8_lossy(&res.body)));
            }
            rows += res
                .body
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                .saturating_sub(1);
            match res.headers.iter().find(|(k, _)| k == "x-next-cursor") {
                Some((_, c)) => path = format!("/prod/api/v1/analytics/export/csv?cursor={c}"),
                None => break,
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let status = std::fs::read_to_string("/proc/self/status")?;
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .unwrap_or("VmHWM: 0 kB")
            .to_owned();
        println!(
            "{rows} {secs:.3} {}",
            hwm.split_whitespace().nth(1).unwrap_or("0")
        );
        Ok(())
    }
}

// ------------------------------------------------------------------------ notifications

/// Queue pollers per consumer: Lambda would run several instances of a busy consumer.
const POLLERS_PER_QUEUE: usize = 4;
const BENCH_USERS: usize = 200;
/// Jobs sent one by one for the latency figure.
const LATENCY_JOBS: usize = 100;

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    jobs: Vec<serde_json::Value>,
) -> Result<()> {
    for chunk in jobs.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, j)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("j{i}"))
                    .message_body(j.to_string())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .send_message_batch()
            .queue_url(queue)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| anyhow!(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        if !out.failed().is_empty() {
            bail!("SQS refused {} bench jobs", out.failed().len());
        }
    }
    Ok(())
}

/// Jobs/s through the dispatcher, webhook deliveries/s to a receiver on 127.0.0.1, and the
/// time from a job's enqueueing to its webhook's arrival — on the local emulators, with the
/// handlers in this process polled as Lambda's event source mapping would.
pub async fn notifications(stack: &crate::stack::LocalStack, jobs: usize) -> Result<()> {
    use meterbell::notifications::store::accounts::{Accounts, Endpoint};
    use meterbell::notifications::store::Notifications;
    use meterbell::platform::domain::UserId;

    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let receiver = crate::receiver::Receiver::start(0).await?;
    receiver.set_secret(crate::tokens::DEV_WEBHOOK_SECRET);
    let accounts = Accounts::new(
        stack.clients.dynamodb.clone(),
        stack.resolver.refs["AccountsTable"].clone(),
    );
    let notifications = Notifications::new(
        stack.clients.dynamodb.clone(),
        stack.resolver.refs["NotificationsTable"].clone(),
    );
    let users: Vec<UserId> = (0..BENCH_USERS)
        .map(|i| UserId::parse(&format!("bench-{run}-{i}")).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    for user in &users {
        accounts
            .create_endpoint(&Endpoint {
                id: Endpoint::new_id(),
                user_id: user.clone(),
                url: receiver.url(&format!("/{user}")),
                secret: crate::tokens::DEV_WEBHOOK_SECRET.into(),
                description: None,
                enabled: true,
                disabled_reason: None,
                created_at: chrono::Utc::now(),
            })
            .await?;
    }
    let mut tasks = vec![];
    for consumer in crate::poller::consumers(stack)? {
        if consumer.function == "NotificationDispatcherFunction"
            || consumer.function == "WebhookSenderFunction"
        {
            for _ in 0..POLLERS_PER_QUEUE {
                let c = crate::poller::Consumer {
                    function: consumer.function.clone(),
                    queue_url: consumer.queue_url.clone(),
                    queue_arn: consumer.queue_arn.clone(),
                    source: consumer.source.clone(),
                    handler: consumer.handler,
                    app: consumer.app.clone(),
                };
                tasks.push(tokio::spawn(c.run(stack.clients.sqs.clone())));
            }
        }
    }
    let queue = stack.queue_url("NotificationJobsQueue")?.to_owned();
    let job = |i: usize, channels: &[&str], phase: &str| {
        serde_json::json!({
            "job_id": format!("bench-{run}-{phase}-{i}"),
            "user_id": users[i % users.len()].to_string(),
            "type": "info",
            "title": "Bench",
            "message": format!("bench job {i}"),
            "data": {"sent_at_ms": chrono::Utc::now().timestamp_millis()},
            "channels": channels,
        })
    };
    let total_items = |notifications: Notifications, users: Vec<UserId>| async move {
        let mut sum = 0;
        for u in &users {
            sum += notifications.counters(u).await?.total;
        }
        anyhow::Ok(sum)
    };

    // Phase 1: in-app only, the dispatcher alone.
    let start = Instant::now();
    let phase1: Vec<_> = (0..jobs).map(|i| job(i, &["in_app"], "inbox")).collect();
    enqueue(&stack.clients.sqs, &queue, phase1).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    while total_items(notifications.clone(), users.clone()).await? < jobs as u64 {
        if Instant::now() > deadline {
            bail!("the dispatcher did not finish {jobs} jobs within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dispatch = start.elapsed();

    // Phase 2: a burst of jobs to the users' webhook endpoints: deliveries per second.
    let start = Instant::now();
    let phase2: Vec<_> = (0..jobs).map(|i| job(i, &["webhook"], "hook")).collect();
    enqueue(&stack.clients.sqs, &queue, phase2).await?;
    let burst = receiver.wait_for(jobs, Duration::from_secs(600)).await;
    let delivered = start.elapsed();
    if burst.len() < jobs {
        bail!("only {} of {jobs} webhooks arrived", burst.len());
    }
    let first = burst
        .iter()
        .map(|r| r.at)
        .min()
        .unwrap_or_else(Instant::now);
    let last = burst
        .iter()
        .map(|r| r.at)
        .max()
        .unwrap_or_else(Instant::now);
    let spread = last.duration_since(first).as_secs_f64().max(1e-3);

    // Phase 3: jobs at a steady 10/s, well below the throughput: the time one job takes from
    // being enqueued to its webhook arriving (two queue hops, the dispatcher, the sender).
    let steady = LATENCY_JOBS.min(jobs);
    for i in 0..steady {
        enqueue(
            &stack.clients.sqs,
            &queue,
            vec![job(i, &["webhook"], "steady")],
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = receiver
        .wait_for(jobs + steady, Duration::from_secs(300))
        .await;
    for t in tasks {
        t.abort();
    }
    if got.len() < jobs + steady {
        bail!(
            "only {} of {steady} steady-rate webhooks arrived",
            got.len() - jobs
        );
    }
    let unverified = got.iter().filter(|r| !r.verified).count();
    let latency = |records: &[crate::receiver::Received]| {
        let mut ms: Vec<i64> = records
            .iter()
            .filter_map(|r| {
                let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
                let sent = body["data"]["data"]["sent_at_ms"].as_i64()?;
                Some(r.at_ms - sent)
            })
            .collect();
        ms.sort();
        ms
    };
    let steady_ms = latency(&got[jobs..]);
    let burst_ms = latency(&burst);
    println!(
        "notifications: {jobs} jobs for {BENCH_USERS} users, {POLLERS_PER_QUEUE} pollers per queue, \
         DynamoDB Local + moto on loopback"
    );
    println!(
        "  dispatcher (in-app only)      {:>8.1} jobs/s        ({jobs} jobs in {:.2} s, enqueue to last item)",
        jobs as f64 / dispatch.as_secs_f64(),
        dispatch.as_secs_f64()
    );
    println!(
        "  webhook deliveries            {:>8.1} deliveries/s  ({jobs} in {:.2} s, first to last arrival; {:.2} s from first enqueue)",
        jobs as f64 / spread,
        spread,
        delivered.as_secs_f64()
    );
    println!(
        "  enqueued -> webhook received  p50 {} ms, p99 {} ms   ({steady} jobs at 10/s)",
        pct(&steady_ms, 0.5),
        pct(&steady_ms, 0.99),
    );
    println!(
        "                                p50 {} ms, p99 {} ms   (the burst of {jobs}, queueing included)",
        pct(&burst_ms, 0.5),
        pct(&burst_ms, 0.99),
    );
    if unverified > 0 {
        bail!("{unverified} webhooks did not verify");
    }
    Ok(())
}
