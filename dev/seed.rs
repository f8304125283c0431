//! Demo data for `make dev`, written through the same adapters the functions use: a few unread
//! notifications and 90 days of usage for `demo-user` (plus three more users for the admin
//! views), leaving the demo user's balance low so the system sends its "Low Credits" warning.
//! Event ids are deterministic, so loading twice counts nothing twice.

use anyhow::Result;
use chrono::{Duration, DurationRound, Utc};
use meterbell::analytics::attribution::TagKeys;
use meterbell::analytics::event::{UsageEvent, Window};
use meterbell::analytics::store::{CreditTotals, UsageStore};
use meterbell::notifications::notification::{Notification, NotificationType};
use meterbell::notifications::store::Notifications;
use meterbell::platform::domain::UserId;
use serde_json::json;

use crate::stack::LocalStack;
use meterbell::notifications::preferences::{CheckedUpdate, EmailAddress};
use meterbell::notifications::store::accounts::{Accounts, Endpoint};
use meterbell::notifications::timing::{DigestFrequency, Window as TimingWindow};

pub const DEMO_USER: &str = "demo-user";
pub const DEMO_ADMIN: &str = "demo-admin";
const OTHER_USERS: [&str; 3] = ["acme-corp", "globex", "initech"];
const DAYS: i64 = 90;

/// A small deterministic generator: the same demo every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// (provider, model, endpoint, cost per 1k input tokens, per 1k output tokens, in micro-USD)
const MODELS: [(&str, &str, &str, i64, i64); 5] = [
    ("openai", "gpt-4o", "/v1/chat/completions", 2_500, 10_000),
    ("openai", "gpt-4o-mini", "/v1/chat/completions", 150, 600),
    ("openai", "text-embedding-3-small", "/v1/embeddings", 20, 0),
    (
        "anthropic",
        "claude-sonnet-4",
        "/v1/messages",
        3_000,
        15_000,
    ),
    ("anthropic", "claude-haiku-4", "/v1/messages", 800, 4_000),
];

/// The demo's `project` tag values.
const PROJECTS: [&str; 3] = ["search", "support-bot", "copilot"];

pub fn demo_events(user: &str, per_day: u64, seed: u64) -> Vec<serde_json::Value> {
    let mut rng = Lcg(seed);
    let today = Utc::now()
        .duration_trunc(Duration::days(1))
        .unwrap_or_else(|_| Utc::now());
    let mut out = vec![];
    for day in 0..DAYS {
        let start = today - Duration::days(day);
        let n = per_day / 2 + rng.below(per_day + 1);
        for i in 0..n {
            // Office hours are busier: most requests between 08:00 and 18:00 UTC.
            let hour = if rng.below(4) == 0 {
                rng.below(24)
            } else {
                8 + rng.below(10)
            };
            let at =
                start + Duration::hours(hour as i64) + Duration::seconds(rng.below(3600) as i64);
            if at > Utc::now() {
                continue;
            }
            let (provider, model, endpoint, cin, cout) =
                MODELS[rng.below(MODELS.len() as u64) as usize];
            let input = 100 + rng.below(3000) as i64;
            let output = if cout == 0 {
                0
            } else {
                20 + rng.below(800) as i64
            };
            let cost = (input * cin + output * cout) / 1000;
            let status = match rng.below(100) {
                0..=1 => 500,
                2..=4 => 429,
                _ => 200,
            };
            let latency = 80
                + rng.below(400)
                + if model.contains("4o") || model.contains("sonnet") {
                    rng.below(2000)
                } else {
                    0
                };
            // Attribution: each request belongs to a project and a team (embeddings feed search;
            // a tenth of the traffic is untagged, as real upstreams forget tags).
            let project = if endpoint == "/v1/embeddings" {
                "search"
            } else {
                PROJECTS[rng.below(PROJECTS.len() as u64) as usize]
            };
            let team = if project == "support-bot" {
                "cx"
            } else {
                "platform"
            };
            let tags = if rng.below(10) == 0 {
                json!({})
            } else {
                json!({"project": project, "team": team})
            };
            out.push(json!({
                "event_id": format!("demo-{user}-{day}-{i}"), "user_id": user, "timestamp": at.to_rfc3339(),
                "kind": "request", "provider": provider, "model": model, "endpoint": endpoint,
                "status_code": status, "latency_ms": latency, "input_tokens": input, "output_tokens": output,
                "credits": cost / 100, "cost_usd": cost as f64 / 1e6, "description": format!("{model} call"),
                "tags": tags,
            }));
        }
        if day % 30 == 5 {
            out.push(
                json!({"event_id": format!("demo-{user}-pay-{day}"), "user_id": user,
                "timestamp": (start + Duration::hours(9)).to_rfc3339(), "kind": "payment",
                "status": "succeeded", "amount_usd": 50, "credits": 50_000}),
            );
        }
    }
    out
}

