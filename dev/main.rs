//! `meterbell-dev`: the local stack from `template.yaml`.
//!
//!   meterbell-dev provision [--param Name=Value]...      create the tables and queues
//!   meterbell-dev serve [--port 3000] [--param ...] [--no-seed]
//!                                                         provision, load demo data, serve
//!                                                         every route and run every consumer
//!   meterbell-dev token [--sub demo-user] [--role admin]... [--ttl 86400]
//!   meterbell-dev env-files                              provision, then write .local/env/<Function>.env
//!                                                         and .local/sam-env*.json (make dev does too)
//!   meterbell-dev bench-cold-start                       binary sizes; cold start to the first
//!                                                         answer of a DynamoDB read (release)
//!   meterbell-dev bench-cost                             billed units and $ per million events / reads
//!   meterbell-dev bench-alerts                           ingest with budgets; the scheduled rule run
//!   meterbell-dev bench-reports                          a day of report-email runs for
//!                                                         BENCH_REPORT_USERS subscribers (10,000)
//!   meterbell-dev bench-notifications [--jobs 400]       dispatcher and webhook throughput and
//!                                                         latency on the emulators
//!   meterbell-dev bench-anomaly-scan                     the hourly anomaly run: time, items and
//!                                                         read units per active and idle user
//!   meterbell-dev bench-quality                          forecast error and interval coverage,
//!                                                         anomaly recall and false alarms on the
//!                                                         seeded corpus (no emulators)
//!   meterbell-dev emails                                 the emails moto's SES has accepted
//!   meterbell-dev fire <Function> [--at <RFC 3339>]      runs a scheduled function of the
//!                                                         template once, now (or as of --at)
//!
//! Emulator endpoints come from AWS_ENDPOINT_URL_DYNAMODB / _SQS / _SES (loopback only).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use meterbell_dev::local_api::{self, Router};
use meterbell_dev::poller;
use meterbell_dev::receiver::Receiver;
use meterbell_dev::seed::{self, DEMO_ADMIN, DEMO_USER};
use meterbell_dev::stack::{Clients, Endpoints, LocalStack};
use meterbell_dev::template::Template;
use meterbell_dev::tokens::{
    mint, DEV_CURSOR_SECRET, DEV_JWT_SECRET, DEV_NOTIFICATION_PARAMS, DEV_WEBHOOK_SECRET,
};

