//! `GET /api/v1/me/data/export`: everything held about a user, as JSON, for a data-portability
//! request. The first page holds the whole profile (credit totals, preferences, webhook endpoints
//! without their secrets, budgets, alert rules) and the first page of each long list (usage
//! events, notifications, alert history); `part=<list>&cursor=...` continues one list.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::analytics::ingest::usage_store;
use crate::analytics::store::{Scope, UsageStore};
use crate::notifications::notification::timestamp;
use crate::notifications::store::inbox::ListQuery;
use crate::notifications::store::{accounts, inbox};
use crate::platform::app::App;
use crate::platform::cursor;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::keys::DIGEST_BATCH;
use crate::platform::error::ApiError;

/// Rows of one page of each list.
pub const PAGE: usize = 500;

/// A list of the export that pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    UsageEvents,
    Notifications,
    AlertHistory,
}

impl Part {
    pub fn parse(raw: &str) -> Option<Part> {
        match raw {
            "usage_events" => Some(Part::UsageEvents),
            "notifications" => Some(Part::Notifications),
            "alert_history" => Some(Part::AlertHistory),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Part::UsageEvents => "usage_events",
            Part::Notifications => "notifications",
            Part::AlertHistory => "alert_history",
        }
    }
}

const PURPOSE: &str = "data-export";

#[derive(Serialize, Deserialize)]
struct Position {
    part: Part,
    after: String,
}

/// One page of `part` after `after`, with the sealed cursor of the next page.
pub async fn page(
    app: &App,
    user: &UserId,
    part: Part,
    after: Option<String>,
) -> Result<Value, ApiError> {
    let (items, next): (Vec<Value>, Option<String>) = match part {
        Part::UsageEvents => {
            usage_store(app)
                .await?
                .raw_events_page(user, after.as_deref(), PAGE)
                .await?
        }
        Part::Notifications => {
            let after = after
                .map(|a| uuid::Uuid::parse_str(&a))
                .transpose()
                .map_err(|_| ApiError::invalid("cursor", "cursor is not valid for this request"))?;
            let page = inbox(app)
                .await?
                .list(
                    user,
                    &ListQuery {
                        is_read: None,
                        kind: None,
                        limit: PAGE,
                        offset: 0,
                        after,
                    },
                )
                .await?;
            let next = match (page.has_more, page.items.last()) {
                (true, Some(last)) => Some(last.id.to_string()),
                _ => None,
            };
            let items = page
                .items
                .iter()
                .map(|n| serde_json::to_value(n.view()))
                .collect::<Result<_, _>>()
                .map_err(|e| ApiError::Unexpected(e.into()))?;
            (items, next)
        }
        Part::AlertHistory => {
            let page = usage_store(app)
                .await?
                .alert_history(&Scope::User(user.clone()), PAGE, after.as_deref())
                .await?;
            (page.entries, page.next)
        }
    };
    let next_cursor = next
        .map(|after| {
            cursor::seal(
                &app.config().cursor_secret,
                PURPOSE,
                user,
                &Position { part, after },
            )
        })
        .transpose()?;
    Ok(json!({"part": part.as_str(), "items": items, "next_cursor": next_cursor}))
}

/// The part and position a cursor of this user's export names.
pub fn open(app: &App, user: &UserId, raw: &str) -> Result<(Part, String), ApiError> {
    let p: Position = cursor::open(&app.config().cursor_secret, PURPOSE, user, raw)?;
    Ok((p.part, p.after))
}

/// The first page: the profile and the first page of every list.
pub async fn document(app: &App, user: &UserId) -> Result<Value, ApiError> {
    let usage: UsageStore = usage_store(app).await?;
    let accounts = accounts(app).await?;
    let totals = usage.credit_totals(user).await?;
    let prefs = accounts.preferences(user).await?;
    let endpoints: Vec<Value> = accounts
        .endpoints(user)
        .await?
        .iter()
        .map(|e| {
            json!({"id": e.id, "url": e.url, "description": e.description, "enabled": e.enabled,
                "disabled_reason": e.disabled_reason, "created_at": timestamp(e.created_at),
                "types": e.types.as_ref().map(|t| t.iter().map(|k| k.as_str()).collect::<Vec<_>>())})
        })
        .collect();
    // Emails and webhooks waiting for a digest or for quiet hours to end.
    let waiting: Vec<Value> = accounts
        .all_pending(user)
        .await?
        .iter()
        .map(|p| {
            let reason = if p.batch.starts_with(DIGEST_BATCH) {
                "digest"
            } else {
                "quiet_hours"
            };
            json!({"notification_id": p.notification.id, "type": p.notification.kind,
                "title": p.notification.title, "channel": p.channel.as_str(),
                "waiting_for": reason, "held_at": timestamp(p.held_at),
                "release_at": p.release.map(timestamp)})
        })
        .collect();
    let budgets = usage
        .budgets(&Scope::User(user.clone()), false)
        .await?
        .budgets;
    let rules = usage.alert_rules(user, false).await?.rules;
    // Anomalies are kept for the retention period and bounded by it: all of them, here.
    let anomalies = usage.anomalies(&Scope::User(user.clone()), 10_000).await?;
    Ok(json!({
        "user_id": user.as_str(),
        "generated_at": timestamp(Utc::now()),
        "credit_totals": {
            "credits_used": totals.used,
            "credits_purchased": totals.purchased,
            "credits_refunded": totals.refunded,
            "credit_balance": totals.balance(),
        },
        "preferences": prefs.view(),
        "webhook_endpoints": endpoints,
        "waiting_deliveries": waiting,
        "budgets": budgets,
        "alert_rules": rules,
        "anomalies": anomalies,
        "usage_events": page(app, user, Part::UsageEvents, None).await?,
        "notifications": page(app, user, Part::Notifications, None).await?,
        "alert_history": page(app, user, Part::AlertHistory, None).await?,
    }))
}
