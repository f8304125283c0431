//! A user's metric alert rules, all on ONE versioned item (`USER#<user>#TOTAL` / `RULES`, at most
//! 20 rules) holding the definitions, their state and the transitions decided but not yet
//! notified (`pending`). Every change — a route's edit, an evaluation's claim, the clearing of
//! what was notified — is one write conditioned on the version read, so no race can lose or
//! repeat a transition.
//!
//! Users with rules are listed in a small sharded registry (`RULEUSERS#<shard>` / `<user>`),
//! written in the same transaction as the rules, so the scheduled evaluation pages through
//! exactly the users who have rules, never the whole table.

use aws_sdk_dynamodb::types::{Delete, ReturnConsumedCapacity};
use serde_json::Value;

use super::*;
use crate::analytics::alert_rule::{Rule, Transition};
use crate::platform::dynamodb::keys::{
    alert_history_sk, rule_users_pk, rule_users_shard, RULES_SK,
};

const LIST: &str = "rules";
const PENDING: &str = "pending";
const VERSION: &str = "ver";

/// The rules as read, the transitions waiting for their notification, and the version a write
/// must find unchanged (0: no item yet).
#[derive(Clone, Debug, Default)]
pub struct RuleBook {
    pub rules: Vec<Rule>,
    pub pending: Vec<Transition>,
    pub version: i64,
}

/// Whether a save keeps the registry of users with rules in step: a route's edit may add the
/// user's first rule or remove the last; an evaluation's claim changes no definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registry {
    Update,
    Leave,
}

/// One page of the registry of users with rules.
pub struct RuleUsersPage {
    pub users: Vec<UserId>,
    pub read_units: f64,
}

fn json_of<T: serde::Serialize>(what: &str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

impl UsageStore {
    /// The user's rules; `consistent` when the read decides a write.
    pub async fn alert_rules(
        &self,
        user: &UserId,
        consistent: bool,
    ) -> Result<RuleBook, StoreError> {
        let Some(item) = self
            .user_item(user, RULES_SK, consistent, "GetItem rules")
            .await?
        else {
            return Ok(RuleBook::default());
        };
        let rules = serde_json::from_str(item.string(LIST)?)
            .map_err(|e| StoreError::Corrupt(format!("{LIST}: {e}")))?;
        let pending = match item.opt_string(PENDING)? {
            None => vec![],
            Some(raw) => serde_json::from_str(raw)
                .map_err(|e| StoreError::Corrupt(format!("{PENDING}: {e}")))?,
        };
        Ok(RuleBook {
            rules,
            pending,
            version: item.int(VERSION)?,
        })
    }

    /// Replaces the user's rules and pending transitions if the item is still at `version`, with
    /// `history` entries (sort-key suffix, JSON entry) recorded in the same transaction, and the
    /// registry entry kept in step (present while the user has rules). `false` when another
    /// writer changed the rules first (read again and decide again).
    pub async fn save_alert_rules(
        &self,
        user: &UserId,
        version: i64,
        rules: &[Rule],
        pending: &[Transition],
        history: &[(chrono::DateTime<Utc>, String, Value)],
        registry: Registry,
    ) -> Result<bool, StoreError> {
        let table = self.rollups_table()?;
        let pk = user_totals_pk(user.as_str());
        let mut put = Put::builder()
            .table_name(table)
            .item(PK, s(pk.clone()))
            .item(SK, s(RULES_SK))
            .item(LIST, s(json_of(LIST, &rules)?))
            .item(VERSION, num(version + 1));
        if !pending.is_empty() {
            put = put.item(PENDING, s(json_of(PENDING, &pending)?));
        }
        let put = if version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("#v = :v")
                .expression_attribute_names("#v", VERSION)
                .expression_attribute_values(":v", num(version))
        };
        let registry_pk = rule_users_pk(rule_users_shard(user));
        let registry_item = if rules.is_empty() {
            TransactWriteItem::builder()
                .delete(built(
                    Delete::builder()
                        .table_name(table)
                        .key(PK, s(registry_pk))
                        .key(SK, s(user.as_str()))
                        .build(),
                )?)
                .build()
        } else {
            TransactWriteItem::builder()
                .put(built(
                    Put::builder()
                        .table_name(table)
                        .item(PK, s(registry_pk))
                        .item(SK, s(user.as_str()))
                        .build(),
                )?)
                .build()
        };
        let mut items = vec![TransactWriteItem::builder()
            .put(built(put.build())?)
            .build()];
        if registry == Registry::Update {
            items.push(registry_item);
        }
        for (at, what, entry) in history {
            let put = Put::builder()
                .table_name(table)
                .item(PK, s(pk.clone()))
                .item(SK, s(alert_history_sk(at, what)))
                .item("kind", s("rule"))
                .item("entry", s(json_of("entry", entry)?))
                .item("expires_at", num(self.ttl(*at)));
            items.push(
                TransactWriteItem::builder()
                    .put(built(put.build())?)
                    .build(),
            );
        }
        self.commit_versioned("TransactWriteItems rules", items)
            .await
    }

    /// Clears the pending transitions once their notifications are queued, if the item is still
    /// at `version`; `false` when another writer moved it first (the next evaluation queues
    /// whatever is still pending again, under the same job ids).
    pub async fn clear_pending_transitions(
        &self,
        user: &UserId,
        version: i64,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(self.rollups_table()?)
            .key(PK, s(user_totals_pk(user.as_str())))
            .key(SK, s(RULES_SK))
            .update_expression("REMOVE #p SET #v = :next")
            .condition_expression("#v = :v")
            .expression_attribute_names("#p", PENDING)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":v", num(version))
            .expression_attribute_values(":next", num(version + 1))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let done = crate::platform::dynamodb::error::conditional("UpdateItem rules pending", out)?;
        if let Some(out) = &done {
            let units = units(out.consumed_capacity());
            self.charge(|s| s.write_units += units);
        }
        Ok(done.is_some())
    }

    /// The users with rules in registry shard `shard`, page by page (eventually consistent: a
    /// user who adds a first rule this second is evaluated from the next run).
    pub fn rule_users(
        &self,
        shard: u32,
    ) -> Result<impl futures::Stream<Item = Result<RuleUsersPage, StoreError>> + '_, StoreError>
    {
        let query = self
            .client
            .query()
            .table_name(self.rollups_table()?)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(rule_users_pk(shard)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        Ok(paging::pages(query, "Query rule users").map_ok(move |page| {
            self.charge_read(page.read_units, page.items.len());
            RuleUsersPage {
                // An entry whose key is not a valid user id cannot be evaluated: skip it, loudly.
                users: page
                    .items
                    .iter()
                    .filter_map(|item| {
                        let raw = item.string(SK).ok()?;
                        UserId::parse(raw)
                            .inspect_err(|e| tracing::warn!(entry = raw, error = %e, "rule registry entry skipped"))
                            .ok()
                    })
                    .collect(),
                read_units: page.read_units,
            }
        }))
    }
}