/// Loads the demo once (a second run finds it and stops).
pub async fn seed(stack: &LocalStack) -> Result<()> {
    let table = stack
        .resolver
        .refs
        .get("NotificationsTable")
        .cloned()
        .unwrap_or_else(|| "NotificationsTable".into());
    let store = Notifications::new(stack.clients.dynamodb.clone(), table);
    let user = UserId::parse(DEMO_USER).map_err(anyhow::Error::msg)?;
    if store.unread_count(&user).await? == 0 {
        let expires_at = (Utc::now() + Duration::days(400)).timestamp();
        let demo = [
            (
                NotificationType::Info,
                "Welcome to Meterbell",
                "Your usage analytics and alerts live here.",
                None,
            ),
            (
                NotificationType::Success,
                "Payment successful",
                "We received your payment of $50.00.",
                None,
            ),
        ];
        for (kind, title, message, data) in demo {
            store
                .insert(
                    &Notification::new(user.clone(), kind, title, message, data),
                    expires_at,
                )
                .await?;
        }
    }
    let usage = UsageStore::new(
        stack.clients.dynamodb.clone(),
        stack.resolver.refs.get("EventsTable").map(String::as_str),
        stack.resolver.refs.get("RollupsTable").map(String::as_str),
        400,
    )
    .attributing(&TagKeys::parse(
        stack
            .resolver
            .parameters
            .get("AttributedTagKeys")
            .map(String::as_str),
    )?);
    unusual_hour(&usage).await?;
    // Only the demo writes for these users, so their totals say whether it is loaded.
    let marker = UserId::parse(OTHER_USERS[0]).map_err(anyhow::Error::msg)?;
    if usage.credit_totals(&marker).await? != CreditTotals::default() {
        return Ok(());
    }
    let window = Window {
        now: Utc::now(),
        retention_days: 400,
    };
    let mut loaded = 0;
    for (i, who) in std::iter::once(DEMO_USER).chain(OTHER_USERS).enumerate() {
        let per_day = if i == 0 { 40 } else { 10 };
        let events: Vec<UsageEvent> = demo_events(who, per_day, 7 + i as u64)
            .iter()
            .filter_map(|raw| UsageEvent::parse(raw, window).ok())
            .collect();
        for batch in events.chunks(100) {
            usage.record(batch).await?;
        }
        loaded += events.len();
    }
    eprintln!(
        "demo data: {loaded} usage events over {DAYS} days for {DEMO_USER} and {} more users",
        OTHER_USERS.len()
    );
    low_balance(stack, &usage, window).await?;
    alerts_demo(stack, &usage).await
}

