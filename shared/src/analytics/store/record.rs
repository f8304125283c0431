//! Recording events exactly once: chunks of events, each ONE transaction of the raw-event puts
//! (conditioned on their ids) and the `ADD`s to every rollup they touch (see the module notes).

use super::*;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RollupKey {
    pk: String,
    sk: String,
    /// Set on a user's day rollup: indexes it under the day for system-wide user counts.
    day_of_user: Option<(String, String)>,
    /// When DynamoDB's TTL may remove it.
    expires_at: i64,
    /// A quarter-hour bucket: its own item only, no model or endpoint items.
    own_only: bool,
}

/// A user's model, whose rollup items have no room left for more tag values today.
type Full = (String, String, String);

fn full_of(e: &UsageEvent) -> Option<Full> {
    match &e.detail {
        Detail::Request(r) => Some((e.user_id.to_string(), r.provider.clone(), r.model.clone())),
        Detail::Payment(_) => None,
    }
}

#[derive(Default, Clone)]
struct Chunk {
    events: Vec<usize>,
    rollups: BTreeMap<RollupKey, Rollup>,
    /// Per user: the chunk's change to their all-time credits.
    totals: BTreeMap<String, CreditTotals>,
}

/// A rollup as it is stored: the counters of each item of its bucket (see [`Rollup::part_of`]);
/// a quarter-hour bucket keeps its own item only.
fn stored_parts(key: &RollupKey, rollup: &Rollup) -> BTreeMap<Option<String>, Vec<(String, i64)>> {
    let mut parts: BTreeMap<Option<String>, Vec<(String, i64)>> = BTreeMap::new();
    for (name, value) in rollup.terms() {
        let part = Rollup::part_of(&name);
        if key.own_only && part.is_some() {
            continue;
        }
        parts
            .entry(part)
            .or_default()
            .push((Rollup::stored_name(&name), value));
    }
    parts
}

impl Chunk {
    /// Transaction actions: the event puts, one update per stored rollup item, the totals.
    fn actions(&self) -> usize {
        let rollup_items: usize = self
            .rollups
            .iter()
            .map(|(k, r)| stored_parts(k, r).len())
            .sum();
        self.events.len() + rollup_items + self.totals.len()
    }

    /// Whether one item's update would exceed what one expression may carry.
    fn too_big(&self) -> bool {
        self.rollups.iter().any(|(k, r)| {
            stored_parts(k, r)
                .values()
                .any(|terms| terms.len() > MAX_TERMS)
        })
    }
}

fn shard_of(event_id: &str) -> u32 {
    // FNV-1a: stable across processes, so a retried chunk hits the same shard.
    let mut h: u32 = 0x811c_9dc5;
    for b in event_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SYSTEM_SHARDS
}

enum WriteError {
    /// Positions (within the chunk's events) whose id was already recorded.
    Duplicates(Vec<usize>),
    /// Users whose data is being erased: their events are refused until the erase is done.
    Erasing(Vec<String>),
    /// Contention or throttling: try again.
    Conflict(String),
    /// These rollup items (bucket, item) would outgrow 400 KB: nothing was written.
    TooLarge(Vec<(RollupKey, Option<String>)>),
    Other(StoreError),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Other(e)
    }
}

impl UsageStore {
    fn keys_for(&self, e: &UsageEvent, shard: u32) -> Vec<RollupKey> {
        let hour = e.timestamp.format("%Y-%m-%dT%H").to_string();
        let day = e.timestamp.date_naive();
        // Expiry from the bucket's start, so every event of a bucket agrees on it: one item,
        // one update per transaction.
        let day_start = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(e.timestamp);
        let hour_start =
            day_start + Duration::hours(i64::from(chrono::Timelike::hour(&e.timestamp)));
        let quarter_start = hour_start
            + Duration::minutes(i64::from(chrono::Timelike::minute(&e.timestamp) / 15 * 15));
        let hour_ttl = self.ttl(hour_start);
        let day_ttl = self.ttl(day_start);
        let key = |pk: String, sk: String, expires_at: i64| RollupKey {
            pk,
            sk,
            day_of_user: None,
            expires_at,
            own_only: false,
        };
        let mut keys = vec![
            key(user_rollup_pk(&e.user_id, 'H'), hour.clone(), hour_ttl),
            RollupKey {
                day_of_user: Some((active_day_pk(&day_key(day)), e.user_id.to_string())),
                ..key(user_rollup_pk(&e.user_id, 'D'), day_key(day), day_ttl)
            },
            key(system_rollup_pk(shard, 'H'), hour, hour_ttl),
            key(system_rollup_pk(shard, 'D'), day_key(day), day_ttl),
        ];
        if self.quarters != QuarterLevel::Off {
            // Kept as long as the hours: a period off the hour may lie months back.
            let quarter = quarter_key(quarter_start);
            let ttl = self.ttl(quarter_start);
            for pk in [
                user_rollup_pk(&e.user_id, 'Q'),
                system_rollup_pk(shard, 'Q'),
            ] {
                keys.push(RollupKey {
                    own_only: self.quarters == QuarterLevel::Totals,
                    ..key(pk, quarter.clone(), ttl)
                });
            }
        }
        keys
    }

