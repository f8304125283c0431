//! Usage report emails: every quarter hour (`report-schedule`) the zones where it is 08:00 now
//! are picked from the registry's list of zones (the tz database decides, at run time, so
//! daylight-saving changes and half- and quarter-hour zones need nothing stored), only those
//! zones' subscribers are read, and each is queued on `ReportQueue` with the reports due — the
//! daily one every day, the weekly one on Mondays, the monthly one on the 1st. A run reads the
//! zone list (a few hundred names at most) and the subscribers due: never the idle ones.
//! `report-sender` claims each report email (`REPORT#<kind>#<period>` in the user's partition)
//! before building and sending it, so overlapping runs, retried invocations and redelivered
//! messages send it once; a claim abandoned by a crash is taken over after two minutes.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Datelike, Duration, DurationRound, Timelike, Utc, Weekday};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analytics::ingest::rollups_store;
use crate::analytics::routes::report::{build, html_of, Kind, Span};
use crate::analytics::store::Scope;
use crate::analytics::zone::Zone;
use crate::notifications::channels::email::feedback;
use crate::notifications::channels::email::sender::{send_raw, Outgoing, SesFailure};
use crate::notifications::preferences::Preferences;
use crate::notifications::store::accounts::ReportClaim;
use crate::notifications::store::{accounts, Accounts};
use crate::platform::app::App;
use crate::platform::config::require;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::keys::report_sent_sk;
use crate::platform::error::ApiError;
use crate::platform::handler::{ScheduleFuture, SqsFuture, Tick};
use crate::platform::sqs::{self, Settled};

/// Subscribers per work message.
pub const USERS_PER_MESSAGE: usize = 25;
/// The local hour report emails go out (at minute 0).
pub const SEND_HOUR: u32 = 8;
/// How often the schedule runs: the finest step of a zone's offset.
pub const RUN_MINUTES: i64 = 15;
/// How long a run may spend moving subscribers of the earlier registry (the function's timeout
/// is 300 s): about 10,000 users at a few milliseconds per call, so most deployments move in
/// one run.
const MIGRATION_BUDGET: std::time::Duration = std::time::Duration::from_secs(120);

/// One subscriber's reports due at `at`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Due {
    pub user: String,
    pub tz: String,
    pub kinds: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Work {
    pub at: DateTime<Utc>,
    pub due: Vec<Due>,
}

/// Whether it is 08:00 in `tz` at `at` (a quarter hour).
pub fn sends_at(at: DateTime<Utc>, tz: &Zone) -> bool {
    let local = tz.local(at);
    local.hour() == SEND_HOUR && local.minute() == 0
}

/// The reports of a subscriber due at `at`: none unless it is 08:00 where they are.
pub fn due_at(
    at: DateTime<Utc>,
    tz: &Zone,
    reports: &crate::notifications::preferences::Reports,
) -> Vec<Kind> {
    if !sends_at(at, tz) {
        return vec![];
    }
    let local = tz.local(at);
    let mut out = vec![];
    if reports.daily {
        out.push(Kind::Day);
    }
    if reports.weekly && local.weekday() == Weekday::Mon {
        out.push(Kind::Week);
    }
    if reports.monthly && local.day() == 1 {
        out.push(Kind::Month);
    }
    out
}

/// The quarter hour a firing stands for: EventBridge may fire a little late, never early.
pub fn run_instant(tick: DateTime<Utc>) -> DateTime<Utc> {
    tick.duration_trunc(Duration::minutes(RUN_MINUTES))
        .unwrap_or(tick)
}

/// `report-schedule`: queues the subscribers whose reports are due as of the firing's time.
pub fn schedule(app: Arc<App>, tick: Tick) -> ScheduleFuture {
    Box::pin(async move {
        let accounts = accounts(&app).await?;
        let queue = require(&app.config().resources.report_queue_url, "REPORT_QUEUE_URL")?;
        let at = run_instant(tick.at);
        // Before the zones are read, so a moved subscriber due now is served by this run; a
        // failure here is logged and left to the next run rather than costing this one's
        // reports.
        let deadline = std::time::Instant::now() + MIGRATION_BUDGET;
        match accounts.migrate_legacy_report_users(deadline).await {
            Ok(0) => {}
            Ok(migrated) => tracing::info!(
                migrated,
                "report subscribers moved to the zone-keyed registry"
            ),
            Err(e) => tracing::error!(error = %e, "moving the earlier report registry failed"),
        }
        let zones = accounts.report_zones().await?;
        let mut due = vec![];
        let mut subscribers = 0;
        let mut zones_due = 0;
        for name in &zones {
            // A name the tz database no longer knows cannot have been accepted; skip it.
            let Some(zone) = Zone::parse(name) else {
                tracing::warn!(zone = name, "report zone unknown to the tz database");
                continue;
            };
            if !sends_at(at, &zone) {
                continue;
            }
            zones_due += 1;
            for s in accounts.report_subscribers(name).await? {
                subscribers += 1;
                let kinds = due_at(at, &zone, &s.reports);
                if !kinds.is_empty() {
                    due.push(Due {
                        user: s.user.to_string(),
                        tz: s.tz,
                        kinds: kinds.iter().map(|k| k.name().to_owned()).collect(),
                    });
                }
            }
        }
        let work: Vec<Work> = due
            .chunks(USERS_PER_MESSAGE)
            .map(|c| Work {
                at,
                due: c.to_vec(),
            })
            .collect();
        sqs::send_json(app.sqs().await, queue, &work).await?;
        tracing::info!(
            zones = zones.len(),
            zones_due,
            subscribers,
            due = due.len(),
            messages = work.len(),
            "report emails queued"
        );
        Ok(())
    })
}

