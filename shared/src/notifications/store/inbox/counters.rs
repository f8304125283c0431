//! The counters item: reading it, the unread count, and the counter change that goes with
//! every write of a notification's read state or existence.

use super::*;

impl Notifications {
    /// The user's counters (strongly consistent).
    pub async fn counters(&self, user: &UserId) -> Result<Counters, StoreError> {
        let out_item = self
            .table
            .get(user_partition(user), COUNTERS_SK, "GetItem counters")
            .await?;
        match out_item {
            None => Ok(Counters::default()),
            Some(item) => Counters::from_item(&item),
        }
    }

    /// The counters update of a transaction, conditioned on where the watermark stands.
    pub(super) fn counter_update(
        &self,
        user: &UserId,
        changes: &[(String, i64)],
        watermark: Watermark<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(self.table.name())
            .key(PK, s(user_partition(user)))
            .key(SK, s(COUNTERS_SK));
        let mut adds = vec![];
        for (i, (attr, delta)) in changes.iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#c{i}"), attr)
                .expression_attribute_values(format!(":d{i}"), num(*delta));
            adds.push(format!("#c{i} :d{i}"));
        }
        update = update.update_expression(format!("ADD {}", adds.join(", ")));
        // The counters exist wherever a notification does; a missing item means the user's
        // inbox was erased, and nothing may be counted down from there.
        update = match watermark {
            Watermark::Any => update.condition_expression("attribute_exists(pk)"),
            Watermark::Above(sk) => update
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(#rb) OR #rb < :sk)",
                )
                .expression_attribute_names("#rb", READ_BEFORE_ATTR)
                .expression_attribute_values(":sk", s(sk)),
            Watermark::AtOrBelow(sk) => update
                .condition_expression("#rb >= :sk")
                .expression_attribute_names("#rb", READ_BEFORE_ATTR)
                .expression_attribute_values(":sk", s(sk)),
        };
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// The user's unread count; 0 for a user with nothing yet.
    pub async fn unread_count(&self, user: &UserId) -> Result<u64, StoreError> {
        // Only the unread counter: the cheapest read of the most frequent call.
        let output = self
            .table
            .client()
            .get_item()
            .table_name(self.table.name())
            .key(PK, s(user_partition(user)))
            .key(SK, s(COUNTERS_SK))
            .projection_expression("#u")
            .expression_attribute_names("#u", UNREAD_ATTR)
            .send()
            .await
            .map_err(sdk("GetItem counters"))?;
        match output.item {
            None => Ok(0),
            Some(item) => item.counter(UNREAD_ATTR),
        }
    }
}

/// Where the read-all watermark must stand for a counters change to be right.
pub(super) enum Watermark<'a> {
    Any,
    /// The item is above it: it counts as unread.
    Above(&'a str),
    /// The item is at or below it: read-all counted it out already.
    AtOrBelow(&'a str),
}