    fn add_to(&self, chunk: &mut Chunk, events: &[UsageEvent], i: usize, shard: u32) {
        self.add_counting(chunk, events, i, shard, &BTreeSet::new());
    }

    /// Adds event `i` to `chunk`, with its tags unless its model's items are `full`.
    fn add_counting(
        &self,
        chunk: &mut Chunk,
        events: &[UsageEvent],
        i: usize,
        shard: u32,
        full: &BTreeSet<Full>,
    ) {
        let e = &events[i];
        chunk.events.push(i);
        let untagged = TagKeys::default();
        let keys = match full_of(e) {
            Some(f) if full.contains(&f) => &untagged,
            _ => &self.tag_keys,
        };
        for key in self.keys_for(e, shard) {
            let rollup = chunk.rollups.entry(key.clone()).or_default();
            if key.pk.starts_with(SYSTEM_ROLLUP_PREFIX) {
                rollup.add_system(e);
            } else {
                rollup.add_attributed(e, keys);
            }
        }
        let t = chunk.totals.entry(e.user_id.to_string()).or_default();
        match &e.detail {
            Detail::Request(r) => t.used += r.credits,
            Detail::Payment(p) if p.status == PaymentStatus::Succeeded => t.purchased += p.credits,
            Detail::Payment(p) if p.status == PaymentStatus::Refunded => t.refunded += p.credits,
            Detail::Payment(_) => {}
        }
    }

    /// Cuts events (already free of in-batch duplicates) into transactions within DynamoDB's limits.
    fn chunks(&self, events: &[UsageEvent], indices: &[usize]) -> Vec<Chunk> {
        let mut order: Vec<usize> = indices.to_vec();
        // Events of one user and hour together share their rollup updates.
        order.sort_by(|a, b| {
            (&events[*a].user_id, events[*a].timestamp)
                .cmp(&(&events[*b].user_id, events[*b].timestamp))
        });
        let mut chunks = vec![];
        let mut current = Chunk::default();
        let mut shard = order
            .first()
            .map(|i| shard_of(&events[*i].event_id))
            .unwrap_or(0);
        for i in order {
            let mut trial = current.clone();
            self.add_to(&mut trial, events, i, shard);
            if (trial.actions() > MAX_ACTIONS || trial.too_big()) && !current.events.is_empty() {
                chunks.push(std::mem::take(&mut current));
                shard = shard_of(&events[i].event_id);
                self.add_to(&mut current, events, i, shard);
            } else {
                current = trial;
            }
        }
        if !current.events.is_empty() {
            chunks.push(current);
        }
        chunks
    }