/// Builds and sends one report email unless it went out already; what happened, for the log.
async fn send_one(
    app: &App,
    accounts: &Accounts,
    prefs: &Preferences,
    user: &UserId,
    zone: &Zone,
    kind: Kind,
    at: DateTime<Utc>,
) -> Result<&'static str, ApiError> {
    let span = Span::before(kind, zone.local(at).date_naive(), zone)?;
    // An admin's `reports.system` makes it the platform's report: claimed under its own name,
    // so switching it on or off mid-period never blocks the other kind's email.
    let (scope, claim_kind, subject) = if prefs.reports.system {
        (
            Scope::System,
            format!("system-{}", kind.name()),
            format!(
                "The platform's {} usage report: {}",
                kind.name(),
                span.label
            ),
        )
    } else {
        (
            Scope::User(user.clone()),
            kind.name().to_owned(),
            format!("Your {} usage report: {}", kind.name(), span.label),
        )
    };
    let sk = report_sent_sk(&claim_kind, &span.label);
    match accounts.claim_report(user, &sk).await? {
        ReportClaim::Claimed => {}
        ReportClaim::Sent => return Ok("sent before"),
        ReportClaim::Busy => {
            return Err(ApiError::Conflict(
                "another invocation is sending this report".into(),
            ))
        }
    }
    let Some(to) = prefs
        .email_address
        .as_ref()
        .filter(|a| !prefs.is_suppressed(a))
    else {
        accounts.report_sent(user, &sk, "no email address").await?;
        return Ok("no address");
    };
    let store = rollups_store(app).await?;
    let body: Value = build(&store, &scope, &span).await?;
    let (text, html) = (text_of(&body), html_of(&body));
    let sent = send_raw(
        app,
        Outgoing {
            to: to.as_str(),
            subject: &subject,
            text: &text,
            html: &html,
            unsubscribe: None,
            tags: feedback::user_tags(user).map_err(ApiError::Unexpected)?,
        },
    )
    .await
    .map_err(ApiError::Unexpected)?;
    match sent {
        Ok(()) => {
            accounts.report_sent(user, &sk, "sent").await?;
            Ok("sent")
        }
        // No retry can fix it (a rejected message, an unverified sender): settled as failed,
        // like any email of ours.
        Err(SesFailure::Permanent(why)) => {
            tracing::warn!(user = %user, error = why, "report email failed for good");
            accounts
                .report_sent(user, &sk, &format!("failed: {why}"))
                .await?;
            Ok("failed")
        }
        Err(SesFailure::Transient(why)) => Err(ApiError::Unexpected(anyhow::anyhow!("SES: {why}"))),
    }
}

