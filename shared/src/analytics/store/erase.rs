//! Erasing a user from the analytics tables, in steps a queue consumer can take one at a time
//! (see `lifecycle::erase`): their raw events, their rollups — each item's share subtracted from
//! the system-wide rollups in the same transaction that deletes it, so admin totals drop by
//! exactly the user's share and a repeated step subtracts nothing twice — and their totals
//! partition (budgets, rules, alert history, the credit totals).
//!
//! While an erase runs, the user's totals item carries [`ERASING`]; every ingest transaction
//! requires its absence, so no event of the user can land in a rollup the erase already took
//! apart. Deleting the totals item, last, ends the erase.

use aws_sdk_dynamodb::types::{Delete, ReturnValue, Select};
use futures::StreamExt;

use super::*;
use crate::platform::dynamodb::keys::{
    anomaly_pk, rule_users_pk, rule_users_shard, ANOMALY_PREFIX,
};
use crate::platform::dynamodb::Table;

/// Counter prefixes the system-wide rollups also keep (`Rollup::add_system`): totals,
/// providers, models and payments.
const SYSTEM_PREFIXES: [&str; 4] = ["T|", "P|", "M|", "Y|"];
/// User rollup items taken apart per transaction (each a delete and at most one update).
const ITEMS_PER_TRANSACTION: usize = 40;

/// What one erase step did: how many items it removed, and whether more remain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub removed: u64,
    pub done: bool,
}

/// What the user holds in the analytics tables, counted before anything is removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageInventory {
    pub events: u64,
    pub rollup_items: u64,
    pub budgets: u64,
    pub alert_rules: u64,
    pub alert_history: u64,
    pub anomalies: u64,
}