    /// Records `events` exactly once each; returns an outcome per event, in order.
    pub async fn record(&self, events: &[UsageEvent]) -> Result<Vec<Outcome>, StoreError> {
        let mut outcomes = vec![Outcome::Accepted; events.len()];
        let mut seen = BTreeSet::new();
        let mut fresh = vec![];
        for (i, e) in events.iter().enumerate() {
            if seen.insert(e.event_id.as_str()) {
                fresh.push(i);
            } else {
                outcomes[i] = Outcome::Duplicate;
            }
        }
        for chunk in self.chunks(events, &fresh) {
            let mut pending = chunk.events.clone();
            let mut retry = Retry::new("recording usage events");
            let mut full = BTreeSet::new();
            while !pending.is_empty() {
                let shard = shard_of(&events[pending[0]].event_id);
                let mut chunk = Chunk::default();
                for i in &pending {
                    self.add_counting(&mut chunk, events, *i, shard, &full);
                }
                match self.write(events, &chunk).await {
                    Ok(()) => break,
                    Err(WriteError::Duplicates(positions)) => {
                        for p in &positions {
                            outcomes[chunk.events[*p]] = Outcome::Duplicate;
                        }
                        let dropped: BTreeSet<usize> =
                            positions.iter().map(|p| chunk.events[*p]).collect();
                        pending.retain(|i| !dropped.contains(i));
                    }
                    Err(WriteError::Erasing(users)) => {
                        let refused: BTreeSet<usize> = pending
                            .iter()
                            .copied()
                            .filter(|i| users.iter().any(|u| u == events[*i].user_id.as_str()))
                            .collect();
                        for i in &refused {
                            outcomes[*i] = Outcome::Erasing;
                        }
                        pending.retain(|i| !refused.contains(i));
                    }
                    Err(WriteError::Conflict(why)) => {
                        self.charge(|s| s.conflicts += 1);
                        tracing::debug!(why, "usage transaction retried");
                        retry.pause().await?;
                    }
                    Err(WriteError::TooLarge(items)) => {
                        // A model item holds every value of every attributed tag of its bucket;
                        // one that reached 400 KB (a key of too many values) takes no more. The
                        // events of that user's model are counted without their tags rather
                        // than refused: totals stay exact, their values read as `untagged`.
                        let before = full.len();
                        for i in &pending {
                            let e = &events[*i];
                            let Some(f) = full_of(e) else { continue };
                            let part = Some(format!("M#{}|{}", f.1, f.2));
                            let fills = self
                                .keys_for(e, shard)
                                .into_iter()
                                .any(|k| items.iter().any(|(key, p)| *key == k && *p == part));
                            if fills {
                                full.insert(f);
                            }
                        }
                        if full.len() == before {
                            return Err(StoreError::Dynamo(
                                "a rollup item would exceed the 400 KB item limit".into(),
                            ));
                        }
                        for (user, provider, model) in full.iter() {
                            tracing::warn!(user, provider, model,
                                "tag attribution skipped: the model's rollup item is full (an attributed tag key with too many values)");
                        }
                    }
                    Err(WriteError::Other(e)) => return Err(e),
                }
            }
        }
        Ok(outcomes)
    }

