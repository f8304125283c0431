//! Raw events for the exports, one page at a time.

use super::*;

impl UsageStore {
    /// One page of a user's raw events in [start, end), oldest first, after `after` (a
    /// position returned by the previous page).
    ///
    /// Each stored item passes through `convert` as soon as its DynamoDB page arrives and is
    /// then dropped, so memory holds one page of items, not the whole export page.
    pub async fn events_page<T>(
        &self,
        user: &UserId,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        after: Option<&str>,
        limit: usize,
        convert: impl Fn(&Item) -> Option<T>,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let from = after
            .map(str::to_owned)
            .unwrap_or_else(|| event_time_sk(&start, ""));
        // `~` sorts after every id character, so the upper bound excludes `end` itself.
        let to = event_time_sk(&(end - Duration::milliseconds(1)), "~");
        let mut rows = vec![];
        let mut next: Option<Item> = after.map(|sk| {
            let mut k = HashMap::new();
            k.insert(GSI1PK.to_owned(), s(user_partition(user)));
            k.insert(GSI1SK.to_owned(), s(sk));
            let id = sk.rsplit('#').next().unwrap_or_default();
            k.insert(PK.to_owned(), s(event_pk(id)));
            k.insert(SK.to_owned(), s(EVENT_SK));
            k
        });
        let mut seen = 0usize;
        let mut last_sk: Option<String> = None;
        while seen < limit {
            let out = self
                .client
                .query()
                .table_name(self.events_table()?)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :u AND gsi1sk BETWEEN :a AND :b")
                .expression_attribute_values(":u", s(user_partition(user)))
                .expression_attribute_values(":a", s(&from))
                .expression_attribute_values(":b", s(&to))
                .limit((limit - seen).min(1000) as i32)
                .set_exclusive_start_key(next.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(sdk("Query events"))?;
            let units = out
                .consumed_capacity()
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0);
            let items = out.items.unwrap_or_default();
            self.charge_read(units, items.len());
            seen += items.len();
            last_sk = items
                .last()
                .and_then(|r| r.get("gsi1sk"))
                .and_then(|v| v.as_s().ok())
                .cloned()
                .or(last_sk);
            rows.extend(items.iter().filter_map(&convert));
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => next = Some(k),
                _ => return Ok((rows, None)),
            }
        }
        Ok((rows, last_sk))
    }
}
