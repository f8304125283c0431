//! Writes that change the inbox: inserting (once per job), marking one read, deleting; each one
//! transaction with its counter change (see the module notes of `inbox`).

use super::counters::Watermark;
use super::*;

impl Notifications {
    /// Stores `n` and counts it, in one transaction. Its id is kept unless an id at or below
    /// the user's newest exists (another clock, a concurrent insert), in which case it gets the
    /// next id above; the stored notification is returned.
    pub async fn insert(
        &self,
        n: &Notification,
        expires_at: i64,
    ) -> Result<Notification, StoreError> {
        match self.insert_inner(n, expires_at, None).await? {
            Inserted::New(n) => Ok(n),
            Inserted::Duplicate(_) => Err(StoreError::Dynamo(
                "insert without a job found a job record".into(),
            )),
        }
    }

    /// Stores the notification `job` creates for `n.user_id`, once: the job record is written
    /// in the same transaction, and a second call finds it instead.
    pub async fn insert_for_job(
        &self,
        n: &Notification,
        expires_at: i64,
        job: &JobId,
    ) -> Result<Inserted, StoreError> {
        self.insert_inner(n, expires_at, Some(job)).await
    }

    async fn insert_inner(
        &self,
        n: &Notification,
        expires_at: i64,
        job: Option<&JobId>,
    ) -> Result<Inserted, StoreError> {
        let mut n = n.clone();
        let pk = user_partition(&n.user_id);
        let mut retry = Retry::new("inserting a notification");
        loop {
            let sk = notification_sk(&n.id);
            let put = built(
                Put::builder()
                    .table_name(self.table.name())
                    .set_item(Some(Self::item(&n, expires_at)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?;
            let mut names = HashMap::from([
                ("#last".to_owned(), LAST_ATTR.to_owned()),
                ("#t".to_owned(), TOTAL_ATTR.to_owned()),
                ("#tk".to_owned(), total_of(n.kind)),
            ]);
            let mut expression = "SET #last = :sk ADD #t :one, #tk :one".to_owned();
            if !n.is_read {
                names.insert("#u".into(), UNREAD_ATTR.into());
                names.insert("#uk".into(), unread_of(n.kind));
                expression.push_str(", #u :one, #uk :one");
            }
            let counters = built(
                Update::builder()
                    .table_name(self.table.name())
                    .key(PK, s(pk.clone()))
                    .key(SK, s(COUNTERS_SK))
                    .update_expression(expression)
                    .condition_expression("attribute_not_exists(#last) OR #last < :sk")
                    .set_expression_attribute_names(Some(names))
                    .expression_attribute_values(":sk", s(sk.clone()))
                    .expression_attribute_values(":one", num(1))
                    .build(),
            )?;
            let mut items = vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder().update(counters).build(),
            ];
            if let Some(job) = job {
                let record = built(
                    Put::builder()
                        .table_name(self.table.name())
                        .item(PK, s(pk.clone()))
                        .item(SK, s(job_sk(job.as_str())))
                        .item("notification_id", s(n.id.to_string()))
                        .item("created_at", time(n.created_at))
                        .item("fanned_out", flag(false))
                        .item(
                            "fanning_until",
                            num(Utc::now().timestamp() + FAN_OUT_LEASE_SECONDS),
                        )
                        .item("expires_at", num(expires_at))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                )?;
                items.push(TransactWriteItem::builder().put(record).build());
            }
            match transact(self.table.client(), items).await? {
                Tx::Committed { .. } => return Ok(Inserted::New(n)),
                Tx::Retry(_) => retry.pause().await?,
                Tx::ConditionsFailed(failed) => {
                    if Tx::failed(&failed, 2) {
                        if let Some(job) = job {
                            if let Some(record) = self.job_record(&n.user_id, job).await? {
                                return Ok(Inserted::Duplicate(record));
                            }
                        }
                        retry.again()?;
                        continue;
                    }
                    // Our id is not above the newest: take the next one above it.
                    let last = self.counters(&n.user_id).await?.last_sk;
                    n.id = next_id(last.as_deref());
                    retry.again()?;
                }
            }
        }
    }

    /// Marks one notification read and counts it out, exactly once.
    pub async fn mark_read(&self, user: &UserId, id: &Uuid) -> Result<MarkRead, StoreError> {
        let mut retry = Retry::new("marking a notification read");
        loop {
            let Some(n) = self.get_raw(user, id).await? else {
                return Ok(MarkRead::NotFound);
            };
            if n.is_read {
                return Ok(MarkRead::AlreadyRead);
            }
            let sk = notification_sk(id);
            let counters = self.counters(user).await?;
            if counters.covers(&sk) {
                // Read by a read-all already and counted out; write it onto the item.
                self.materialize(user, &sk, counters.read_all_at.unwrap_or_else(Utc::now))
                    .await?;
                return Ok(MarkRead::AlreadyRead);
            }
            let item = built(
                Update::builder()
                    .table_name(self.table.name())
                    .key(PK, s(user_partition(user)))
                    .key(SK, s(sk.clone()))
                    .update_expression("SET is_read = :t, read_at = :now REMOVE #gpk, #gsk")
                    .condition_expression("is_read = :f")
                    .expression_attribute_names("#gpk", GSI1PK)
                    .expression_attribute_names("#gsk", GSI1SK)
                    .expression_attribute_values(":t", flag(true))
                    .expression_attribute_values(":f", flag(false))
                    .expression_attribute_values(":now", time(Utc::now()))
                    .build(),
            )?;
            let count = self.counter_update(
                user,
                &[(UNREAD_ATTR.to_owned(), -1), (unread_of(n.kind), -1)],
                Watermark::Above(&sk),
            )?;
            let items = vec![TransactWriteItem::builder().update(item).build(), count];
            match transact(self.table.client(), items).await? {
                Tx::Committed { .. } => return Ok(MarkRead::Marked),
                Tx::Retry(_) => retry.pause().await?,
                // Read again: deleted, read or read-all.
                Tx::ConditionsFailed(_) => retry.again()?,
            }
        }
    }

    /// Deletes one notification and counts it out, exactly once; `false` when it is not there.
    pub async fn delete(&self, user: &UserId, id: &Uuid) -> Result<bool, StoreError> {
        let mut retry = Retry::new("deleting a notification");
        loop {
            let Some(n) = self.get_raw(user, id).await? else {
                return Ok(false);
            };
            let sk = notification_sk(id);
            let mut changes = vec![(TOTAL_ATTR.to_owned(), -1), (total_of(n.kind), -1)];
            let watermark = if n.is_read {
                Watermark::Any
            } else {
                let counters = self.counters(user).await?;
                if counters.covers(&sk) {
                    Watermark::AtOrBelow(&sk)
                } else {
                    changes.push((UNREAD_ATTR.to_owned(), -1));
                    changes.push((unread_of(n.kind), -1));
                    Watermark::Above(&sk)
                }
            };
            let delete = built(
                Delete::builder()
                    .table_name(self.table.name())
                    .key(PK, s(user_partition(user)))
                    .key(SK, s(sk.clone()))
                    .condition_expression("is_read = :was")
                    .expression_attribute_values(":was", flag(n.is_read))
                    .build(),
            )?;
            let count = self.counter_update(user, &changes, watermark)?;
            let items = vec![TransactWriteItem::builder().delete(delete).build(), count];
            match transact(self.table.client(), items).await? {
                Tx::Committed { .. } => return Ok(true),
                Tx::Retry(_) => retry.pause().await?,
                Tx::ConditionsFailed(_) => retry.again()?,
            }
        }
    }
}

/// The next notification id above `last_sk` (or now, when that is later).
fn next_id(last_sk: Option<&str>) -> Uuid {
    let now = Uuid::now_v7();
    let last = last_sk
        .and_then(|sk| sk.strip_prefix(NOTIF_PREFIX))
        .and_then(|id| Uuid::parse_str(id).ok());
    match last {
        Some(last) if last >= now => Uuid::from_u128(last.as_u128() + 1),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_id_is_above_the_newest_even_when_the_clock_is_behind() {
        let future = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            4_000_000_000,
            0,
        ));
        let sk = notification_sk(&future);
        let next = next_id(Some(&sk));
        assert!(notification_sk(&next) > sk);
        assert_eq!(next.get_version_num(), 7);
        let past = notification_sk(&Uuid::nil());
        assert!(next_id(Some(&past)) > Uuid::nil());
    }
}