/// A monthly budget and two metric rules for the demo user, then usage through the real ingest
/// path that takes the budget past 50%, 75% and 90% at once (one notification naming all three)
/// and a burst of errors on /v1/chat/completions in the last whole hour, which the rules'
/// evaluation — run once now, as the hourly schedule would — reports as a breach.
async fn alerts_demo(stack: &LocalStack, usage: &UsageStore) -> Result<()> {
    use meterbell::analytics::alert_rule::{Rule, RuleKind, Status};
    use meterbell::analytics::budget::{Amount, Budget, BudgetPeriod, Filter, PeriodUsage};
    use meterbell::analytics::store::{Registry, Scope};

    let user = UserId::parse(DEMO_USER).map_err(anyhow::Error::msg)?;
    let now = Utc::now();
    let app_of = |id: &str| {
        stack
            .template
            .function(id)
            .ok_or_else(|| anyhow::anyhow!("no {id} in template.yaml"))
            .and_then(|f| stack.app_for(f))
    };
    let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
    // 20 gpt-4o calls at $0.40 this minute; 12 messages calls, 5 of them failed, in the last
    // hour (on /v1/messages: the anomaly demo's spike is on /v1/chat/completions that hour).
    let mut burst = vec![];
    for i in 0..20 {
        burst.push(
            json!({"event_id": format!("demo-budget-{i}"), "user_id": DEMO_USER,
            "timestamp": now.to_rfc3339(), "kind": "request", "provider": "openai",
            "model": "gpt-4o", "endpoint": "/v1/chat/completions", "status_code": 200,
            "latency_ms": 1200, "credits": 0, "cost_usd": 0.4,
            "tags": {"project": "copilot", "team": "platform"}}),
        );
    }
    for i in 0..12 {
        burst.push(
            json!({"event_id": format!("demo-errors-{i}"), "user_id": DEMO_USER,
            "timestamp": (hour - Duration::minutes(30)).to_rfc3339(), "kind": "request",
            "provider": "anthropic", "model": "claude-haiku-4", "endpoint": "/v1/messages",
            "status_code": if i < 5 { 503 } else { 200 }, "latency_ms": 300, "credits": 0,
            "cost_usd": 0}),
        );
    }

    let month = BudgetPeriod::Month.window(&meterbell::analytics::zone::Zone::utc(), now);
    let spent = PeriodUsage::default()
        .of(usage, &Scope::User(user.clone()), month, true)
        .await?
        .total
        .cost_micros;
    // After the burst's $8 the month's spend is 92% of the budget.
    let amount = ((spent + 8_000_000) * 100 / 92).max(1);
    let budget = Budget {
        id: "monthly".into(),
        amount: Amount::UsdMicros(amount),
        period: BudgetPeriod::Month,
        tz: "UTC".into(),
        thresholds: vec![50, 75, 90, 100],
        filter: Filter::default(),
        created_at: now,
        updated_at: now,
        rev: now.timestamp_millis(),
        fired_period: None,
        fired: vec![],
        pending: vec![],
        notify: None,
    };
    let owner = Scope::User(user.clone());
    let book = usage.budgets(&owner, true).await?;
    usage
        .save_budgets(&owner, book.version, &[budget], &[])
        .await?;
    let rule = |id: &str, kind, limit, endpoint: Option<&str>| Rule {
        id: id.into(),
        kind,
        limit,
        window_hours: 1,
        min_requests: 10,
        filter: Filter {
            endpoint: endpoint.map(str::to_owned),
            ..Filter::default()
        },
        created_at: now,
        updated_at: now,
        rev: now.timestamp_millis(),
        status: Status::Ok,
        epoch: 0,
        decided_through: None,
    };
    let rules = vec![
        rule(
            "messages-errors",
            RuleKind::ErrorRate,
            500,
            Some("/v1/messages"),
        ),
        rule("slow-overall", RuleKind::LatencyP95, 5_000, None),
    ];
    let book = usage.alert_rules(&user, true).await?;
    usage
        .save_alert_rules(&user, book.version, &rules, &[], &[], Registry::Update)
        .await?;

    let ingest = app_of("UsageIngestFunction")?;
    meterbell::analytics::ingest::ingest(&ingest, &burst)
        .await
        .map_err(|e| anyhow::anyhow!("recording the alert demo's usage: {e}"))?;
    let evaluator = app_of("AlertRulesEvaluatorFunction")?;
    meterbell::seam::alert_rules::evaluate_user(&evaluator, usage, &user, now)
        .await
        .map_err(|e| anyhow::anyhow!("evaluating the demo's alert rules: {e}"))?;
    eprintln!(
        "demo alerts: budget \"monthly\" at 92% and rule \"messages-errors\" breached for {DEMO_USER}"
    );
    Ok(())
}

/// Requests in the demo's unusual hour, and what each costs.
const SPIKE_REQUESTS: i64 = 120;
const SPIKE_COST_USD: f64 = 0.35;