    async fn write(&self, events: &[UsageEvent], chunk: &Chunk) -> Result<(), WriteError> {
        let mut items = Vec::with_capacity(MAX_ACTIONS);
        for i in &chunk.events {
            items.push(
                TransactWriteItem::builder()
                    .put(self.event_put(&events[*i])?)
                    .build(),
            );
        }
        let rollups_from = items.len();
        let mut parts = vec![];
        for (key, rollup) in &chunk.rollups {
            for (part, terms) in stored_parts(key, rollup) {
                parts.push((key.clone(), part.clone()));
                items.push(
                    TransactWriteItem::builder()
                        .update(self.rollup_update(key, part.as_deref(), &terms)?)
                        .build(),
                );
            }
        }
        let totals_from = items.len();
        for (user, t) in &chunk.totals {
            // The erase of a user's data marks their totals item first; nothing is added to a
            // user while their data is being taken apart (see `store::erase`).
            let update = built(
                Update::builder()
                    .table_name(self.rollups_table()?)
                    .key(PK, s(user_totals_pk(user)))
                    .key(SK, s(TOTALS_SK))
                    .condition_expression("attribute_not_exists(#erasing)")
                    .expression_attribute_names("#erasing", ERASING)
                    .update_expression("ADD cu :u, cp :p, cr :r")
                    .expression_attribute_values(":u", num(t.used))
                    .expression_attribute_values(":p", num(t.purchased))
                    .expression_attribute_values(":r", num(t.refunded))
                    .build(),
            )?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let tx = match transact_sized(&self.client, items).await? {
            Attempt::Done(tx) => tx,
            Attempt::TooLarge(flags) => {
                return Err(WriteError::TooLarge(
                    parts
                        .into_iter()
                        .enumerate()
                        .filter(|(k, _)| Tx::failed(&flags, rollups_from + k))
                        .map(|(_, p)| p)
                        .collect(),
                ))
            }
        };
        match tx {
            Tx::Committed { write_units } => {
                self.charge(|s| {
                    s.write_units += write_units;
                    s.transactions += 1;
                });
                Ok(())
            }
            // The event puts come first: a failed condition there is an id recorded already.
            Tx::ConditionsFailed(failed) => {
                let duplicates: Vec<usize> = (0..chunk.events.len())
                    .filter(|p| Tx::failed(&failed, *p))
                    .collect();
                let erasing: Vec<String> = chunk
                    .totals
                    .keys()
                    .enumerate()
                    .filter(|(k, _)| Tx::failed(&failed, totals_from + k))
                    .map(|(_, u)| u.clone())
                    .collect();
                if !erasing.is_empty() {
                    Err(WriteError::Erasing(erasing))
                } else if duplicates.is_empty() {
                    Err(WriteError::Other(StoreError::Dynamo(
                        "a rollup update's condition failed".into(),
                    )))
                } else {
                    Err(WriteError::Duplicates(duplicates))
                }
            }
            Tx::Retry(why) => Err(WriteError::Conflict(why)),
        }
    }

    fn event_put(&self, e: &UsageEvent) -> Result<Put, WriteError> {
        let mut put = Put::builder()
            .table_name(self.events_table()?)
            .item(PK, s(event_pk(&e.event_id)))
            .item(SK, s(EVENT_SK))
            .item(GSI1PK, s(user_partition(&e.user_id)))
            .item(GSI1SK, s(event_time_sk(&e.timestamp, &e.event_id)))
            .item("event_id", s(&e.event_id))
            .item("user_id", s(e.user_id.as_str()))
            .item("ts", s(e.timestamp.to_rfc3339()))
            .item("expires_at", num(self.ttl(e.timestamp)))
            .condition_expression("attribute_not_exists(pk)");
        match &e.detail {
            Detail::Request(r) => {
                put = put
                    .item("kind", s("request"))
                    .item("provider", s(&r.provider))
                    .item("model", s(&r.model))
                    .item("endpoint", s(&r.endpoint))
                    .item("status_code", num(i64::from(r.status_code)))
                    .item("latency_ms", num(i64::from(r.latency_ms)))
                    .item("input_tokens", num(r.input_tokens))
                    .item("output_tokens", num(r.output_tokens))
                    .item("credits", num(r.credits))
                    .item("cost_micros", num(r.cost_micros));
            }
            Detail::Payment(p) => {
                let status = match p.status {
                    PaymentStatus::Succeeded => "succeeded",
                    PaymentStatus::Failed => "failed",
                    PaymentStatus::Refunded => "refunded",
                };
                put = put
                    .item("kind", s("payment"))
                    .item("status", s(status))
                    .item("amount_micros", num(p.amount_micros))
                    .item("credits", num(p.credits));
            }
        }
        if let Some(d) = &e.description {
            put = put.item("description", s(d));
        }
        if !e.tags.is_empty() {
            let tags = serde_json::to_string(&e.tags)
                .map_err(|e| StoreError::Dynamo(format!("encoding tags: {e}")))?;
            put = put.item("tags", s(tags));
        }
        Ok(built(put.build())?)
    }

    /// The `ADD` of `terms` to one stored item of the rollup `key`: its bucket's own item
    /// (`part` is `None`), or the item of one model or endpoint.
    fn rollup_update(
        &self,
        key: &RollupKey,
        part: Option<&str>,
        terms: &[(String, i64)],
    ) -> Result<Update, WriteError> {
        let mut adds = vec![];
        let mut update = Update::builder()
            .table_name(self.rollups_table()?)
            .key(PK, s(&key.pk))
            .key(SK, s(rollup_part_sk(&key.sk, part)));
        for (i, (name, value)) in terms.iter().enumerate() {
            adds.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), num(*value));
        }
        let mut sets = vec!["expires_at = :ttl".to_owned()];
        update = update.expression_attribute_values(":ttl", num(key.expires_at));
        // Only the bucket's own item joins the day index of active users.
        if let (Some((day, user)), None) = (&key.day_of_user, part) {
            sets.push("gsi1pk = :g".into());
            sets.push("gsi1sk = :u".into());
            sets.push("user_id = :u".into());
            update = update
                .expression_attribute_values(":g", s(day))
                .expression_attribute_values(":u", s(user));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !adds.is_empty() {
            expression.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        Ok(built(update.update_expression(expression).build())?)
    }
}