/// The plain-text part: the totals and the recommendations.
fn text_of(body: &Value) -> String {
    let mut out = format!("Usage report {}\n\n", body["report"].as_str().unwrap_or(""));
    for (k, v) in body["totals"].as_object().into_iter().flatten() {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push_str("\nRecommendations:\n");
    for r in body["recommendations"].as_array().into_iter().flatten() {
        out.push_str(&format!("- {}\n", r["text"].as_str().unwrap_or("")));
    }
    out
}

/// The reports one subscriber of a run is owed.
async fn send_due(
    app: &App,
    accounts: &Accounts,
    due: &Due,
    at: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Ok(user) = UserId::parse(&due.user) else {
        tracing::warn!(user = due.user, "report for an invalid user id skipped");
        return Ok(());
    };
    let zone = Zone::parse(&due.tz).unwrap_or_else(Zone::utc);
    // The registry trails the preferences by a write: what they say now decides (a report
    // switched off, or a zone changed, since the run queued it).
    let prefs = accounts.preferences(&user).await?;
    if prefs.tz.as_deref().unwrap_or("UTC") != due.tz {
        tracing::info!(user = %user, "report skipped: the zone changed");
        return Ok(());
    }
    for kind in due.kinds.iter().filter_map(|k| Kind::parse(k)) {
        if !prefs.reports.get(kind.name()) {
            tracing::info!(user = %user, kind = kind.name(), "report switched off");
            continue;
        }
        let outcome = send_one(app, accounts, &prefs, &user, &zone, kind, at).await?;
        tracing::info!(user = %user, kind = kind.name(), outcome, "report email");
    }
    Ok(())
}

/// `report-sender`, the consumer of `ReportQueue`. A malformed message goes to the dead-letter
/// queue at once; a failed report fails its message, which SQS delivers again (the reports that
/// went out find their claims and are not sent twice).
pub fn sender(app: Arc<App>, event: SqsEvent) -> SqsFuture {
    Box::pin(async move {
        let batch = sqs::run_batch(&event.records, 1, |record| {
            let app = &app;
            async move {
                let body = record.body.as_deref().unwrap_or_default();
                let work: Work = match serde_json::from_str(body) {
                    Ok(w) => w,
                    Err(e) => {
                        let dlq =
                            require(&app.config().resources.report_dlq_url, "REPORT_DLQ_URL")?;
                        let why = format!("not a report message: {e}");
                        sqs::dead_letter_record(app.sqs().await, dlq, record, &why).await?;
                        return Ok(Settled::Done(()));
                    }
                };
                let accounts = accounts(app).await?;
                // One user's failure does not hold back the others of the message; it fails the
                // message afterwards, so SQS brings it back for the reports still owed.
                let mut failed = None;
                for due in &work.due {
                    if let Err(e) = send_due(app, &accounts, due, work.at).await {
                        tracing::error!(user = due.user, error = %e, "report email failed");
                        failed.get_or_insert(e);
                    }
                }
                if let Some(e) = failed {
                    return Err(e.into());
                }
                Ok(Settled::Done(()))
            }
        })
        .await;
        batch.response
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::preferences::Reports;

    #[test]
    fn reports_are_due_at_eight_local_the_weekly_on_mondays_the_monthly_on_the_first() {
        let all = Reports {
            daily: true,
            weekly: true,
            monthly: true,
            system: false,
        };
        let paris = Zone::parse("Europe/Paris").unwrap();
        // Monday 2026-06-01, 08:00 in Paris is 06:00 UTC.
        let at: DateTime<Utc> = "2026-06-01T06:00:00Z".parse().unwrap();
        assert_eq!(
            due_at(at, &paris, &all),
            [Kind::Day, Kind::Week, Kind::Month]
        );
        assert!(due_at(at, &Zone::utc(), &all).is_empty(), "06:00 in UTC");
        let tuesday: DateTime<Utc> = "2026-06-02T06:00:00Z".parse().unwrap();
        assert_eq!(due_at(tuesday, &paris, &all), [Kind::Day]);
    }

    #[test]
    fn eight_local_falls_on_the_quarter_hour_of_the_zone_and_follows_daylight_saving() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        for (zone, eight, other) in [
            (
                "Asia/Kolkata",
                "2026-06-01T02:30:00Z",
                "2026-06-01T02:00:00Z",
            ),
            (
                "Asia/Kathmandu",
                "2026-06-01T02:15:00Z",
                "2026-06-01T02:30:00Z",
            ),
            (
                "Australia/Eucla",
                "2026-06-01T23:15:00Z",
                "2026-06-01T23:00:00Z",
            ),
            // Newfoundland: −02:30 in summer, −03:30 in winter.
            (
                "America/St_Johns",
                "2026-06-01T10:30:00Z",
                "2026-06-01T11:30:00Z",
            ),
            (
                "America/St_Johns",
                "2026-12-01T11:30:00Z",
                "2026-12-01T10:30:00Z",
            ),
            // Adelaide: +10:30 in (southern) summer, +09:30 in winter.
            (
                "Australia/Adelaide",
                "2026-12-01T21:30:00Z",
                "2026-12-01T22:30:00Z",
            ),
            (
                "Australia/Adelaide",
                "2026-06-01T22:30:00Z",
                "2026-06-01T21:30:00Z",
            ),
        ] {
            let z = Zone::parse(zone).unwrap();
            assert!(sends_at(at(eight), &z), "{zone} at {eight}");
            assert!(!sends_at(at(other), &z), "{zone} at {other}");
        }
    }

    #[test]
    fn a_late_firing_stands_for_its_quarter_hour() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            run_instant(at("2026-06-01T02:30:41Z")),
            at("2026-06-01T02:30:00Z")
        );
    }
}
