//! `make bench` figures. Timings are of this machine (shared, two cores, noisy): compare rows
//! within one run, not across machines.
//!
//! Cold start: the release Lambda binary is started against a local stand-in for the Lambda
//! Runtime API and handed a real API Gateway event for `unread-count` (a DynamoDB `GetItem`
//! against DynamoDB Local), then a second one. Measured per run: init (spawn → first
//! `GET .../invocation/next`), **first answer** (spawn → the first response posted back),
//! the first request alone (event handed over → answer) and a warm request; the penalty of the
//! first request is the first minus the warm. The empty `lambda_http` function built with the
//! same profile is the baseline, and `unread-count` runs with its AWS clients built at init
//! (`MB_AWS_CLIENTS=init`, deployed default) and on first use (`first-use`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::stack::{Endpoints, LocalStack};

pub const BASELINE_BINARY: &str = "bench-empty";
pub const LAMBDA_BINARY: &str = "meterbell-lambda";
const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";

/// One HTTP request the runtime client sent: request line and body.
struct RuntimeCall {
    stream: TcpStream,
    line: String,
    body: Vec<u8>,
}

/// Waits for the next connection to the stand-in Runtime API and reads one request from it.
fn next_call(listener: &TcpListener, deadline: Instant, what: &str) -> Result<RuntimeCall> {
    listener.set_nonblocking(true)?;
    loop {
        let call = accept_one(listener, deadline, what)?;
        // A connection closed before sending anything (a pooled client's spare): skip it.
        if !call.line.trim().is_empty() {
            return Ok(call);
        }
    }
}

fn accept_one(listener: &TcpListener, deadline: Instant, what: &str) -> Result<RuntimeCall> {
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("timed out waiting for {what}");
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(e.into()),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let h = header.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if h.starts_with("transfer-encoding:") && h.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(RuntimeCall { stream, line, body })
}

fn reply(
    mut stream: TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    Ok(())
}

/// Hands `event` to the function waiting on `GET next`, then waits for its answer.
/// Returns (when the event was handed over, when the answer arrived, the answer).
fn invoke(
    listener: &TcpListener,
    id: &str,
    event: &[u8],
    deadline: Instant,
) -> Result<(Instant, Instant, Vec<u8>)> {
    let call = next_call(listener, deadline, "GET next")?;
    if !(call.line.starts_with("GET ") && call.line.contains(NEXT_PATH)) {
        bail!(
            "expected GET next, got {:?}: {}",
            call.line.trim(),
            String::from_utf8_lossy(&call.body)
        );
    }
    let handed = Instant::now();
    let deadline_ms = (chrono::Utc::now() + chrono::Duration::seconds(30)).timestamp_millis();
    reply(
        call.stream,
        "200 OK",
        &[
            ("content-type", "application/json".into()),
            ("lambda-runtime-aws-request-id", id.into()),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench".into(),
            ),
        ],
        event,
    )?;
    let answer = next_call(listener, deadline, "the response")?;
    let answered = Instant::now();
    let expected = format!("/2018-06-01/runtime/invocation/{id}/response");
    let ok = answer.line.starts_with("POST ") && answer.line.contains(&expected);
    let body = answer.body.clone();
    reply(answer.stream, "202 Accepted", &[], b"")?;
    if !ok {
        bail!(
            "expected the response to {id}, got {:?}: {}",
            answer.line.trim(),
            String::from_utf8_lossy(&body)
        );
    }
    Ok((handed, answered, body))
}

type Env = Vec<(String, String)>;

/// One cold process: (init, first answer, first request, warm request).
struct ColdRun {
    init: Duration,
    first_answer: Duration,
    first_request: Duration,
    warm_request: Duration,
}