/// A spend spike for the demo user in the last complete hour (gpt-4o on /v1/chat/completions,
/// about $42 where that hour of the week usually holds cents), for the anomaly run to find:
/// `meterbell-dev fire AnomalyScanFunction` (or the hourly schedule) reports it and notifies
/// "Unusual spend". Each start of `make dev` adds the spike to its own last hour (ids name the
/// hour, so a second start within the hour adds nothing); it uses no credits.
async fn unusual_hour(usage: &UsageStore) -> Result<()> {
    let now = Utc::now();
    let hour = meterbell::seam::anomalies::last_hour(now);
    let window = Window {
        now,
        retention_days: 400,
    };
    let tag = hour.format("%Y%m%dT%H");
    let events: Vec<UsageEvent> = (0..SPIKE_REQUESTS)
        .filter_map(|i| {
            let raw = json!({"event_id": format!("demo-spike-{tag}-{i}"), "user_id": DEMO_USER,
                "timestamp": (hour + Duration::seconds(20 * i + 7)).to_rfc3339(),
                "kind": "request", "provider": "openai", "model": "gpt-4o",
                "endpoint": "/v1/chat/completions", "status_code": 200, "latency_ms": 1400,
                "input_tokens": 40_000, "output_tokens": 25_000, "credits": 0,
                "cost_usd": SPIKE_COST_USD, "description": "runaway agent loop",
                "tags": {"project": "support-bot", "team": "cx", "feature": "agent"}});
            UsageEvent::parse(&raw, window).ok()
        })
        .collect();
    for batch in events.chunks(100) {
        usage.record(batch).await?;
    }
    eprintln!(
        "demo data: a spend spike of {} gpt-4o requests at {} UTC for the anomaly run",
        events.len(),
        hour.format("%H:00")
    );
    Ok(())
}

/// The demo user's balance after the seed, below the default threshold of 1,000.
const DEMO_BALANCE: i64 = 500;

/// Brings the demo user's balance to [`DEMO_BALANCE`] with one more event, then checks it as
/// every ingest does: the system itself queues the "Low Credits" warning, which the dispatcher
/// delivers to the inbox, by email and by webhook once `make dev` serves.
async fn low_balance(stack: &LocalStack, usage: &UsageStore, window: Window) -> Result<()> {
    let user = UserId::parse(DEMO_USER).map_err(anyhow::Error::msg)?;
    let adjust = DEMO_BALANCE - usage.credit_totals(&user).await?.balance();
    let at = (Utc::now() - Duration::minutes(5)).to_rfc3339();
    let raw = if adjust >= 0 {
        json!({"event_id": "demo-demo-user-top-up", "user_id": DEMO_USER, "timestamp": at,
            "kind": "payment", "status": "succeeded", "amount_usd": 10, "credits": adjust})
    } else {
        json!({"event_id": "demo-demo-user-top-up", "user_id": DEMO_USER, "timestamp": at,
            "kind": "request", "provider": "openai", "model": "gpt-4o",
            "status_code": 200, "latency_ms": 900, "credits": -adjust, "cost_usd": 0})
    };
    let event = UsageEvent::parse(&raw, window).map_err(|r| anyhow::anyhow!("{r:?}"))?;
    usage.record(std::slice::from_ref(&event)).await?;
    let function = stack
        .template
        .function("UsageIngestFunction")
        .ok_or_else(|| anyhow::anyhow!("no UsageIngestFunction in template.yaml"))?;
    let app = stack.app_for(function)?;
    meterbell::seam::watch_credits(&app, usage, &[event])
        .await
        .map_err(|e| anyhow::anyhow!("checking the demo balance: {e}"))?;
    Ok(())
}

/// The demo user's email address.
pub const DEMO_EMAIL: &str = "demo-user@example.com";

