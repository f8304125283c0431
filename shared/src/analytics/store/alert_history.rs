//! The user's alert history: one entry per budget firing and per rule transition, written in the
//! same transaction as the claim that decided it (`store::budgets`, `store::alert_rules`), kept
//! for the retention period, listed newest first.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use serde_json::Value;

use super::budgets::budgets_pk;
use super::*;
use crate::platform::dynamodb::keys::ALERT_PREFIX;

/// One page of the history, newest first, and the sort key to continue below.
pub struct AlertPage {
    pub entries: Vec<Value>,
    pub next: Option<String>,
}

impl UsageStore {
    /// Up to `limit` entries of `owner`'s history (a user's, or the platform's system-wide
    /// budgets') older than the entry `below` (newest first when `None`).
    pub async fn alert_history(
        &self,
        owner: &Scope,
        limit: usize,
        below: Option<&str>,
    ) -> Result<AlertPage, StoreError> {
        // BETWEEN is inclusive: ask for one more and drop the entry the cursor names.
        let high = below.map_or_else(|| format!("{ALERT_PREFIX}~"), str::to_owned);
        let query = self
            .client
            .query()
            .table_name(self.rollups_table()?)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(budgets_pk(owner)))
            .expression_attribute_values(":lo", s(ALERT_PREFIX))
            .expression_attribute_values(":hi", s(high.clone()))
            .scan_index_forward(false)
            .limit(i32::try_from(limit + 2).unwrap_or(i32::MAX))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let mut entries = vec![];
        let mut last_sk = None;
        let mut more = false;
        let mut pages = std::pin::pin!(paging::pages(query, "Query alert history"));
        'pages: while let Some(page) = pages.try_next().await? {
            self.charge_read(page.read_units, page.items.len());
            for item in &page.items {
                let sk = item.string(SK)?;
                if below == Some(sk) {
                    continue;
                }
                if entries.len() == limit {
                    more = true;
                    break 'pages;
                }
                let entry = serde_json::from_str(item.string("entry")?)
                    .map_err(|e| StoreError::Corrupt(format!("entry: {e}")))?;
                entries.push(entry);
                last_sk = Some(sk.to_owned());
            }
        }
        Ok(AlertPage {
            entries,
            next: if more { last_sk } else { None },
        })
    }
}