fn cold_run(binary: &Path, env: &[(String, String)], event: &[u8]) -> Result<ColdRun> {
    // A fresh Runtime API per process: a killed process's last `GET next` stays behind in the
    // old listener's queue.
    let listener = &TcpListener::bind("127.0.0.1:0")?;
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
    let result = (|| -> Result<ColdRun> {
        let deadline = start + Duration::from_secs(20);
        let (handed1, answered1, body) = invoke(listener, "bench-1", event, deadline)?;
        let text = String::from_utf8_lossy(&body);
        if !text.contains("\"statusCode\":200") {
            bail!(
                "{}: the first answer is not a 200: {text}",
                binary.display()
            );
        }
        let (handed2, answered2, _) = invoke(listener, "bench-2", event, deadline)?;
        Ok(ColdRun {
            init: handed1 - start,
            first_answer: answered1 - start,
            first_request: answered1 - handed1,
            warm_request: answered2 - handed2,
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The environment a function gets on Lambda: the runtime's variables plus the template's,
/// pointed at the local stack.
fn lambda_env(stack: &LocalStack, logical_id: Option<&str>) -> Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = [
        ("AWS_LAMBDA_FUNCTION_NAME", "bench"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_SESSION_TOKEN", "test"),
        ("RUST_LOG", "info"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    if let Some(id) = logical_id {
        env.extend(crate::envfiles::environment(
            stack,
            &Endpoints::from_env()?,
            id,
        )?);
    }
    Ok(env)
}

/// Prints binary sizes and cold-start figures (see the module documentation).
pub fn cold_start(stack: &LocalStack, bin_dir: &Path, runs: usize) -> Result<()> {
    let event = std::fs::read("events/unread-count.json").context("events/unread-count.json")?;
    let function = "UnreadCountFunction";
    let with = |extra: &str| -> Result<Vec<(String, String)>> {
        let mut env = lambda_env(stack, Some(function))?;
        env.push(("MB_AWS_CLIENTS".into(), extra.into()));
        Ok(env)
    };
    let variants: Vec<(String, &str, Env)> = vec![
        (
            "empty lambda_http function".into(),
            BASELINE_BINARY,
            lambda_env(stack, None)?,
        ),
        (
            "unread-count, clients at init".into(),
            LAMBDA_BINARY,
            with("init")?,
        ),
        (
            "unread-count, clients at first use".into(),
            LAMBDA_BINARY,
            with("first-use")?,
        ),
    ];
    let mut samples: Vec<Vec<ColdRun>> = variants.iter().map(|_| Vec::new()).collect();
    // Interleaved, so a burst of noise on the machine spreads over every variant alike.
    for _ in 0..runs {
        for (i, (_, binary, env)) in variants.iter().enumerate() {
            samples[i].push(cold_run(&bin_dir.join(binary), env, &event)?);
        }
    }
    let size = |name: &str| -> Result<f64> {
        Ok(std::fs::metadata(bin_dir.join(name))
            .map_err(|e| {
                anyhow!("{name}: {e} (build with cargo build --release -p meterbell-functions)")
            })?
            .len() as f64
            / 1e6)
    };
    println!(
        "binary sizes (release, this machine's architecture; every function runs the one binary)"
    );
    println!("  {LAMBDA_BINARY:<28} {:>6.2} MB", size(LAMBDA_BINARY)?);
    println!("  {BASELINE_BINARY:<28} {:>6.2} MB", size(BASELINE_BINARY)?);
    let arm64 = Path::new("target/lambda/meterbell-lambda/bootstrap");
    let arm64_label = "bootstrap (arm64)";
    if let Ok(m) = std::fs::metadata(arm64) {
        println!(
            "  {:<28} {:>6.2} MB  (arm64 bootstrap of the last sam build)",
            arm64_label,
            m.len() as f64 / 1e6
        );
    }
    println!(
        "\ncold start: {runs} runs each, a stand-in Runtime API on loopback, unread-count reads DynamoDB Local\n\
         init = spawn → first GET next; first answer = spawn → first response posted; \
         penalty = first request − warm request (p50 of each)"
    );
    println!(
        "{:<36} {:>9} {:>14} {:>14} {:>11} {:>10} {:>9} {:>7}",
        "",
        "init p50",
        "1st answer p50",
        "1st answer p90",
        "1st req p50",
        "warm p50",
        "penalty",
        "ratio"
    );
    let mut baseline = None;
    for (i, (label, _, _)) in variants.iter().enumerate() {
        let pick = |f: fn(&ColdRun) -> Duration| {
            let mut v: Vec<Duration> = samples[i].iter().map(f).collect();
            v.sort();
            v
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let init = pick(|r| r.init);
        let first = pick(|r| r.first_answer);
        let first_req = pick(|r| r.first_request);
        let warm = pick(|r| r.warm_request);
        let p50 = ms(percentile(&first, 0.5));
        let base = *baseline.get_or_insert(p50);
        println!(
            "{label:<36} {:>9.2} {:>14.2} {:>14.2} {:>11.2} {:>10.2} {:>9.2} {:>6.2}×",
            ms(percentile(&init, 0.5)),
            p50,
            ms(percentile(&first, 0.9)),
            ms(percentile(&first_req, 0.5)),
            ms(percentile(&warm, 0.5)),
            ms(percentile(&first_req, 0.5)) - ms(percentile(&warm, 0.5)),
            p50 / base
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- analytics

pub mod alerts;
pub mod reports;

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
                "analytics/report?period=month",
                "analytics/breakdown?group_by=model",
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
                types: None,
                previous_secret: None,
                failures: 0,
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
    // The benches before this one leave jobs on the shared emulators (alerts, anomalies and
    // credit warnings of their thousands of users); measured behind them, the figures would be
    // theirs.
    for name in ["NotificationJobsQueue", "WebhookQueue", "EmailQueue"] {
        stack
            .clients
            .sqs
            .purge_queue()
            .queue_url(stack.queue_url(name)?)
            .send()
            .await
            .with_context(|| format!("purging {name}"))?;
    }
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

// ------------------------------------------------------------------------ cost

pub mod cost {
    //! Cost per million events ingested and per million analytics reads, from the requests the
    //! code really sends, billed the way DynamoDB bills them (DynamoDB Local does not report
    //! consumed capacity faithfully):
    //!
    //! - item size = attribute names + values (strings: UTF-8 bytes; numbers: 1 byte per two
    //!   significant digits + 1; maps and lists: 3 + 1 per element; booleans and nulls: 1);
    //! - a write: 1 unit per KB rounded up; in a transaction 2 units per KB; an UpdateItem is
    //!   billed on the larger of the item before and after (here: after — counters only grow,
    //!   so it is the larger, over-counting by less than a KB when a batch grows an item);
    //! - every global secondary index the item is in: 1 more write unit per KB of the projected
    //!   item (index writes are not transactional);
    //! - a read: 4 KB per unit rounded up over a Query page or a GetItem, at least one unit;
    //!   eventually consistent reads (all of Meterbell's) cost half.
    //!
    //! Plus Lambda GB-seconds at the template's memory size (the duration measured here, against
    //! DynamoDB Local, stands in for the AWS one), Lambda and API Gateway requests, and SQS
    //! requests, at the prices of [`PRICES`].

    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use anyhow::{anyhow, Result};
    use aws_sdk_dynamodb::config::interceptors::{
        BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
    };
    use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
    use aws_sdk_dynamodb::error::BoxError;
    use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
    use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use chrono::{Duration, DurationRound, Utc};
    use meterbell::analytics::attribution::TagKeys;
    use meterbell::analytics::event::{UsageEvent, Window};
    use meterbell::analytics::store::{QuarterLevel, UsageStore};
    use serde_json::json;

    use crate::local_api::Router;
    use crate::stack::{Clients, LocalStack};
    use crate::tokens::{mint, DEV_JWT_SECRET};

    /// When the prices below were taken from the public us-east-1 price pages.
    pub const PRICES_AS_OF: &str = "2024-11-01";
    /// Public on-demand prices, us-east-1, in USD: the one table the cost figures use.
    pub const PRICES: &[(&str, f64)] = &[
        (
            "DynamoDB write request unit (on-demand, standard class)",
            0.625e-6,
        ),
        (
            "DynamoDB read request unit (on-demand, standard class)",
            0.125e-6,
        ),
        ("Lambda GB-second (arm64)", 0.000_013_333_4),
        ("Lambda request", 0.20e-6),
        (
            "API Gateway REST API request (first 333 million a month)",
            3.50e-6,
        ),
        ("SQS standard queue request (per 64 KB chunk)", 0.40e-6),
    ];
    fn price(what: &str) -> f64 {
        PRICES
            .iter()
            .find(|(w, _)| w.starts_with(what))
            .map(|(_, p)| *p)
            .unwrap_or(f64::NAN)
    }
    /// The template's `Globals.Function.MemorySize`.
    const MEMORY_GB: f64 = 256.0 / 1024.0;

    /// DynamoDB's size of an item.
    pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
        item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
    }

    fn number_size(n: &str) -> usize {
        let digits: String = n.chars().filter(char::is_ascii_digit).collect();
        let significant = digits.trim_start_matches('0').trim_end_matches('0');
        significant.len().div_ceil(2) + 1
    }

    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => number_size(n),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
            AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
            AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
            AttributeValue::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, v)| k.len() + value_size(v) + 1)
                    .sum::<usize>()
            }
            AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
            _ => 0,
        }
    }

    fn kb(bytes: usize) -> f64 {
        bytes.div_ceil(1024).max(1) as f64
    }

    fn read_units(bytes: usize, consistent: bool) -> f64 {
        bytes.div_ceil(4096).max(1) as f64 * if consistent { 1.0 } else { 0.5 }
    }

    enum Pending {
        Transact(TransactWriteItemsInput),
        Read(bool),
    }

    #[derive(Default)]
    struct Calls {
        pending: Option<Pending>,
        transactions: Vec<TransactWriteItemsInput>,
        read_units: f64,
        items_read: usize,
    }

    /// Records every successful request of a DynamoDB client, to bill it afterwards. Used one
    /// request at a time (the cost bench is sequential).
    #[derive(Clone, Default)]
    pub struct Recorder(Arc<Mutex<Calls>>);

    impl std::fmt::Debug for Recorder {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Recorder")
        }
    }

    impl Recorder {
        fn with<T>(&self, f: impl FnOnce(&mut Calls) -> T) -> Result<T, BoxError> {
            let mut calls = self.0.lock().map_err(|_| "recorder poisoned")?;
            Ok(f(&mut calls))
        }

        pub(crate) fn take(&self) -> Result<(Vec<TransactWriteItemsInput>, f64, usize)> {
            self.with(|c| {
                let out = (
                    std::mem::take(&mut c.transactions),
                    c.read_units,
                    c.items_read,
                );
                c.read_units = 0.0;
                c.items_read = 0;
                out
            })
            .map_err(|e| anyhow!("{e}"))
        }
    }

    impl Intercept for Recorder {
        fn name(&self) -> &'static str {
            "meterbell-bench-billing"
        }

        fn read_before_execution(
            &self,
            ctx: &BeforeSerializationInterceptorContextRef<'_>,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let input = ctx.input();
            let pending = if let Some(t) = input.downcast_ref::<TransactWriteItemsInput>() {
                Some(Pending::Transact(t.clone()))
            } else if let Some(q) = input.downcast_ref::<QueryInput>() {
                Some(Pending::Read(q.consistent_read() == Some(true)))
            } else {
                input
                    .downcast_ref::<GetItemInput>()
                    .map(|g| Pending::Read(g.consistent_read() == Some(true)))
            };
            self.with(|c| c.pending = pending)
        }

        fn read_after_execution(
            &self,
            ctx: &FinalizerInterceptorContextRef<'_>,
            _rc: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let output = match ctx.output_or_error() {
                Some(Ok(output)) => Some(output),
                _ => None,
            };
            self.with(|c| match (c.pending.take(), output) {
                (Some(Pending::Transact(input)), Some(_)) => c.transactions.push(input),
                (Some(Pending::Read(consistent)), Some(output)) => {
                    if let Some(q) = output.downcast_ref::<QueryOutput>() {
                        let bytes = q.items().iter().map(item_size).sum();
                        c.read_units += read_units(bytes, consistent);
                        c.items_read += q.items().len();
                    } else if let Some(g) = output.downcast_ref::<GetItemOutput>() {
                        let bytes = g.item().map(item_size).unwrap_or(0);
                        c.read_units += read_units(bytes, consistent);
                        c.items_read += usize::from(g.item().is_some());
                    }
                }
                _ => {}
            })
        }
    }

    /// Index projections per table name: (index key attributes, projected non-key attributes,
    /// projects everything).
    type Indexes = HashMap<String, Vec<(Vec<String>, Vec<String>, bool)>>;

    fn indexes(stack: &LocalStack) -> Indexes {
        let mut out = Indexes::new();
        for t in &stack.template.tables {
            let Some(name) = stack.resolver.refs.get(&t.logical_id) else {
                continue;
            };
            let table_keys: Vec<String> = t.key.iter().map(|(k, _)| k.clone()).collect();
            for g in &t.gsis {
                let mut keys: Vec<String> = g.key.iter().map(|(k, _)| k.clone()).collect();
                keys.extend(table_keys.iter().cloned());
                out.entry(name.clone()).or_default().push((
                    keys,
                    g.non_key_attributes.clone(),
                    g.projection == "ALL",
                ));
            }
        }
        out
    }

    /// Write units of the recorded transactions; Update sizes from the items as they are now.
    async fn bill_writes(
        dynamodb: &aws_sdk_dynamodb::Client,
        indexes: &Indexes,
        transactions: &[TransactWriteItemsInput],
    ) -> Result<f64> {
        let mut units = 0.0;
        let mut sizes: BTreeMap<(String, String), HashMap<String, AttributeValue>> =
            BTreeMap::new();
        for t in transactions {
            for action in t.transact_items() {
                let (table, item) = if let Some(put) = action.put() {
                    (put.table_name().to_owned(), put.item().clone())
                } else if let Some(update) = action.update() {
                    let key = update.key().clone();
                    let id = (
                        update.table_name().to_owned(),
                        format!("{:?}", key.get("pk")) + &format!("{:?}", key.get("sk")),
                    );
                    if !sizes.contains_key(&id) {
                        let got = dynamodb
                            .get_item()
                            .table_name(update.table_name())
                            .set_key(Some(key))
                            .send()
                            .await?;
                        sizes.insert(id.clone(), got.item().cloned().unwrap_or_default());
                    }
                    (id.0.clone(), sizes[&id].clone())
                } else {
                    continue;
                };
                units += 2.0 * kb(item_size(&item));
                for (keys, projected, all) in indexes.get(&table).into_iter().flatten() {
                    if !keys.iter().all(|k| item.contains_key(k)) {
                        continue; // not in this (sparse) index
                    }
                    let size = if *all {
                        item_size(&item)
                    } else {
                        item.iter()
                            .filter(|(k, _)| keys.contains(k) || projected.contains(k))
                            .map(|(k, v)| k.len() + value_size(v))
                            .sum()
                    };
                    units += kb(size);
                }
            }
        }
        Ok(units)
    }

    /// `n` request events for `user` in the current hour over `models` × `endpoints`.
    /// `n` request events for `user` in the current hour over `models` × `endpoints`; with
    /// `tagged`, each carries a project (of 4), a team (of 3) and a feature (of 5).
    fn tagged_events(
        user: &str,
        n: usize,
        models: usize,
        endpoints: usize,
        tag: &str,
        tagged: bool,
    ) -> Vec<UsageEvent> {
        let mut out = events(user, n, models, endpoints, tag);
        if tagged {
            for (i, e) in out.iter_mut().enumerate() {
                e.tags = BTreeMap::from([
                    ("project".to_owned(), format!("project-{}", i % 4)),
                    ("team".to_owned(), format!("team-{}", i % 3)),
                    ("feature".to_owned(), format!("feature-{}", i % 5)),
                ]);
            }
        }
        out
    }

    fn events(user: &str, n: usize, models: usize, endpoints: usize, tag: &str) -> Vec<UsageEvent> {
        let now = Utc::now() - Duration::seconds(30);
        let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        let span = (now - hour).num_milliseconds().max(1);
        let window = Window {
            now: Utc::now(),
            retention_days: 400,
        };
        (0..n)
            .filter_map(|i| {
                let at = hour + Duration::milliseconds((i as i64 * 7919) % span);
                let m = (i * 7) % models;
                let e = (i * 13) % endpoints;
                let raw = json!({"event_id": format!("cost-{tag}-{i}"), "user_id": user,
                    "timestamp": at.to_rfc3339(), "kind": "request",
                    "provider": if m.is_multiple_of(2) { "openai" } else { "anthropic" },
                    "model": format!("model-{m:02}"), "endpoint": format!("/v1/endpoint-{e:02}"),
                    "status_code": if i % 31 == 0 { 500 } else { 200 },
                    "latency_ms": 40 + (i * 37) % 4000, "input_tokens": 100 + i % 900,
                    "output_tokens": 10 + i % 300, "credits": 1 + i % 50,
                    "cost_usd": ((1 + i % 50) as f64) / 10_000.0});
                UsageEvent::parse(&raw, window).ok()
            })
            .collect()
    }

    /// Prints write units and cost per million events by batch size and a user's dimensions,
    /// and read units and cost per million analytics reads.
    pub async fn run(stack: &LocalStack) -> Result<()> {
        let recorder = Recorder::default();
        let recorded = aws_sdk_dynamodb::Client::from_conf(
            stack
                .clients
                .dynamodb
                .config()
                .to_builder()
                .interceptor(recorder.clone())
                .build(),
        );
        let plain = stack.clients.dynamodb.clone();
        let table = |id: &str| stack.resolver.refs.get(id).map(String::as_str);
        let store = |client: aws_sdk_dynamodb::Client| {
            UsageStore::new(client, table("EventsTable"), table("RollupsTable"), 400)
        };
        let three_keys = TagKeys::parse(Some("project,team,feature"))?;
        let indexes = indexes(stack);
        let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();

        println!("prices (USD, us-east-1, on-demand, as of {PRICES_AS_OF}):");
        for (what, usd) in PRICES {
            println!("  {what:<58} {:>10.4} per million", usd * 1e6);
        }
        println!(
            "\ningest: billed DynamoDB write units per event (transactions ×2, indexes, KB rounded up, \
             updates on the item's size), one user's events in the current hour, sequential"
        );
        println!(
            "quarters: what ingest keeps per quarter hour — totals (deployed: the bucket's own item), \
             off (hours and days only, as before zones off the hour), breakdowns (model and \
             endpoint items too: what exact edge breakdowns would cost)"
        );
        println!(
            "{:<26} {:>10} {:>6} {:>9} {:>10} {:>12} {:>12} {:>12} {:>12}",
            "user's dimensions",
            "quarters",
            "batch",
            "tx/batch",
            "WRU/event",
            "max item KB",
            "ms/batch",
            "$/M via API",
            "$/M via SQS"
        );
        for (label, models, endpoints, tagged) in [
            ("2 models × 3 endpoints", 2, 3, false),
            ("2×3 + 3 tag keys (4/3/5)", 2, 3, true),
            ("30 models × 50 endpoints", 30, 50, false),
        ] {
            let keys = if tagged {
                three_keys.clone()
            } else {
                TagKeys::default()
            };
            let user = format!("cost-{run_id}-{models}x{endpoints}-{tagged}");
            // Today's rollups already hold every model and endpoint (and latency bucket) of
            // the user, as after a busy morning.
            let history = tagged_events(
                &user,
                30 * models * endpoints.min(50),
                models,
                endpoints,
                &format!("{user}-h"),
                tagged,
            );
            store(plain.clone())
                .attributing(&keys)
                .record(&history)
                .await?;
            // The quarter-hour level's cost is shown on the untagged users; the tagged one
            // runs as deployed.
            let levels: &[(&str, QuarterLevel)] = if tagged {
                &[("totals", QuarterLevel::Totals)]
            } else {
                &[
                    ("totals", QuarterLevel::Totals),
                    ("off", QuarterLevel::Off),
                    ("breakdowns", QuarterLevel::Breakdowns),
                ]
            };
            for ((batch, batches), (level_name, level)) in [(1usize, 20usize), (10, 5), (100, 2)]
                .into_iter()
                .flat_map(|b| levels.iter().map(move |l| (b, *l)))
            {
                let mut units = 0.0;
                let mut transactions = 0;
                let mut ms = 0.0;
                let mut largest = 0usize;
                for b in 0..batches {
                    let tag = format!("{user}-b{batch}-{level_name}-{b}");
                    let batch_events = tagged_events(&user, batch, models, endpoints, &tag, tagged);
                    recorder.take()?;
                    let start = Instant::now();
                    store(recorded.clone())
                        .attributing(&keys)
                        .with_quarter_level(level)
                        .record(&batch_events)
                        .await?;
                    ms += start.elapsed().as_secs_f64() * 1e3;
                    let (txs, _, _) = recorder.take()?;
                    transactions += txs.len();
                    units += bill_writes(&plain, &indexes, &txs).await?;
                    for t in &txs {
                        for a in t.transact_items() {
                            if let Some(u) = a.update() {
                                let got = plain
                                    .get_item()
                                    .table_name(u.table_name())
                                    .set_key(Some(u.key().clone()))
                                    .send()
                                    .await?;
                                largest = largest.max(got.item().map(item_size).unwrap_or(0));
                            }
                        }
                    }
                }
                let n = (batch * batches) as f64;
                let per_event = units / n;
                let ms_per_batch = ms / batches as f64;
                let dynamo = per_event * price("DynamoDB write");
                let lambda = (ms_per_batch / 1e3 * MEMORY_GB * price("Lambda GB-second")
                    + price("Lambda request"))
                    / batch as f64;
                // API: one POST of `batch` events. SQS: one event per message, sent once,
                // received and deleted in batches of up to 10 (the consumer's BatchSize).
                let api = dynamo + lambda + price("API Gateway") / batch as f64;
                let sqs_batch = batch.min(10) as f64;
                let sqs = dynamo + lambda + price("SQS") * (1.0 + 2.0 / sqs_batch);
                println!(
                    "{label:<26} {level_name:>10} {batch:>6} {:>9.1} {per_event:>10.2} {:>12.1} {ms_per_batch:>12.1} {:>12.2} {:>12.2}",
                    transactions as f64 / batches as f64,
                    largest as f64 / 1024.0,
                    api * 1e6,
                    sqs * 1e6
                );
            }
        }

        println!("\nanalytics reads: billed read units (eventually consistent, 4 KB per unit over each page)");
        println!(
            "{:<26} {:<64} {:>7} {:>9} {:>9} {:>12}",
            "user's dimensions", "route", "items", "RRU", "ms", "$/M reads"
        );
        let recorded_stack = LocalStack {
            template: stack.template.clone(),
            resolver: stack.resolver.clone(),
            clients: Clients {
                dynamodb: recorded.clone(),
                ..stack.clients.clone()
            },
        };
        let router = Router::from_stack(&recorded_stack)?;
        let secret = stack
            .resolver
            .parameters
            .get("JwtSecret")
            .cloned()
            .unwrap_or_else(|| DEV_JWT_SECRET.into());
        for (label, models, endpoints, tagged) in [
            ("2 models × 3 endpoints", 2, 3, false),
            ("2×3 + 3 tag keys (4/3/5)", 2, 3, true),
            ("30 models × 50 endpoints", 30, 50, false),
        ] {
            let user = format!("cost-{run_id}-{models}x{endpoints}-{tagged}");
            let auth = vec![(
                "authorization".to_owned(),
                format!("Bearer {}", mint(&secret, &user, &[], 3600)?),
            )];
            let mut routes = vec![
                "analytics/summary?days=30",
                "analytics/time-series?granularity=hour&days=1",
                "analytics/endpoints?days=30",
                "analytics/top-models?days=30",
                // Days begin at 18:30 UTC: quarter items at both edges of the period.
                "analytics/summary?days=30&tz=Asia/Kolkata",
                "analytics/time-series?granularity=hour&days=1&tz=Asia/Kolkata",
            ];
            if tagged {
                routes.push("analytics/breakdown?group_by=tag:project&days=30");
                routes.push("analytics/summary?days=30&filter=tag:team=team-1");
            }
            for route in routes {
                recorder.take()?;
                let start = Instant::now();
                let res = router
                    .handle("GET", &format!("/prod/api/v1/{route}"), &auth, b"")
                    .await;
                let ms = start.elapsed().as_secs_f64() * 1e3;
                if res.status != 200 {
                    return Err(anyhow!("{route}: {}", String::from_utf8_lossy(&res.body)));
                }
                let (_, rru, items) = recorder.take()?;
                let usd = rru * price("DynamoDB read")
                    + ms / 1e3 * MEMORY_GB * price("Lambda GB-second")
                    + price("Lambda request")
                    + price("API Gateway");
                println!(
                    "{label:<26} {route:<64} {items:>7} {rru:>9.1} {ms:>9.1} {:>12.2}",
                    usd * 1e6
                );
            }
        }
        println!(
            "(only today's rollups hold data here: a 30-day read of a user active every day reads 30 \
             day items of the size above)"
        );
        Ok(())
    }
}

/// Forecast and anomaly quality on the seeded corpus (`meterbell::analytics::corpus`): month-end
/// MAPE at days 10 and 20 and 80% band coverage per kind of series; anomaly recall on injected
/// spikes above the floor, false alarms per user-month on clean series, alarms below the
/// minimum volume. Pure computation: no emulators.
pub fn quality() {
    use meterbell::analytics::anomaly::Thresholds;
    use meterbell::analytics::corpus::{anomaly_quality, forecast_quality, SeriesKind};
    let users: usize = std::env::var("BENCH_QUALITY_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("forecast of month-end cost, {users} users per kind, 4 months each (seed 1)");
    println!(
        "{:<12} {:>7} {:>11} {:>11} {:>15} {:>15}",
        "series", "months", "MAPE day10", "MAPE day20", "80% cover d10", "80% cover d20"
    );
    for kind in SeriesKind::ALL {
        let q = forecast_quality(kind, users, 1);
        println!(
            "{:<12} {:>7} {:>10.1}% {:>10.1}% {:>14.1}% {:>14.1}%",
            kind.as_str(),
            q.months,
            q.mape_day10 * 100.0,
            q.mape_day20 * 100.0,
            q.coverage_day10 * 100.0,
            q.coverage_day20 * 100.0
        );
    }
    let t = Thresholds::default();
    let q = anomaly_quality(users, 1, &t);
    println!();
    println!(
        "anomalies, hourly windows, default gates (score {}, floor ${}, +{}%, {} requests, {} weeks)",
        t.score,
        t.floor_micros / 1_000_000,
        t.relative_pct,
        t.min_requests,
        t.baseline_weeks
    );
    println!(
        "recall on injected spikes above the floor: {}/{} = {:.1}% ({} spikes injected in all)",
        q.found,
        q.spikes_above_floor,
        q.recall() * 100.0,
        q.spikes
    );
    println!(
        "false alarms per user-month on clean series: {:.3} ({:.0} user-months)",
        q.false_alarms_per_user_month, q.user_months
    );
    println!(
        "alarms for users below the minimum volume: {}",
        q.alarms_below_min_volume
    );
}

/// The hourly anomaly run on DynamoDB Local: `users` active users (usage in the last hour and
/// the same hour of the four previous weeks, 2 models × 2 endpoints, one in a hundred with a
/// spend spike) and as many idle ones, judged in orders of 50 by `workers` concurrent workers
/// as the queue's consumers would. Prints the time, the items and read units per user.
pub async fn anomaly_scan(stack: &LocalStack, users: usize, workers: usize) -> Result<()> {
    use chrono::{Duration as Days, Utc};
    use futures::StreamExt;
    use meterbell::analytics::event::{UsageEvent, Window};
    use meterbell::analytics::store::UsageStore;
    use meterbell::seam::anomalies::{last_hour, scan_users, ScanOrder, USERS_PER_ORDER};
    use serde_json::json;

    let function = stack
        .template
        .function("AnomalyWorkerFunction")
        .ok_or_else(|| anyhow::anyhow!("no AnomalyWorkerFunction in template.yaml"))?;
    let app = stack.app_for(function)?;
    let now = Utc::now();
    let hour = last_hour(now);
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let window = Window {
        now,
        retention_days: 400,
    };
    let pairs = [
        ("gpt-4o", "/v1/chat/completions"),
        ("gpt-4o-mini", "/v1/responses"),
    ];
    let batches: Vec<Vec<UsageEvent>> = (0..users)
        .flat_map(|u| (0..=4).map(move |k| (u, k)))
        .map(|(u, k)| {
            let start = hour - Days::days(7 * k);
            let spike = k == 0 && u % 100 == 7;
            (0..30)
                .filter_map(|i| {
                    let (model, endpoint) = pairs[i % 2];
                    let cost = if spike { 0.5 } else { 0.01 };
                    let raw = json!({"event_id": format!("scan-{run}-{u}-{k}-{i}"),
                        "user_id": format!("scan-{run}-{u}"),
                        "timestamp": (start + Days::seconds(60 * i as i64 + 5)).to_rfc3339(),
                        "kind": "request", "provider": "openai", "model": model, "endpoint": endpoint,
                        "status_code": 200, "latency_ms": 300, "credits": 1, "cost_usd": cost});
                    UsageEvent::parse(&raw, window).ok()
                })
                .collect()
        })
        .collect();
    let seeding = Instant::now();
    let store = UsageStore::new(
        stack.clients.dynamodb.clone(),
        stack.resolver.refs.get("EventsTable").map(String::as_str),
        stack.resolver.refs.get("RollupsTable").map(String::as_str),
        400,
    );
    futures::stream::iter(batches.iter().map(|b| store.record(b)))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "seeded {users} active users (5 hours of 30 requests each) in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    for (label, ids) in [
        (
            "active",
            (0..users)
                .map(|u| format!("scan-{run}-{u}"))
                .collect::<Vec<_>>(),
        ),
        (
            "idle",
            (0..users).map(|u| format!("scan-{run}-idle-{u}")).collect(),
        ),
    ] {
        let orders: Vec<ScanOrder> = ids
            .chunks(USERS_PER_ORDER)
            .map(|g| ScanOrder {
                hour,
                daily: false,
                users: g.to_vec(),
            })
            .collect();
        let started = Instant::now();
        let reports = futures::stream::iter(orders.iter().map(|o| scan_users(&app, o, now)))
            .buffer_unordered(workers.max(1))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("scan: {e}"))?;
        let secs = started.elapsed().as_secs_f64();
        let items: usize = reports.iter().map(|r| r.items_read).sum();
        let units: f64 = reports.iter().map(|r| r.read_units).sum();
        let found: usize = reports.iter().map(|r| r.anomalies.len()).sum();
        println!(
            "{label:>6}: {users} users in {secs:.1} s ({:.0} users/s, {workers} workers), {:.1} items and {:.2} read units per user, {found} anomalies",
            users as f64 / secs,
            items as f64 / users as f64,
            units / users as f64,
        );
    }
    Ok(())
}
