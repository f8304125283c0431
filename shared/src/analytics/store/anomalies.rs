//! A user's (or the platform's) anomalies and quieted drivers, in their own partition of
//! RollupsTable (`USER#<user>#ANOMALY`, `SYSTEM#ANOMALY`): one item per anomaly (`A#<id>`, the record as JSON), written once
//! (conditioned on its absence, so a repeated run records it once), and one item per quieted
//! driver (`QUIET#<metric>#<driver>`, until when). Both expire with the retention.

use std::collections::BTreeMap;

use crate::analytics::anomaly::Anomaly;
use crate::platform::dynamodb::attrs::time;
use crate::platform::dynamodb::error::conditional;
use crate::platform::dynamodb::keys::{
    anomaly_pk, anomaly_sk, quiet_sk, ANOMALY_PREFIX, QUIET_PREFIX, SYSTEM_ANOMALY_PK,
};

use super::*;

const RECORD: &str = "anomaly";
const UNTIL: &str = "until";

fn decode(item: &Item) -> Result<Anomaly, StoreError> {
    serde_json::from_str(item.string(RECORD)?)
        .map_err(|e| StoreError::Corrupt(format!("{RECORD}: {e}")))
}

/// The partition of `owner`'s anomalies: a user's, or the platform's.
fn partition(owner: &Scope) -> String {
    match owner {
        Scope::User(user) => anomaly_pk(user),
        Scope::System => SYSTEM_ANOMALY_PK.to_owned(),
    }
}

fn encode(a: &Anomaly) -> Result<String, StoreError> {
    serde_json::to_string(a).map_err(|e| StoreError::Corrupt(format!("{RECORD}: {e}")))
}

impl UsageStore {
    /// Records `a` unless it is recorded already; `true` when this call recorded it.
    pub async fn record_anomaly(&self, owner: &Scope, a: &Anomaly) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(self.rollups_table()?)
            .item(PK, s(partition(owner)))
            .item(SK, s(anomaly_sk(&a.id)))
            .item(RECORD, s(encode(a)?))
            .item("expires_at", num(self.ttl(a.detected_at)))
            .condition_expression("attribute_not_exists(pk)")
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let written = conditional("PutItem anomaly", put.send().await)?;
        if let Some(out) = &written {
            let units = units(out.consumed_capacity());
            self.charge(|s| s.write_units += units);
        }
        Ok(written.is_some())
    }

    /// The user's anomalies, newest first, at most `limit`.
    pub async fn anomalies(&self, owner: &Scope, limit: usize) -> Result<Vec<Anomaly>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(self.rollups_table()?)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(partition(owner)))
            .expression_attribute_values(":p", s(ANOMALY_PREFIX))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let mut out = vec![];
        let mut pages = std::pin::pin!(paging::pages(query, "Query anomalies"));
        while let Some(page) = pages.try_next().await? {
            self.charge_read(page.read_units, page.items.len());
            for item in &page.items {
                out.push(decode(item)?);
            }
            if out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// One anomaly of the user's, if it exists.
    pub async fn anomaly(&self, owner: &Scope, id: &str) -> Result<Option<Anomaly>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.rollups_table()?)
            .key(PK, s(partition(owner)))
            .key(SK, s(anomaly_sk(id)))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk("GetItem anomaly"))?;
        self.charge_read(
            units(out.consumed_capacity()),
            usize::from(out.item.is_some()),
        );
        out.item.as_ref().map(decode).transpose()
    }

    /// Saves the verdict on `a` (already set on it) and, when it says expected, quiets its
    /// driver until `quiet_until`; a "not expected" verdict lifts a quiet. One transaction.
    pub async fn save_verdict(
        &self,
        owner: &Scope,
        a: &Anomaly,
        quiet_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let table = self.rollups_table()?;
        let pk = partition(owner);
        let record = Put::builder()
            .table_name(table)
            .item(PK, s(pk.clone()))
            .item(SK, s(anomaly_sk(&a.id)))
            .item(RECORD, s(encode(a)?))
            .item("expires_at", num(self.ttl(a.detected_at)))
            .condition_expression("attribute_exists(pk)");
        let (metric, driver) = a.quiet_key();
        let quiet = if a.expected == Some(true) {
            TransactWriteItem::builder()
                .put(built(
                    Put::builder()
                        .table_name(table)
                        .item(PK, s(pk.clone()))
                        .item(SK, s(quiet_sk(&metric, &driver)))
                        .item(UNTIL, time(quiet_until))
                        .item("expires_at", num(quiet_until.timestamp()))
                        .build(),
                )?)
                .build()
        } else {
            TransactWriteItem::builder()
                .delete(built(
                    aws_sdk_dynamodb::types::Delete::builder()
                        .table_name(table)
                        .key(PK, s(pk.clone()))
                        .key(SK, s(quiet_sk(&metric, &driver)))
                        .build(),
                )?)
                .build()
        };
        let items = vec![
            TransactWriteItem::builder()
                .put(built(record.build())?)
                .build(),
            quiet,
        ];
        let mut retry = Retry::new("TransactWriteItems anomaly verdict");
        loop {
            match transact(&self.client, items.clone()).await? {
                Tx::Committed { write_units } => {
                    self.charge(|s| {
                        s.write_units += write_units;
                        s.transactions += 1;
                    });
                    return Ok(());
                }
                Tx::ConditionsFailed(_) => {
                    return Err(StoreError::Corrupt(format!(
                        "anomaly {} vanished while its verdict was saved",
                        a.id
                    )))
                }
                Tx::Retry(_) => retry.pause().await?,
            }
        }
    }

    /// The user's quieted (metric, driver) pairs still quiet at `now`.
    pub async fn quiets(
        &self,
        owner: &Scope,
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<(String, String), DateTime<Utc>>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(self.rollups_table()?)
            .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
            .expression_attribute_values(":pk", s(partition(owner)))
            .expression_attribute_values(":p", s(QUIET_PREFIX))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let mut out = BTreeMap::new();
        let mut pages = std::pin::pin!(paging::pages(query, "Query quiet drivers"));
        while let Some(page) = pages.try_next().await? {
            self.charge_read(page.read_units, page.items.len());
            for item in &page.items {
                let until = item.time(UNTIL)?;
                let sk = item.string(SK)?;
                let rest = sk.strip_prefix(QUIET_PREFIX).unwrap_or(sk);
                if let Some((metric, driver)) = rest.split_once('#') {
                    if until > now {
                        out.insert((metric.to_owned(), driver.to_owned()), until);
                    }
                }
            }
        }
        Ok(out)
    }
}