struct Args {
    command: String,
    port: u16,
    params: BTreeMap<String, String>,
    seed: bool,
    sub: String,
    roles: Vec<String>,
    ttl: i64,
    template: PathBuf,
    jobs: usize,
    /// Positional arguments after the command (`fire <Function>`).
    names: Vec<String>,
    /// `fire --at <RFC 3339>`: the firing's time (default now).
    at: Option<chrono::DateTime<chrono::Utc>>,
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let command = it
        .next()
        .ok_or_else(|| anyhow!("usage: meterbell-dev provision|serve|token [options]"))?;
    let mut args = Args {
        command,
        port: 3000,
        params: BTreeMap::new(),
        seed: true,
        sub: DEMO_USER.into(),
        roles: vec![],
        ttl: 86_400,
        template: PathBuf::from("template.yaml"),
        jobs: 400,
        names: vec![],
        at: None,
    };
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| anyhow!("{name} needs a value"));
        match flag.as_str() {
            "--port" => {
                args.port = value("--port")?
                    .parse()
                    .context("--port must be a port number")?
            }
            "--param" => {
                let v = value("--param")?;
                let (k, v) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--param takes Name=Value"))?;
                args.params.insert(k.to_owned(), v.to_owned());
            }
            "--no-seed" => args.seed = false,
            "--at" => {
                let raw = value("--at")?;
                args.at = Some(
                    chrono::DateTime::parse_from_rfc3339(&raw)
                        .context("--at must be an RFC 3339 time such as 2026-11-24T08:00:00Z")?
                        .with_timezone(&chrono::Utc),
                );
            }
            "--sub" => args.sub = value("--sub")?,
            "--role" => args.roles.push(value("--role")?),
            "--ttl" => args.ttl = value("--ttl")?.parse().context("--ttl must be seconds")?,
            "--template" => args.template = PathBuf::from(value("--template")?),
            "--jobs" => {
                args.jobs = value("--jobs")?
                    .parse()
                    .context("--jobs must be a number")?
            }
            other if !other.starts_with("--") => args.names.push(other.to_owned()),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("meterbell-dev: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let mut args = parse_args()?;
    if args.command == "token" {
        let secret = args
            .params
            .get("JwtSecret")
            .map(String::as_str)
            .unwrap_or(DEV_JWT_SECRET);
        let roles: Vec<&str> = args.roles.iter().map(String::as_str).collect();
        println!("{}", mint(secret, &args.sub, &roles, args.ttl)?);
        return Ok(());
    }
    if args.command == "bench-quality" {
        meterbell_dev::bench::quality();
        return Ok(());
    }
    if args.command == "emails" {
        return print_emails(&Endpoints::from_env()?).await;
    }
    meterbell::platform::lambda::init_tracing();
    // The local stack signs and checks tokens with the development secret unless told otherwise.
    args.params
        .entry("JwtSecret".into())
        .or_insert_with(|| DEV_JWT_SECRET.into());
    args.params
        .entry("CursorSecret".into())
        .or_insert_with(|| DEV_CURSOR_SECRET.into());
    if args.command == "serve" {
        args.params
            .entry("PublicApiUrl".into())
            .or_insert_with(|| format!("http://127.0.0.1:{}/prod", args.port));
    }
    for (name, value) in DEV_NOTIFICATION_PARAMS {
        args.params
            .entry((*name).into())
            .or_insert_with(|| (*value).into());
    }
    // The demo admin hears of the platform's own anomalies (the demo spike is one).
    args.params
        .entry("AnomalyAdminUserIds".into())
        .or_insert_with(|| DEMO_ADMIN.into());
    let template = Template::load(&args.template)?;
    let clients = Clients::local(&Endpoints::from_env()?);
    let stack = LocalStack::provision(template, clients, &args.params)
        .await
        .context("creating the template's tables and queues (are the emulators running? scripts/stack.sh start)")?;
    match args.command.as_str() {
        "provision" => {
            eprintln!(
                "provisioned {} tables and {} queues from {}",
                stack.template.tables.len(),
                stack.template.queues.len(),
                args.template.display()
            );
            Ok(())
        }
        "env-files" => {
            for path in meterbell_dev::envfiles::write(
                &stack,
                &Endpoints::from_env()?,
                std::path::Path::new(".local"),
            )? {
                println!("{path}");
            }
            Ok(())
        }
        "serve" => serve(stack, &args).await,
        "fire" => {
            let [name] = &args.names[..] else {
                bail!("usage: meterbell-dev fire <Function> (a scheduled function of the template)");
            };
            let scheduled = meterbell_dev::scheduler::find(&stack, name)?;
            let at = args.at.unwrap_or_else(chrono::Utc::now);
            scheduled.fire(at).await?;
            println!("{name} ran as of {}", at.to_rfc3339());
            Ok(())
        }
        "bench-cold-start" => {
            let dir = PathBuf::from(
                std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
            )
            .join("release");
            let runs = std::env::var("BENCH_RUNS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(30);
            meterbell_dev::bench::cold_start(&stack, &dir, runs)
        }
        "bench-analytics" => {
            let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
                .unwrap_or_else(|_| "1000,10000,100000".into())
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            meterbell_dev::bench::analytics::run(&stack, &sizes).await
        }
        "bench-export-child" => {
            meterbell_dev::bench::analytics::export_child(&stack, &args.sub).await
        }
        "bench-cost" => meterbell_dev::bench::cost::run(&stack).await,
        "bench-alerts" => meterbell_dev::bench::alerts::run(&stack).await,
        "bench-reports" => meterbell_dev::bench::reports::run(&stack).await,
        "bench-anomaly-scan" => {
            let users = std::env::var("BENCH_SCAN_USERS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1_000);
            meterbell_dev::bench::anomaly_scan(&stack, users, 4).await
        }
        "bench-notifications" => {
            meterbell_dev::bench::notifications(&stack, args.jobs).await
        }
        other => bail!(
            "unknown command {other}; use provision, serve, token, env-files, emails, bench-cold-start, bench-analytics or bench-notifications"
        ),
    }
}

async fn serve(stack: LocalStack, args: &Args) -> Result<()> {
    // For `cargo lambda watch --env-file` and `sam local invoke --env-vars` (README).
    meterbell_dev::envfiles::write(
        &stack,
        &Endpoints::from_env()?,
        std::path::Path::new(".local"),
    )
    .context("writing .local/env")?;
    if args.seed {
        seed::seed(&stack).await.context("loading demo data")?;
    }
    // The local webhook receiver: prints each delivery and whether its signature verifies.
    let webhook_port = args.port.checked_add(1).unwrap_or(3001);
    let receiver = Receiver::start(webhook_port)
        .await
        .with_context(|| format!("webhook receiver: port {webhook_port} is taken"))?;
    receiver.set_secret(DEV_WEBHOOK_SECRET);
    let receiver_url = receiver.url("/webhooks/demo");
    if args.seed {
        seed::seed_notifications(&stack, &receiver_url, DEV_WEBHOOK_SECRET)
            .await
            .context("loading demo notification settings")?;
    }
    tokio::spawn(print_webhooks(receiver.clone()));
    let router = Arc::new(Router::from_stack(&stack)?);
    // The demo data's monthly budget (seed.rs) gives the portal's budget card something to show.
    let secret = &stack.resolver.parameters["JwtSecret"];
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("port {} is taken; choose another with PORT=...", args.port))?;
    for consumer in poller::consumers(&stack)? {
        tokio::spawn(consumer.run(stack.clients.sqs.clone()));
    }
    let scheduled = meterbell_dev::scheduler::scheduled(&stack)?;
    for s in &scheduled {
        println!(
            "schedule {:32} {} (fire it now: cargo run -q -p meterbell-dev -- fire {})",
            s.function,
            stack
                .template
                .function(&s.function)
                .map(|f| f.schedules.join(", "))
                .unwrap_or_default(),
            s.function
        );
    }
    for s in scheduled {
        tokio::spawn(s.run());
    }
    let base = format!("http://127.0.0.1:{}/{}", args.port, router.stage);
    println!(
        "Meterbell API on {base}  ({} routes, {} queue consumers)",
        router.routes.len(),
        stack
            .template
            .functions
            .iter()
            .map(|f| f.queue_sources.len())
            .sum::<usize>()
    );
    for route in &router.routes {
        println!("  {:6} {}{}", route.method, base, route.resource);
    }
    let user_token = mint(secret, DEMO_USER, &[], 86_400)?;
    // The page takes its token from the URL fragment, which never reaches a server.
    println!(
        "\nportal ({DEMO_USER}, open in a browser):\n  {base}/portal#token={user_token}\n\
         admin portal ({DEMO_ADMIN}):\n  {base}/portal#token={}",
        mint(secret, DEMO_ADMIN, &["admin"], 86_400)?
    );
    println!("OpenAPI document: {base}/api/v1/openapi.json");
    println!("\nuser token ({DEMO_USER}, 24 h):\n  {user_token}");
    println!(
        "admin token ({DEMO_ADMIN}, 24 h):\n  {}",
        mint(secret, DEMO_ADMIN, &["admin"], 86_400)?
    );
    println!(
        "service token (upstream-service, 24 h):\n  {}",
        mint(secret, "upstream-service", &["service"], 86_400)?
    );
    println!(
        "\none function alone: .local/env/<Function>.env (cargo lambda watch --env-file), \
         .local/sam-env.json (sam local invoke --env-vars)"
    );
    println!("\ntry:\n  curl -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/notifications/unread-count");
    println!(
        "\nnotifications: {DEMO_USER} gets email at {} (see them: cargo run -q -p meterbell-dev -- emails)\n\
         and signed webhooks at {receiver_url} (printed here as they arrive);\n\
         {} gets an hourly email digest at {} (the flusher runs every 5 minutes; now: \
         cargo run -q -p meterbell-dev -- fire NotificationFlushFunction)",
        seed::DEMO_EMAIL,
        seed::DIGEST_USER,
        seed::DIGEST_EMAIL
    );
    for queue in &stack.template.queues {
        println!(
            "queue {:32} {}",
            queue.logical_id,
            stack.queue_url(&queue.logical_id)?
        );
    }
    println!("\nopen the usage portal ({DEMO_USER}, 90 days of demo usage):\n  {base}/portal#token={user_token}");
    tokio::select! {
        r = local_api::serve(listener, router) => r,
        _ = tokio::signal::ctrl_c() => { eprintln!("stopping"); Ok(()) }
    }
}

/// Prints each webhook the local receiver gets, with its signature check.
async fn print_webhooks(receiver: Receiver) {
    let mut seen = 0;
    loop {
        let got = receiver
            .wait_for(seen + 1, std::time::Duration::from_secs(3600))
            .await;
        for r in got.iter().skip(seen) {
            println!(
                "webhook {} {} signature {} -> answered {}\n  {}",
                r.path,
                r.id.as_deref().unwrap_or("(no webhook-id)"),
                if r.verified {
                    "verified"
                } else {
                    "DOES NOT VERIFY"
                },
                r.answered,
                r.body
            );
        }
        seen = got.len();
    }
}

/// The emails moto's SES accepted: recipient, subject, unsubscribe link, body.
async fn print_emails(endpoints: &Endpoints) -> Result<()> {
    let emails = meterbell_dev::mailbox::emails(&endpoints.ses).await?;
    if emails.is_empty() {
        println!("no emails yet");
    }
    for m in emails {
        println!(
            "to {:?} from {}\n  subject: {}\n  unsubscribe: {}\n  {}\n",
            m.to,
            m.source,
            m.subject,
            m.header("List-Unsubscribe").unwrap_or("-"),
            m.text.replace('\n', "\n  ")
        );
    }
    Ok(())
}
