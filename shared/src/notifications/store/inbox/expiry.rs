//! Notifications removed by DynamoDB's TTL: their counters corrected once per removal. TTL
//! deletes the item without touching the counters; the stream consumer (`notifications::expiry`)
//! hands each removal here, where a marker item (`EXPIRED#<id>`, itself expiring after the
//! stream's 24 h retention has passed) and the counter change are one transaction: a removal
//! delivered twice counts once.

use super::counters::Watermark;
use super::*;

/// What a removal came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Expiry {
    /// The counters now leave it out.
    Counted,
    /// This removal was counted before (a stream record delivered again).
    AlreadyCounted,
    /// The user's inbox is gone (erased): nothing to correct.
    NoInbox,
}

/// How long the marker of a counted removal is kept: past the stream's 24 h retention.
const MARKER_DAYS: i64 = 3;

pub(super) fn expired_sk(id: &Uuid) -> String {
    format!("EXPIRED#{id}")
}

impl Notifications {
    /// Takes the expired notification `id` (of `kind`, read or not as it was when removed) out
    /// of the user's counters, once.
    pub async fn count_out_expired(
        &self,
        user: &UserId,
        id: &Uuid,
        kind: NotificationType,
        was_read: bool,
    ) -> Result<Expiry, StoreError> {
        let sk = notification_sk(id);
        let mut retry = Retry::new("counting out an expired notification");
        loop {
            let mut changes = vec![(TOTAL_ATTR.to_owned(), -1), (total_of(kind), -1)];
            let watermark = if was_read {
                Watermark::Any
            } else if self.counters(user).await?.covers(&sk) {
                Watermark::AtOrBelow(&sk)
            } else {
                changes.push((UNREAD_ATTR.to_owned(), -1));
                changes.push((unread_of(kind), -1));
                Watermark::Above(&sk)
            };
            let marker = built(
                Put::builder()
                    .table_name(self.table.name())
                    .item(PK, s(user_partition(user)))
                    .item(SK, s(expired_sk(id)))
                    .item(
                        "expires_at",
                        num((Utc::now() + chrono::Duration::days(MARKER_DAYS)).timestamp()),
                    )
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?;
            let items = vec![
                TransactWriteItem::builder().put(marker).build(),
                self.counter_update(user, &changes, watermark)?,
            ];
            match transact(self.table.client(), items).await? {
                Tx::Committed { .. } => return Ok(Expiry::Counted),
                Tx::Retry(_) => retry.pause().await?,
                Tx::ConditionsFailed(failed) if Tx::failed(&failed, 0) => {
                    return Ok(Expiry::AlreadyCounted)
                }
                Tx::ConditionsFailed(_) => {
                    if self
                        .table
                        .get(user_partition(user), COUNTERS_SK, "GetItem counters")
                        .await?
                        .is_none()
                    {
                        return Ok(Expiry::NoInbox);
                    }
                    // The watermark moved between the read and the write: decide again.
                    retry.again()?;
                }
            }
        }
    }
}