/// Gives the demo user an email address and a webhook endpoint at the local receiver (once),
/// so a job enqueued under `make dev` shows up in all three channels.
pub async fn seed_notifications(
    stack: &LocalStack,
    receiver_url: &str,
    secret: &str,
) -> Result<()> {
    let table = stack
        .resolver
        .refs
        .get("AccountsTable")
        .cloned()
        .unwrap_or_else(|| "AccountsTable".into());
    let accounts = Accounts::new(stack.clients.dynamodb.clone(), table);
    let user = UserId::parse(DEMO_USER).map_err(anyhow::Error::msg)?;
    if accounts.preferences(&user).await?.email_address.is_none() {
        let address = EmailAddress::parse(DEMO_EMAIL).map_err(anyhow::Error::msg)?;
        accounts
            .update_preferences(
                &user,
                &CheckedUpdate {
                    email_address: Some(Some(address)),
                    switches: vec![],
                    low_credit_threshold: None,
                    reports: vec![("daily", true), ("weekly", true), ("monthly", true)],
                    tz: None,
                    ..CheckedUpdate::default()
                },
            )
            .await?;
    }
    digest_demo(stack, &accounts).await?;
    let existing = accounts.endpoints(&user).await?;
    if !existing.iter().any(|e| e.url == receiver_url) {
        accounts
            .create_endpoint(&Endpoint {
                id: Endpoint::new_id(),
                user_id: user,
                url: receiver_url.to_owned(),
                secret: secret.to_owned(),
                description: Some("make dev receiver".into()),
                enabled: true,
                disabled_reason: None,
                created_at: chrono::Utc::now(),
                types: None,
                previous_secret: None,
                failures: 0,
            })
            .await?;
    }
    Ok(())
}

/// The user whose `info`/`success` email comes as an hourly digest.
pub const DIGEST_USER: &str = "demo-digest";
pub const DIGEST_EMAIL: &str = "demo-digest@example.com";

/// Gives [`DIGEST_USER`] an hourly email digest and three notifications of the hour before,
/// waiting in that hour's digest as the dispatcher leaves them: the flusher's first firing
/// under `make dev` (or `fire NotificationFlushFunction`) sends them as one email. Once.
async fn digest_demo(stack: &LocalStack, accounts: &Accounts) -> Result<()> {
    let user = UserId::parse(DIGEST_USER).map_err(anyhow::Error::msg)?;
    if accounts.preferences(&user).await?.email_address.is_some() {
        return Ok(());
    }
    let prefs = accounts
        .update_preferences(
            &user,
            &CheckedUpdate {
                email_address: Some(Some(
                    EmailAddress::parse(DIGEST_EMAIL).map_err(anyhow::Error::msg)?,
                )),
                tz: Some(Some("Europe/Paris".into())),
                digest_email: Some(DigestFrequency::Hourly),
                ..CheckedUpdate::default()
            },
        )
        .await?;
    let table = stack
        .resolver
        .refs
        .get("NotificationsTable")
        .cloned()
        .unwrap_or_else(|| "NotificationsTable".into());
    let inbox = Notifications::new(stack.clients.dynamodb.clone(), table);
    let expires_at = (Utc::now() + Duration::days(400)).timestamp();
    let hour_before = Utc::now() - Duration::hours(1);
    let demo = [
        (
            NotificationType::Info,
            "Deploy finished",
            "api-gateway v2.4.1 is live.",
        ),
        (
            NotificationType::Success,
            "Backup completed",
            "Nightly backup: 2.3 GB.",
        ),
        (
            NotificationType::Info,
            "New sign-in",
            "A new sign-in from Firefox on Linux.",
        ),
    ];
    for (i, (kind, title, message)) in demo.into_iter().enumerate() {
        let mut n = Notification::new(user.clone(), kind, title, message, None);
        n.created_at = hour_before + Duration::seconds(i as i64);
        let n = inbox.insert(&n, expires_at).await?;
        let Some(window) =
            TimingWindow::containing(prefs.digest_email, n.created_at, &prefs.zone())
        else {
            continue;
        };
        accounts
            .join_digest(
                &user,
                &window.key(),
                &n.view(),
                prefs.digest_release(&window),
                expires_at,
            )
            .await?;
    }
    println!(
        "demo digest: 3 notifications of {DIGEST_USER} wait in an hourly digest to {DIGEST_EMAIL}"
    );
    Ok(())
}
