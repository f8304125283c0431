//! Raw events for the exports, one page at a time.

use super::*;

/// One recorded request event, as the exports show it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    pub event_id: String,
    pub at: DateTime<Utc>,
    pub provider: String,
    pub model: String,
    pub endpoint: String,
    pub status_code: i64,
    pub latency_ms: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub credits: i64,
    pub cost_micros: i64,
    pub description: String,
    pub tags: BTreeMap<String, String>,
}

impl RequestRecord {
    /// The request event stored as `item`; `None` for a payment event.
    fn from_item(item: &Item) -> Result<Option<Self>, StoreError> {
        if item.string("kind")? != "request" {
            return Ok(None);
        }
        let ts = item.string("ts")?;
        let at = DateTime::parse_from_rfc3339(ts)
            .map_err(|_| StoreError::Corrupt(format!("ts is not a timestamp: {ts:?}")))?
            .with_timezone(&Utc);
        Ok(Some(RequestRecord {
            event_id: item.string("event_id")?.to_owned(),
            at,
            provider: item.string("provider")?.to_owned(),
            model: item.string("model")?.to_owned(),
            endpoint: item.string("endpoint")?.to_owned(),
            status_code: item.int("status_code")?,
            latency_ms: item.int("latency_ms")?,
            input_tokens: item.int("input_tokens")?,
            output_tokens: item.int("output_tokens")?,
            credits: item.int("credits")?,
            cost_micros: item.int("cost_micros")?,
            description: item
                .opt_string("description")?
                .unwrap_or_default()
                .to_owned(),
            tags: match item.opt_string("tags")? {
                None => BTreeMap::new(),
                Some(raw) => serde_json::from_str(raw)
                    .map_err(|e| StoreError::Corrupt(format!("tags: {e}")))?,
            },
        }))
    }
}

/// One page of a user's request events, and where the next page starts (`None` at the end).
pub struct EventsPage {
    pub rows: Vec<RequestRecord>,
    pub next: Option<String>,
}

impl UsageStore {
    /// One page of a user's raw events in [start, end), oldest first, after `after` (a
    /// position returned by the previous page).
    ///
    /// Each stored item becomes a row as soon as its DynamoDB page arrives and is then dropped,
    /// so memory holds one page of items, not the whole export page.
    pub async fn events_page(
        &self,
        user: &UserId,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<EventsPage, StoreError> {
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
            let units = units(out.consumed_capacity());
            let items = out.items.unwrap_or_default();
            self.charge_read(units, items.len());
            seen += items.len();
            if let Some(last) = items.last() {
                last_sk = Some(last.string(GSI1SK)?.to_owned());
            }
            for item in &items {
                rows.extend(RequestRecord::from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => next = Some(k),
                _ => return Ok(EventsPage { rows, next: None }),
            }
        }
        Ok(EventsPage {
            rows,
            next: last_sk,
        })
    }
}

impl UsageStore {
    /// One page of a user's raw events of every kind (requests and payments) as they are
    /// stored, oldest first, after the position `after`: the data export's page.
    pub async fn raw_events_page(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, Option<String>), StoreError> {
        // Every stored position sorts after " " (they start with a year).
        let out = self
            .client
            .query()
            .table_name(self.events_table()?)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :u AND gsi1sk > :after")
            .expression_attribute_values(":u", s(user_partition(user)))
            .expression_attribute_values(":after", s(after.unwrap_or(" ")))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(sdk("Query events to export"))?;
        let items = out.items.unwrap_or_default();
        let more = out.last_evaluated_key.is_some_and(|k| !k.is_empty());
        let mut rows = vec![];
        let mut last = None;
        for item in &items {
            last = Some(item.string(GSI1SK)?.to_owned());
            let mut row = serde_json::Map::new();
            for (name, value) in item {
                if [PK, SK, GSI1PK, GSI1SK, "expires_at"].contains(&name.as_str()) {
                    continue;
                }
                let v = if value.is_n() {
                    serde_json::json!(item.int(name)?)
                } else if name == "tags" {
                    serde_json::from_str(item.string(name)?)
                        .map_err(|e| StoreError::Corrupt(format!("tags: {e}")))?
                } else {
                    serde_json::json!(item.string(name)?)
                };
                row.insert(name.clone(), v);
            }
            rows.push(serde_json::Value::Object(row));
        }
        Ok((rows, if more { last } else { None }))
    }
}
