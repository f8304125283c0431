//! Deliveries that wait: email batched into a digest window, email and webhooks held until quiet
//! hours end. In the user's partition, per batch:
//! - `PENDING#<batch>#<notification>#<channel>`: one waiting delivery (the notification as the
//!   API shows it, so the flusher needs no other table).
//! - `DUE#<batch>`: when the batch is released, counted writes (`n`), and in the sparse index
//!   `gsi1` under `DUE#<shard>` / `<release>#<user>#<batch>`.
//! - `DIGESTSENT#<window>`: the claim of a digest email; while it exists nothing joins the
//!   window (the dispatcher's write is conditioned on its absence), so a digest sent is final.
//!
//! Everything lives in the user's partition, so erasing the partition erases it all, the index
//! entries with it.

use aws_sdk_dynamodb::types::ConditionCheck;

use super::*;
use crate::notifications::notification::NotificationView;
use crate::platform::dynamodb::keys::{
    digest_batch, digest_sent_sk, due_index_pk, due_index_sk, due_index_upto, due_sk,
    pending_prefix, pending_sk, rule_users_shard, DUE_INDEX, DUE_PREFIX, PENDING_PREFIX,
    RULE_USER_SHARDS,
};

/// Shards of the due index; a user's shard is fixed by their id.
pub const DUE_SHARDS: u32 = RULE_USER_SHARDS;

/// How long a digest claim holds the sending before another run may take it over (longer than
/// the flusher's work on one batch).
const DIGEST_CLAIM_SECONDS: i64 = 120;

/// One batch due by the time asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueBatch {
    pub user: UserId,
    pub batch: String,
}

/// The due record of a batch as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueRecord {
    pub release: DateTime<Utc>,
    /// Deliveries written into the batch so far; the record is removed only if it is unchanged.
    pub writes: i64,
}

/// One waiting delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub sk: String,
    pub channel: Channel,
    pub notification: NotificationView,
    pub held_at: DateTime<Utc>,
    /// The batch it waits in (`DIGEST#...` or `HELD#...`).
    pub batch: String,
    pub release: Option<DateTime<Utc>>,
}

/// Who may send one digest email now.
#[derive(Debug, PartialEq, Eq)]
pub enum DigestClaim {
    /// This invocation: send, then mark it sent.
    Claimed,
    /// It went out already.
    Sent,
    /// Another invocation is sending it right now.
    Busy,
    /// The batch is gone (flushed before, or the user erased).
    Gone,
}

/// Whether a delivery joined the digest window asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    Yes,
    /// The window's digest is claimed already: try the next window.
    WindowClosed,
}

impl Accounts {
    fn pending_put(
        &self,
        user: &UserId,
        batch: &str,
        channel: Channel,
        view: &NotificationView,
        expires_at: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let id = Uuid::parse_str(&view.id)
            .map_err(|e| StoreError::Corrupt(format!("notification id {e}")))?;
        let body = serde_json::to_string(view)
            .map_err(|e| StoreError::Corrupt(format!("notification view: {e}")))?;
        let put = Put::builder()
            .table_name(self.table.name())
            .item(PK, s(user_partition(user)))
            .item(SK, s(pending_sk(batch, &id, channel.as_str())))
            .item("channel", s(channel.as_str()))
            .item("notification", s(body))
            .item("held_at", time(Utc::now()))
            .item("expires_at", num(expires_at));
        Ok(TransactWriteItem::builder()
            .put(built(put.build())?)
            .build())
    }

