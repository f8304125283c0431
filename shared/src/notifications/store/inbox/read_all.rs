//! Read-all: one conditional update of the counters, then the covered items tidied within a
//! time budget (see the module notes of `inbox`).

use super::*;

impl Notifications {
    /// Marks every notification of `user` read; returns how many were unread. One write,
    /// whatever the inbox size (see the module notes).
    pub async fn read_all(&self, user: &UserId) -> Result<u64, StoreError> {
        let now = Utc::now();
        let mut names = HashMap::from([
            ("#rb".to_owned(), READ_BEFORE_ATTR.to_owned()),
            ("#last".to_owned(), LAST_ATTR.to_owned()),
            ("#at".to_owned(), READ_ALL_AT_ATTR.to_owned()),
            ("#u".to_owned(), UNREAD_ATTR.to_owned()),
        ]);
        let mut sets = vec![
            "#rb = #last".to_owned(),
            "#at = :now".to_owned(),
            "#u = :zero".to_owned(),
        ];
        for (i, kind) in NotificationType::ALL.iter().enumerate() {
            names.insert(format!("#u{i}"), unread_of(*kind));
            sets.push(format!("#u{i} = :zero"));
        }
        let mut retry = Retry::new("read-all");
        let old = loop {
            let result = self
                .table
                .update(user_partition(user), COUNTERS_SK)
                .update_expression(format!("SET {}", sets.join(", ")))
                .condition_expression("attribute_exists(#last) AND #u > :zero")
                .set_expression_attribute_names(Some(names.clone()))
                .expression_attribute_values(":now", time(now))
                .expression_attribute_values(":zero", num(0))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match result {
                Ok(out) => break out.attributes.unwrap_or_default(),
                Err(e) if is_condition_failed(&e) => return Ok(0),
                Err(e) if is_retryable(&e) => retry.pause().await?,
                Err(e) => return Err(sdk("UpdateItem read-all")(e)),
            }
        };
        let before = Counters::from_item(&old)?;
        if let Some(watermark) = &before.last_sk {
            let deadline = Instant::now() + MATERIALIZE_BUDGET;
            if let Err(e) = self.materialize_below(user, watermark, now, deadline).await {
                // The read state is already right; this only tidies the items.
                tracing::warn!(error = %e, "read-all: writing is_read onto items stopped early");
            }
        }
        Ok(before.unread)
    }

    /// Writes `is_read` onto unread items at or below `watermark` until `deadline`.
    async fn materialize_below(
        &self,
        user: &UserId,
        watermark: &str,
        read_at: DateTime<Utc>,
        deadline: Instant,
    ) -> Result<usize, StoreError> {
        let query = self
            .table
            .query()
            .index_name(GSI1)
            .key_condition_expression("#gpk = :pk AND #gsk <= :w")
            .expression_attribute_names("#gpk", GSI1PK)
            .expression_attribute_names("#gsk", GSI1SK)
            .expression_attribute_values(":pk", s(unread_partition(user)))
            .expression_attribute_values(":w", s(watermark))
            .projection_expression("sk")
            .limit(200);
        let mut pages = std::pin::pin!(paging::pages(query, "Query unread index"));
        let mut done = 0;
        while Instant::now() < deadline {
            let Some(page) = pages.try_next().await? else {
                break;
            };
            let keys = page
                .items
                .iter()
                .map(|i| i.string(SK).map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()?;
            let work: Vec<_> = keys
                .iter()
                .map(|sk| self.materialize(user, sk, read_at))
                .collect();
            let results: Vec<Result<(), StoreError>> = futures::stream::iter(work)
                .buffer_unordered(16)
                .collect()
                .await;
            for r in results {
                r?;
                done += 1;
            }
        }
        Ok(done)
    }

    /// Writes the read state a read-all gave the item `sk`; no counter changes (it was counted
    /// out by the read-all). Nothing happens when the item is gone or read already.
    pub(super) async fn materialize(
        &self,
        user: &UserId,
        sk: &str,
        read_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self
            .table
            .update(user_partition(user), sk)
            .update_expression("SET is_read = :t, read_at = :at REMOVE #gpk, #gsk")
            .condition_expression("is_read = :f")
            .expression_attribute_names("#gpk", GSI1PK)
            .expression_attribute_names("#gsk", GSI1SK)
            .expression_attribute_values(":t", flag(true))
            .expression_attribute_values(":f", flag(false))
            .expression_attribute_values(":at", time(read_at))
            .send()
            .await;
        // Gone, read already, or being changed by a writer who will leave it right: all fine.
        match result {
            Err(e) if is_retryable(&e) => Ok(()),
            other => conditional("UpdateItem materialize", other).map(|_| ()),
        }
    }
}