/// Items `query` matches, counted by DynamoDB (`Select::Count`), page by page.
async fn count(
    query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<u64, StoreError> {
    let mut n = 0u64;
    let mut pages = std::pin::pin!(paging::pages(query.select(Select::Count), "Query count"));
    while let Some(page) = pages.try_next().await? {
        n += u64::try_from(page.count).unwrap_or(0);
    }
    Ok(n)
}

impl UsageStore {
    /// Marks the user's totals item as being erased by `erase_id` unless an erase is running;
    /// returns the id of the erase in progress (this one, or the one found).
    pub async fn begin_erase(&self, user: &UserId, erase_id: &str) -> Result<String, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(self.rollups_table()?)
            .key(PK, s(user_totals_pk(user.as_str())))
            .key(SK, s(TOTALS_SK))
            .update_expression("SET #e = if_not_exists(#e, :id)")
            .expression_attribute_names("#e", ERASING)
            .expression_attribute_values(":id", s(erase_id))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(sdk("UpdateItem begin erase"))?;
        Ok(out
            .attributes
            .as_ref()
            .and_then(|a| a.opt_string(ERASING).ok().flatten())
            .unwrap_or(erase_id)
            .to_owned())
    }

    /// Counts what an erase of `user` will remove (strongly consistent where the table allows).
    pub async fn usage_inventory(&self, user: &UserId) -> Result<UsageInventory, StoreError> {
        let events = count(
            self.client
                .query()
                .table_name(self.events_table()?)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :u")
                .expression_attribute_values(":u", s(user_partition(user))),
        )
        .await?;
        let mut rollup_items = 0;
        for level in ['H', 'Q', 'D'] {
            rollup_items += count(
                self.client
                    .query()
                    .table_name(self.rollups_table()?)
                    .consistent_read(true)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(user_rollup_pk(user, level))),
            )
            .await?;
        }
        let alert_history = count(
            self.client
                .query()
                .table_name(self.rollups_table()?)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(user_totals_pk(user.as_str())))
                .expression_attribute_values(
                    ":p",
                    s(crate::platform::dynamodb::keys::ALERT_PREFIX),
                ),
        )
        .await?;
        let anomalies = count(
            self.client
                .query()
                .table_name(self.rollups_table()?)
                .consistent_read(true)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(anomaly_pk(user)))
                .expression_attribute_values(":p", s(ANOMALY_PREFIX)),
        )
        .await?;
        let owner = Scope::User(user.clone());
        Ok(UsageInventory {
            anomalies,
            events,
            rollup_items,
            budgets: self.budgets(&owner, true).await?.budgets.len() as u64,
            alert_rules: self.alert_rules(user, true).await?.rules.len() as u64,
            alert_history,
        })
    }

    /// Deletes up to `limit` of the user's raw events; counts those it found and removed.
    pub async fn erase_events(&self, user: &UserId, limit: usize) -> Result<Step, StoreError> {
        let out = self
            .client
            .query()
            .table_name(self.events_table()?)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :u")
            .expression_attribute_values(":u", s(user_partition(user)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk("Query events to erase"))?;
        let items = out.items.unwrap_or_default();
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let table = self.events_table()?.to_owned();
        // The index lags the table by a moment: a key it still lists may be gone, and a delete
        // that returns nothing is not counted.
        let mut keys = vec![];
        for item in &items {
            keys.push((item.string(PK)?.to_owned(), item.string(SK)?.to_owned()));
        }
        // Collected first: a lazy iterator of futures trips the compiler's Send check.
        let deletes: Vec<_> = keys
            .into_iter()
            .map(|(pk, sk)| {
                self.client
                    .delete_item()
                    .table_name(&table)
                    .key(PK, s(pk))
                    .key(SK, s(sk))
                    .return_values(ReturnValue::AllOld)
                    .send()
            })
            .collect();
        let mut removed = 0u64;
        let mut results = futures::stream::iter(deletes).buffer_unordered(16);
        while let Some(out) = results.next().await {
            removed += u64::from(out.map_err(sdk("DeleteItem event"))?.attributes.is_some());
        }
        Ok(Step {
            removed,
            done: !more && items.len() < limit,
        })
    }

    /// Takes apart up to `limit` of the user's rollup items of `level` (`H`, `Q` or `D`): each item
    /// deleted (on condition it is still there) in the transaction that subtracts its counters
    /// from the system-wide rollup of its bucket.
    pub async fn erase_rollups(
        &self,
        user: &UserId,
        level: char,
        limit: usize,
    ) -> Result<Step, StoreError> {
        let table = self.rollups_table()?.to_owned();
        let out = self
            .client
            .query()
            .table_name(&table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(user_rollup_pk(user, level)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk("Query rollups to erase"))?;
        let items = out.items.unwrap_or_default();
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let mut removed = 0;
        for group in items.chunks(ITEMS_PER_TRANSACTION) {
            let mut actions = vec![];
            for item in group {
                actions.extend(self.take_apart(&table, user, level, item)?);
            }
            let mut retry = Retry::new("TransactWriteItems erase rollups");
            loop {
                match transact(&self.client, actions.clone()).await? {
                    Tx::Committed { write_units } => {
                        self.charge(|s| s.write_units += write_units);
                        removed += group.len() as u64;
                        break;
                    }
                    // An item already gone: a repeated step. The next query finds the rest.
                    Tx::ConditionsFailed(_) => break,
                    Tx::Retry(_) => retry.pause().await?,
                }
            }
        }
        Ok(Step {
            removed,
            done: !more && items.len() < limit,
        })
    }

    /// The delete of one user rollup item and the `ADD` of minus its system-wide share.
    fn take_apart(
        &self,
        table: &str,
        user: &UserId,
        level: char,
        item: &Item,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let sk = item.string(SK)?.to_owned();
        let mut actions = vec![TransactWriteItem::builder()
            .delete(built(
                Delete::builder()
                    .table_name(table)
                    .key(PK, s(user_rollup_pk(user, level)))
                    .key(SK, s(&sk))
                    .condition_expression("attribute_exists(pk)")
                    .build(),
            )?)
            .build()];
        let mut terms = vec![];
        for (name, value) in item {
            if value.is_n() && SYSTEM_PREFIXES.iter().any(|p| name.starts_with(p)) {
                let v = item.int(name)?;
                if v != 0 {
                    terms.push((name.clone(), -v));
                }
            }
        }
        if terms.is_empty() {
            return Ok(actions);
        }
        // Shard 0 of the system rollup: reads sum the shards, so any one takes the difference.
        let mut update = Update::builder()
            .table_name(table)
            .key(PK, s(system_rollup_pk(0, level)))
            .key(SK, s(&sk));
        let mut adds = vec![];
        for (i, (name, value)) in terms.iter().enumerate() {
            adds.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), num(*value));
        }
        let mut expression = format!("ADD {}", adds.join(", "));
        if let Some(ttl) = item.opt_int("expires_at")? {
            expression.push_str(" SET expires_at = if_not_exists(expires_at, :ttl)");
            update = update.expression_attribute_values(":ttl", num(ttl));
        }
        actions.push(
            TransactWriteItem::builder()
                .update(built(update.update_expression(expression).build())?)
                .build(),
        );
        Ok(actions)
    }

    /// Deletes the user's anomalies and quieted drivers, then their totals partition — alert
    /// history, budgets, rules and the rule registry entry, and last the totals item, which
    /// ends the erase.
    pub async fn erase_totals(&self, user: &UserId, limit: usize) -> Result<Step, StoreError> {
        let table = self.rollups_table()?.to_owned();
        let anomalies = Table::new(self.client.clone(), &table);
        let (keys, more) = anomalies.sort_keys(anomaly_pk(user), limit).await?;
        anomalies.delete_items(&anomaly_pk(user), &keys).await?;
        if more || keys.len() >= limit {
            return Ok(Step {
                removed: keys.len() as u64,
                done: false,
            });
        }
        let pk = user_totals_pk(user.as_str());
        let out = self
            .client
            .query()
            .table_name(&table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(&pk))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk("Query totals to erase"))?;
        let items = out.items.unwrap_or_default();
        let mut removed = 0;
        let mut totals_left = false;
        for item in &items {
            let sk = item.string(SK)?;
            if sk == TOTALS_SK {
                totals_left = true;
                continue;
            }
            self.client
                .delete_item()
                .table_name(&table)
                .key(PK, s(&pk))
                .key(SK, s(sk))
                .send()
                .await
                .map_err(sdk("DeleteItem totals partition"))?;
            removed += 1;
        }
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        if more {
            return Ok(Step {
                removed,
                done: false,
            });
        }
        self.client
            .delete_item()
            .table_name(&table)
            .key(PK, s(rule_users_pk(rule_users_shard(user))))
            .key(SK, s(user.as_str()))
            .send()
            .await
            .map_err(sdk("DeleteItem rule registry"))?;
        if totals_left {
            self.client
                .delete_item()
                .table_name(&table)
                .key(PK, s(&pk))
                .key(SK, s(TOTALS_SK))
                .send()
                .await
                .map_err(sdk("DeleteItem totals"))?;
        }
        Ok(Step {
            removed,
            done: true,
        })
    }
}