    /// Sets the batch's release (and its index entry) and counts the write.
    fn due_update(
        &self,
        user: &UserId,
        batch: &str,
        release: DateTime<Utc>,
        expires_at: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(self.table.name())
            .key(PK, s(user_partition(user)))
            .key(SK, s(due_sk(batch)))
            .update_expression(
                "SET gsi1pk = :gpk, gsi1sk = :gsk, release_at = :r, expires_at = :x ADD #n :one",
            )
            .expression_attribute_names("#n", "writes")
            .expression_attribute_values(":gpk", s(due_index_pk(rule_users_shard(user))))
            .expression_attribute_values(":gsk", s(due_index_sk(&release, user, batch)))
            .expression_attribute_values(":r", time(release))
            .expression_attribute_values(":x", num(expires_at))
            .expression_attribute_values(":one", num(1));
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// Holds the delivery of `view` on `channel` in `batch` until `release`.
    pub async fn hold(
        &self,
        user: &UserId,
        batch: &str,
        channel: Channel,
        view: &NotificationView,
        release: DateTime<Utc>,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let items = vec![
            self.pending_put(user, batch, channel, view, expires_at)?,
            self.due_update(user, batch, release, expires_at)?,
        ];
        match transact_retrying(self.table.client(), "holding a delivery", items).await? {
            Tx::ConditionsFailed(_) => Err(StoreError::Dynamo(
                "holding a delivery: a condition failed where none was set".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Adds the email of `view` to the digest of window `window_key` unless that digest is
    /// claimed already (sent or being sent).
    pub async fn join_digest(
        &self,
        user: &UserId,
        window_key: &str,
        view: &NotificationView,
        release: DateTime<Utc>,
        expires_at: i64,
    ) -> Result<Joined, StoreError> {
        let batch = digest_batch(window_key);
        let open = ConditionCheck::builder()
            .table_name(self.table.name())
            .key(PK, s(user_partition(user)))
            .key(SK, s(digest_sent_sk(window_key)))
            .condition_expression("attribute_not_exists(pk)");
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(built(open.build())?)
                .build(),
            self.pending_put(user, &batch, Channel::Email, view, expires_at)?,
            self.due_update(user, &batch, release, expires_at)?,
        ];
        match transact_retrying(self.table.client(), "joining a digest", items).await? {
            Tx::ConditionsFailed(_) => Ok(Joined::WindowClosed),
            _ => Ok(Joined::Yes),
        }
    }

    /// The batches of index shard `shard` released by `at`, oldest first.
    pub async fn due(&self, shard: u32, at: DateTime<Utc>) -> Result<Vec<DueBatch>, StoreError> {
        let query = self
            .table
            .query()
            .index_name(DUE_INDEX)
            .key_condition_expression("gsi1pk = :pk AND gsi1sk <= :upto")
            .expression_attribute_values(":pk", s(due_index_pk(shard)))
            .expression_attribute_values(":upto", s(due_index_upto(&at)));
        let mut out = vec![];
        for item in paging::all(query, "Query due batches").await? {
            let user = item
                .string(PK)?
                .strip_prefix("USER#")
                .and_then(|u| UserId::parse(u).ok())
                .ok_or_else(|| StoreError::Corrupt("due batch outside a user partition".into()))?;
            let batch = item
                .string(SK)?
                .strip_prefix(DUE_PREFIX)
                .ok_or_else(|| StoreError::Corrupt("due batch key".into()))?
                .to_owned();
            out.push(DueBatch { user, batch });
        }
        Ok(out)
    }

    /// The due record of a batch, read consistently; `None` once it is flushed.
    pub async fn due_record(
        &self,
        user: &UserId,
        batch: &str,
    ) -> Result<Option<DueRecord>, StoreError> {
        let item = self
            .table
            .get(user_partition(user), due_sk(batch), "GetItem due batch")
            .await?;
        item.map(|i| {
            Ok(DueRecord {
                release: i.time("release_at")?,
                writes: i.opt_int("writes")?.unwrap_or(0),
            })
        })
        .transpose()
    }

    /// Moves a batch's release to `release` (quiet hours began since it was set); nothing if the
    /// batch is gone.
    pub async fn reschedule(
        &self,
        user: &UserId,
        batch: &str,
        release: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self
            .table
            .update(user_partition(user), due_sk(batch))
            .update_expression("SET gsi1sk = :gsk, release_at = :r")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":gsk", s(due_index_sk(&release, user, batch)))
            .expression_attribute_values(":r", time(release))
            .send()
            .await;
        conditional("UpdateItem due batch release", result)?;
        Ok(())
    }

    /// The deliveries waiting in `batch`, consistently.
    pub async fn pending(&self, user: &UserId, batch: &str) -> Result<Vec<Pending>, StoreError> {
        let query = self
            .table
            .query_prefix(user_partition(user), pending_prefix(batch));
        paging::all(query, "Query pending deliveries")
            .await?
            .iter()
            .map(parse_pending)
            .collect()
    }

    /// Every delivery of the user still waiting, for their data export.
    pub async fn all_pending(&self, user: &UserId) -> Result<Vec<Pending>, StoreError> {
        let query = self
            .table
            .query_prefix(user_partition(user), PENDING_PREFIX);
        let mut out: Vec<Pending> = paging::all(query, "Query pending deliveries")
            .await?
            .iter()
            .map(parse_pending)
            .collect::<Result<_, _>>()?;
        let mut releases = HashMap::new();
        for p in &mut out {
            if !releases.contains_key(&p.batch) {
                let r = self.due_record(user, &p.batch).await?.map(|d| d.release);
                releases.insert(p.batch.clone(), r);
            }
            p.release = releases.get(&p.batch).copied().flatten();
        }
        Ok(out)
    }

    /// Deletes delivered (or dropped) waiting deliveries.
    pub async fn forget_pending(&self, user: &UserId, items: &[Pending]) -> Result<(), StoreError> {
        let sks: Vec<String> = items.iter().map(|p| p.sk.clone()).collect();
        self.table.delete_items(&user_partition(user), &sks).await
    }

    /// Removes a batch's due record if no delivery joined it since `seen` was read; `false`
    /// when one did (the next run releases it).
    pub async fn settle_batch(
        &self,
        user: &UserId,
        batch: &str,
        seen: &DueRecord,
    ) -> Result<bool, StoreError> {
        let result = self
            .table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .key(PK, s(user_partition(user)))
            .key(SK, s(due_sk(batch)))
            .condition_expression("attribute_not_exists(pk) OR #n = :n")
            .expression_attribute_names("#n", "writes")
            .expression_attribute_values(":n", num(seen.writes))
            .send()
            .await;
        Ok(conditional("DeleteItem due batch", result)?.is_some())
    }

    /// Claims the digest of `window_key`: exactly one invocation sends it, however many runs
    /// ask; a claim abandoned by a crash is taken over after two minutes. Only while the batch
    /// is due (so a flushed batch, or an erased user, gets no claim written).
    pub async fn claim_digest(
        &self,
        user: &UserId,
        window_key: &str,
    ) -> Result<DigestClaim, StoreError> {
        let now = Utc::now();
        let pk = user_partition(user);
        let due = ConditionCheck::builder()
            .table_name(self.table.name())
            .key(PK, s(pk.clone()))
            .key(SK, s(due_sk(&digest_batch(window_key))))
            .condition_expression("attribute_exists(pk)");
        let claim = Put::builder()
            .table_name(self.table.name())
            .item(PK, s(pk.clone()))
            .item(SK, s(digest_sent_sk(window_key)))
            .item("state", s("sending"))
            .item("claimed_at", num(now.timestamp()))
            .item(
                "expires_at",
                num((now + chrono::Duration::days(30)).timestamp()),
            )
            .condition_expression(
                "attribute_not_exists(pk) OR (#st = :sending AND claimed_at < :stale)",
            )
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":stale", num(now.timestamp() - DIGEST_CLAIM_SECONDS));
        let items = vec![
            TransactWriteItem::builder()
                .condition_check(built(due.build())?)
                .build(),
            TransactWriteItem::builder()
                .put(built(claim.build())?)
                .build(),
        ];
        match transact_retrying(self.table.client(), "claiming a digest", items).await? {
            Tx::ConditionsFailed(failed) if Tx::failed(&failed, 0) => Ok(DigestClaim::Gone),
            Tx::ConditionsFailed(_) => {
                let item = self
                    .table
                    .get(pk, digest_sent_sk(window_key), "GetItem digest claim")
                    .await?;
                Ok(
                    match item.as_ref().map(|i| i.string("state")).transpose()? {
                        Some("sent") => DigestClaim::Sent,
                        _ => DigestClaim::Busy,
                    },
                )
            }
            _ => Ok(DigestClaim::Claimed),
        }
    }

    /// Marks the digest of `window_key` sent (or settled: nothing to send), with what happened.
    pub async fn digest_sent(
        &self,
        user: &UserId,
        window_key: &str,
        outcome: &str,
        count: usize,
    ) -> Result<(), StoreError> {
        self.table
            .update(user_partition(user), digest_sent_sk(window_key))
            .update_expression("SET #st = :sent, outcome = :o, notifications = :c")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":o", s(outcome))
            .expression_attribute_values(":c", num(count as i64))
            .send()
            .await
            .map_err(sdk("UpdateItem digest sent"))?;
        Ok(())
    }

    /// Removes the due record of a digest whose claim is taken (nothing can join it any more).
    pub async fn drop_due(&self, user: &UserId, batch: &str) -> Result<(), StoreError> {
        self.table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .key(PK, s(user_partition(user)))
            .key(SK, s(due_sk(batch)))
            .send()
            .await
            .map_err(sdk("DeleteItem due batch"))?;
        Ok(())
    }
}

fn parse_pending(item: &Item) -> Result<Pending, StoreError> {
    let sk = item.string(SK)?.to_owned();
    let channel = Channel::parse(item.string("channel")?)
        .ok_or_else(|| StoreError::Corrupt("pending delivery channel".into()))?;
    let notification: NotificationView = serde_json::from_str(item.string("notification")?)
        .map_err(|e| StoreError::Corrupt(format!("pending delivery notification: {e}")))?;
    // PENDING#<batch kind>#<batch label>#<notification>#<channel>
    let batch = sk
        .strip_prefix(PENDING_PREFIX)
        .and_then(|rest| rest.rsplitn(3, '#').nth(2))
        .ok_or_else(|| StoreError::Corrupt(format!("pending delivery key {sk}")))?
        .to_owned();
    Ok(Pending {
        sk,
        channel,
        notification,
        held_at: item.time("held_at")?,
        batch,
        release: None,
    })
}
