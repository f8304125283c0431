//! A user's budgets, all on ONE item (`USER#<user>#TOTAL` / `BUDGETS`, at most 20 budgets) with
//! a version, and their count `bg` on the totals item beside it, written in the same transaction:
//! the low-credit check after an ingest already reads the totals item consistently, so a user
//! without budgets costs nothing more, and one with budgets one more read. Every change — a
//! route's edit or an alert's claim — is one write conditioned on the version read, so no race
//! can lose or repeat a threshold.
//! Each firing also leaves an entry of the user's alert history (`ALERT#<at>#BUDGET#...`) beside
//! it, which `GET /api/v1/alerts` lists.

use super::*;
use crate::analytics::budget::{Amount, Budget, Firing};
use crate::platform::dynamodb::keys::{alert_history_sk, SYSTEM_TOTALS_PK};

pub const BUDGETS_SK: &str = "BUDGETS";
const LIST: &str = "budgets";
const VERSION: &str = "ver";
/// The count of budgets on the totals item.
pub(super) const MARKER: &str = "bg";

/// The budgets as read, with the version a write must find unchanged (0: no item yet).
#[derive(Clone, Debug, Default)]
pub struct BudgetBook {
    pub budgets: Vec<Budget>,
    pub version: i64,
}

/// Where `owner`'s budgets and alert history live: the user's totals partition, or the
/// platform's.
pub(super) fn budgets_pk(owner: &Scope) -> String {
    match owner {
        Scope::User(user) => user_totals_pk(user.as_str()),
        Scope::System => SYSTEM_TOTALS_PK.to_owned(),
    }
}

impl UsageStore {
    /// The budgets of a user (or, `Scope::System`, the platform's system-wide budgets);
    /// `consistent` when the read decides a write.
    pub async fn budgets(&self, owner: &Scope, consistent: bool) -> Result<BudgetBook, StoreError> {
        let Some(item) = self
            .partition_item(
                &budgets_pk(owner),
                BUDGETS_SK,
                consistent,
                "GetItem budgets",
            )
            .await?
        else {
            return Ok(BudgetBook::default());
        };
        let budgets = serde_json::from_str(item.string(LIST)?)
            .map_err(|e| StoreError::Corrupt(format!("{LIST}: {e}")))?;
        Ok(BudgetBook {
            budgets,
            version: item.int(VERSION)?,
        })
    }

    /// Replaces the user's budgets if the item is still at `version`, and records `firings`
    /// (budget id, firing) in the history in the same transaction; `false` when another writer
    /// changed the budgets first (read again and decide again).
    pub async fn save_budgets(
        &self,
        owner: &Scope,
        version: i64,
        budgets: &[Budget],
        firings: &[(String, Firing)],
    ) -> Result<bool, StoreError> {
        let table = self.rollups_table()?;
        let pk = budgets_pk(owner);
        let list = serde_json::to_string(budgets)
            .map_err(|e| StoreError::Corrupt(format!("{LIST}: {e}")))?;
        let put = Put::builder()
            .table_name(table)
            .item(PK, s(pk.clone()))
            .item(SK, s(BUDGETS_SK))
            .item(LIST, s(list))
            .item(VERSION, num(version + 1));
        let put = if version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("#v = :v")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", num(version))
        };
        let marker = Update::builder()
            .table_name(table)
            .key(PK, s(pk.clone()))
            .key(SK, s(TOTALS_SK))
            .update_expression("SET #bg = :bg")
            .expression_attribute_names("#bg", MARKER)
            .expression_attribute_values(":bg", num(budgets.len() as i64));
        let mut items = vec![TransactWriteItem::builder()
            .put(built(put.build())?)
            .build()];
        // Only a user's ingest reads the count; system-wide budgets are evaluated hourly.
        if matches!(owner, Scope::User(_)) {
            items.push(
                TransactWriteItem::builder()
                    .update(built(marker.build())?)
                    .build(),
            );
        }
        for (id, f) in firings {
            let highest = f.thresholds.last().copied().unwrap_or(0);
            let what = format!(
                "BUDGET#{id}#{}#{}#{highest}",
                f.rev,
                f.period_start.to_rfc3339()
            );
            let entry = serde_json::json!({
                "kind": if matches!(owner, Scope::System) { "system_budget" } else { "budget" },
                "budget_id": id,
                "at": stamp(f.at),
                "period_start": stamp(f.period_start),
                "period_end": stamp(f.period_end),
                "thresholds_crossed": f.thresholds,
                "unit": match f.amount { Amount::UsdMicros(_) => "usd", Amount::Credits(_) => "credits" },
                "spent": money(f.amount, f.spent),
                "budget": money(f.amount, f.amount.value()),
            });
            let history = Put::builder()
                .table_name(table)
                .item(PK, s(pk.clone()))
                .item(SK, s(alert_history_sk(&f.at, &what)))
                .item("kind", s("budget"))
                .item(
                    "entry",
                    s(serde_json::to_string(&entry)
                        .map_err(|e| StoreError::Corrupt(format!("entry: {e}")))?),
                )
                .item("expires_at", num(self.ttl(f.at)));
            items.push(
                TransactWriteItem::builder()
                    .put(built(history.build())?)
                    .build(),
            );
        }
        self.commit_versioned("TransactWriteItems budgets", items)
            .await
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An amount as the API shows it: USD as a number of dollars, credits as a whole number.
fn money(unit: Amount, v: i64) -> serde_json::Value {
    match unit {
        Amount::UsdMicros(_) => serde_json::json!(crate::analytics::money::Usd4(v)),
        Amount::Credits(_) => serde_json::json!(v),
    }
}
