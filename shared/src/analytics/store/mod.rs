//! DynamoDB adapter for usage: raw events (EventsTable) and rollups (RollupsTable).
//!
//! Exactly-once: a chunk of events is written in ONE transaction — each raw event `Put` is
//! conditioned on its `event_id` being new, and the same transaction `ADD`s the chunk's sums to
//! the user's hour and day rollups, a system-wide hour and day rollup (one of a few shards, so
//! concurrent writers do not all contend for one item) and the user's all-time totals. A
//! duplicate cancels the transaction with its reason; the duplicates are dropped and the rest is
//! written again. So a retry, a re-delivery, a concurrent writer or a crash between two calls
//! can never count an event twice, and an accepted event is always in its rollups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnConsumedCapacity, Select, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::analytics::event::PaymentStatus;
use crate::analytics::event::{Detail, UsageEvent};
use crate::analytics::period::{day_key, hour_key, Cover};
use crate::analytics::rollup::Rollup;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::StoreError;

/// DynamoDB's limit of actions per transaction.
const MAX_ACTIONS: usize = 100;
/// Counters one rollup update may `ADD`; keeps the expression well under its 4 KB limit.
const MAX_TERMS: usize = 220;
/// System-wide rollups are spread over this many items per bucket.
pub const SYSTEM_SHARDS: u32 = 4;
const CONFLICT_RETRIES: u32 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
}

/// What DynamoDB charged, for logs and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub items_read: usize,
    pub read_units: f64,
    pub write_units: f64,
    pub transactions: usize,
    /// Transactions retried because another writer held one of their items.
    pub conflicts: usize,
}

/// What every store in this process has charged so far: for the benchmark and metrics.
pub struct ProcessStats {
    items_read: AtomicU64,
    read_milli_units: AtomicU64,
    write_milli_units: AtomicU64,
    conflicts: AtomicU64,
}

static PROCESS: ProcessStats = ProcessStats {
    items_read: AtomicU64::new(0),
    read_milli_units: AtomicU64::new(0),
    write_milli_units: AtomicU64::new(0),
    conflicts: AtomicU64::new(0),
};

impl ProcessStats {
    fn add(&self, before: &Stats, after: &Stats) {
        let milli = |x: f64| (x * 1000.0).round().max(0.0) as u64;
        self.conflicts.fetch_add(
            (after.conflicts - before.conflicts) as u64,
            Ordering::Relaxed,
        );
        self.items_read.fetch_add(
            (after.items_read - before.items_read) as u64,
            Ordering::Relaxed,
        );
        self.read_milli_units.fetch_add(
            milli(after.read_units - before.read_units),
            Ordering::Relaxed,
        );
        self.write_milli_units.fetch_add(
            milli(after.write_units - before.write_units),
            Ordering::Relaxed,
        );
    }
}

/// Transactions retried because of contention, by all usage stores of this process.
pub fn process_conflicts() -> u64 {
    PROCESS.conflicts.load(Ordering::Relaxed)
}

/// (items read, read units, write units) charged by all usage stores of this process.
pub fn process_stats() -> (u64, f64, f64) {
    (
        PROCESS.items_read.load(Ordering::Relaxed),
        PROCESS.read_milli_units.load(Ordering::Relaxed) as f64 / 1000.0,
        PROCESS.write_milli_units.load(Ordering::Relaxed) as f64 / 1000.0,
    )
}

pub struct UsageStore {
    client: Client,
    /// Only the ingestion and the exports touch raw events; the other reads need no events table.
    events_table: Option<String>,
    /// The exports read raw events only.
    rollups_table: Option<String>,
    retention_days: u32,
    stats: Mutex<Stats>,
}

/// Whose rollups to read.
#[derive(Clone, Debug)]
pub enum Scope {
    User(UserId),
    System,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RollupKey {
    pk: String,
    sk: String,
    /// Set on a user's day rollup: indexes it under the day for system-wide user counts.
    day_of_user: Option<(String, String)>,
    /// When DynamoDB's TTL may remove it.
    expires_at: i64,
}

#[derive(Default, Clone)]
struct Chunk {
    events: Vec<usize>,
    rollups: BTreeMap<RollupKey, Rollup>,
    /// Per user: (credits used, credits purchased, credits refunded).
    totals: BTreeMap<String, (i64, i64, i64)>,
}

fn dynamo_err<E, R>(what: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let detail = match e.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("?"),
            service.message().unwrap_or("")
        ),
        None => DisplayErrorContext(&e).to_string(),
    };
    StoreError::Dynamo(format!("{what}: {detail}"))
}

pub fn user_rollup_pk(user: &UserId, level: char) -> String {
    format!("USER#{user}#{level}")
}

fn system_rollup_pk(shard: u32, level: char) -> String {
    format!("ALL#{shard}#{level}")
}

fn event_pk(event_id: &str) -> String {
    format!("EVT#{event_id}")
}

fn events_of_user(user: &UserId) -> String {
    format!("USER#{user}")
}

/// Sort key of an event in the user's time index: fixed-width UTC time, then the id.
fn time_sk(ts: &DateTime<Utc>, event_id: &str) -> String {
    format!("{}#{event_id}", ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
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

impl UsageStore {
    pub fn new(
        client: Client,
        events_table: Option<&str>,
        rollups_table: Option<&str>,
        retention_days: u32,
    ) -> Self {
        UsageStore {
            client,
            events_table: events_table.map(str::to_owned),
            rollups_table: rollups_table.map(str::to_owned),
            retention_days,
            stats: Mutex::new(Stats::default()),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    fn charge(&self, f: impl FnOnce(&mut Stats)) {
        if let Ok(mut s) = self.stats.lock() {
            let before = *s;
            f(&mut s);
            PROCESS.add(&before, &s);
        }
    }

    fn ttl(&self, from: DateTime<Utc>) -> i64 {
        (from + Duration::days(i64::from(self.retention_days) + 1)).timestamp()
    }

    fn keys_for(&self, e: &UsageEvent, shard: u32) -> Vec<RollupKey> {
        let hour = e.timestamp.format("%Y-%m-%dT%H").to_string();
        let day = e.timestamp.date_naive();
        // Expiry from the bucket's start, so every event of a bucket agrees on it: one item,
        // one update per transaction.
        let day_start = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(e.timestamp);
        let hour_ttl =
            self.ttl(day_start + Duration::hours(i64::from(chrono::Timelike::hour(&e.timestamp))));
        let day_ttl = self.ttl(day_start);
        vec![
            RollupKey {
                pk: user_rollup_pk(&e.user_id, 'H'),
                sk: hour.clone(),
                day_of_user: None,
                expires_at: hour_ttl,
            },
            RollupKey {
                pk: user_rollup_pk(&e.user_id, 'D'),
                sk: day_key(day),
                day_of_user: Some((format!("DAY#{}", day_key(day)), e.user_id.to_string())),
                expires_at: day_ttl,
            },
            RollupKey {
                pk: system_rollup_pk(shard, 'H'),
                sk: hour,
                day_of_user: None,
                expires_at: hour_ttl,
            },
            RollupKey {
                pk: system_rollup_pk(shard, 'D'),
                sk: day_key(day),
                day_of_user: None,
                expires_at: day_ttl,
            },
        ]
    }

    fn add_to(&self, chunk: &mut Chunk, events: &[UsageEvent], i: usize, shard: u32) {
        let e = &events[i];
        chunk.events.push(i);
        for key in self.keys_for(e, shard) {
            let rollup = chunk.rollups.entry(key.clone()).or_default();
            if key.pk.starts_with("ALL#") {
                rollup.add_system(e);
            } else {
                rollup.add(e);
            }
        }
        let t = chunk.totals.entry(e.user_id.to_string()).or_default();
        match &e.detail {
            Detail::Request(r) => t.0 += r.credits,
            Detail::Payment(p) if p.status == PaymentStatus::Succeeded => t.1 += p.credits,
            Detail::Payment(p) if p.status == PaymentStatus::Refunded => t.2 += p.credits,
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
            let actions = trial.events.len() + trial.rollups.len() + trial.totals.len();
            let too_big = trial.rollups.values().any(|r| r.terms().len() > MAX_TERMS);
            if (actions > MAX_ACTIONS || too_big) && !current.events.is_empty() {
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
            let mut attempt = 0;
            while !pending.is_empty() {
                let shard = shard_of(&events[pending[0]].event_id);
                let mut chunk = Chunk::default();
                for i in &pending {
                    self.add_to(&mut chunk, events, *i, shard);
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
                    Err(WriteError::Conflict(why)) => {
                        attempt += 1;
                        self.charge(|s| s.conflicts += 1);
                        if attempt > CONFLICT_RETRIES {
                            return Err(StoreError::Dynamo(format!(
                                "transaction kept conflicting: {why}"
                            )));
                        }
                        let backoff =
                            10u64 * (1 << attempt.min(6)) + u64::from(shard_of(&why) % 10);
                        tokio::time::sleep(StdDuration::from_millis(backoff)).await;
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
        for (key, rollup) in &chunk.rollups {
            items.push(
                TransactWriteItem::builder()
                    .update(self.rollup_update(key, rollup)?)
                    .build(),
            );
        }
        for (user, (used, purchased, refunded)) in &chunk.totals {
            let update = Update::builder()
                .table_name(self.rollups_table()?)
                .key("pk", AttributeValue::S(format!("USER#{user}#TOTAL")))
                .key("sk", AttributeValue::S("ALL".into()))
                .update_expression("ADD cu :u, cp :p, cr :r")
                .expression_attribute_values(":u", AttributeValue::N(used.to_string()))
                .expression_attribute_values(":p", AttributeValue::N(purchased.to_string()))
                .expression_attribute_values(":r", AttributeValue::N(refunded.to_string()))
                .build()
                .map_err(|e| WriteError::Other(StoreError::Dynamo(e.to_string())))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                let units: f64 = out
                    .consumed_capacity()
                    .iter()
                    .filter_map(|c| c.capacity_units)
                    .sum();
                self.charge(|s| {
                    s.write_units += units;
                    s.transactions += 1;
                });
                Ok(())
            }
            Err(SdkError::ServiceError(ctx)) => match ctx.err() {
                TransactWriteItemsError::TransactionCanceledException(cancel) => {
                    let reasons = cancel.cancellation_reasons();
                    let duplicates: Vec<usize> = reasons
                        .iter()
                        .take(chunk.events.len())
                        .enumerate()
                        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                        .map(|(p, _)| p)
                        .collect();
                    if !duplicates.is_empty() {
                        Err(WriteError::Duplicates(duplicates))
                    } else {
                        let codes: Vec<&str> = reasons
                            .iter()
                            .filter_map(|r| r.code())
                            .filter(|c| *c != "None")
                            .collect();
                        Err(WriteError::Conflict(codes.join(",")))
                    }
                }
                TransactWriteItemsError::TransactionInProgressException(_)
                | TransactWriteItemsError::ProvisionedThroughputExceededException(_)
                | TransactWriteItemsError::RequestLimitExceeded(_)
                | TransactWriteItemsError::ThrottlingException(_)
                | TransactWriteItemsError::InternalServerError(_) => {
                    Err(WriteError::Conflict(ctx.err().to_string()))
                }
                other => Err(WriteError::Other(StoreError::Dynamo(format!(
                    "TransactWriteItems: {}: {}",
                    aws_sdk_dynamodb::error::ProvideErrorMetadata::code(other).unwrap_or("?"),
                    aws_sdk_dynamodb::error::ProvideErrorMetadata::message(other).unwrap_or("")
                )))),
            },
            Err(e) => Err(WriteError::Other(dynamo_err("TransactWriteItems", e))),
        }
    }

    fn rollups_table(&self) -> Result<&str, StoreError> {
        self.rollups_table.as_deref().ok_or_else(|| {
            StoreError::Config(crate::platform::config::ConfigError(
                "ROLLUPS_TABLE is not set in this function's environment".into(),
            ))
        })
    }

    fn events_table(&self) -> Result<&str, StoreError> {
        self.events_table.as_deref().ok_or_else(|| {
            StoreError::Config(crate::platform::config::ConfigError(
                "EVENTS_TABLE is not set in this function's environment".into(),
            ))
        })
    }

    fn event_put(&self, e: &UsageEvent) -> Result<Put, WriteError> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let n = |v: i64| AttributeValue::N(v.to_string());
        let mut put = Put::builder()
            .table_name(self.events_table()?)
            .item("pk", s(&event_pk(&e.event_id)))
            .item("sk", s("EVT"))
            .item("gsi1pk", s(&events_of_user(&e.user_id)))
            .item("gsi1sk", s(&time_sk(&e.timestamp, &e.event_id)))
            .item("event_id", s(&e.event_id))
            .item("user_id", s(e.user_id.as_str()))
            .item("ts", s(&e.timestamp.to_rfc3339()))
            .item("expires_at", n(self.ttl(e.timestamp)))
            .condition_expression("attribute_not_exists(pk)");
        match &e.detail {
            Detail::Request(r) => {
                put = put
                    .item("kind", s("request"))
                    .item("provider", s(&r.provider))
                    .item("model", s(&r.model))
                    .item("endpoint", s(&r.endpoint))
                    .item("status_code", n(i64::from(r.status_code)))
                    .item("latency_ms", n(i64::from(r.latency_ms)))
                    .item("input_tokens", n(r.input_tokens))
                    .item("output_tokens", n(r.output_tokens))
                    .item("credits", n(r.credits))
                    .item("cost_micros", n(r.cost_micros));
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
                    .item("amount_micros", n(p.amount_micros))
                    .item("credits", n(p.credits));
            }
        }
        if let Some(d) = &e.description {
            put = put.item("description", s(d));
        }
        if !e.tags.is_empty() {
            put = put.item(
                "tags",
                s(&serde_json::to_string(&e.tags).unwrap_or_default()),
            );
        }
        put.build()
            .map_err(|e| WriteError::Other(StoreError::Dynamo(e.to_string())))
    }

    fn rollup_update(&self, key: &RollupKey, rollup: &Rollup) -> Result<Update, WriteError> {
        let mut adds = vec![];
        let mut update = Update::builder()
            .table_name(self.rollups_table()?)
            .key("pk", AttributeValue::S(key.pk.clone()))
            .key("sk", AttributeValue::S(key.sk.clone()));
        for (i, (name, value)) in rollup.terms().into_iter().enumerate() {
            adds.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(
                    format!(":a{i}"),
                    AttributeValue::N(value.to_string()),
                );
        }
        let mut sets = vec!["expires_at = :ttl".to_owned()];
        update = update
            .expression_attribute_values(":ttl", AttributeValue::N(key.expires_at.to_string()));
        if let Some((day, user)) = &key.day_of_user {
            sets.push("gsi1pk = :g".into());
            sets.push("gsi1sk = :u".into());
            sets.push("user_id = :u".into());
            update = update
                .expression_attribute_values(":g", AttributeValue::S(day.clone()))
                .expression_attribute_values(":u", AttributeValue::S(user.clone()));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !adds.is_empty() {
            expression.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        update
            .update_expression(expression)
            .build()
            .map_err(|e| WriteError::Other(StoreError::Dynamo(e.to_string())))
    }

    /// The rollups covering `cover` for `scope`, keyed by their sort key (`2026-11-22` or
    /// `2026-11-22T10`). Reads one Query per contiguous run of keys, so the items read depend
    /// on the period, never on how many events it holds.
    pub async fn rollups(
        &self,
        scope: &Scope,
        cover: &Cover,
    ) -> Result<BTreeMap<String, Rollup>, StoreError> {
        let mut runs: Vec<(char, String, String)> = vec![];
        if let (Some(first), Some(last)) = (cover.days.first(), cover.days.last()) {
            runs.push(('D', day_key(*first), day_key(*last)));
        }
        let mut hours = cover.hours.clone();
        hours.sort();
        let mut i = 0;
        while i < hours.len() {
            let mut j = i;
            while j + 1 < hours.len() && hours[j + 1] - hours[j] == Duration::hours(1) {
                j += 1;
            }
            runs.push(('H', hour_key(hours[i]), hour_key(hours[j])));
            i = j + 1;
        }
        let wanted_days: BTreeSet<String> = cover.days.iter().map(|d| day_key(*d)).collect();
        let mut out: BTreeMap<String, Rollup> = BTreeMap::new();
        let partitions: Vec<(String, char)> = runs
            .iter()
            .map(|r| r.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .flat_map(|level| match scope {
                Scope::User(u) => vec![(user_rollup_pk(u, level), level)],
                Scope::System => (0..SYSTEM_SHARDS)
                    .map(|s| (system_rollup_pk(s, level), level))
                    .collect(),
            })
            .collect();
        for (level, from, to) in &runs {
            for (pk, l) in &partitions {
                if l != level {
                    continue;
                }
                for item in self
                    .query_range(self.rollups_table()?, pk, from, to)
                    .await?
                {
                    let Some(sk) = item.get("sk").and_then(|v| v.as_s().ok()).cloned() else {
                        continue;
                    };
                    // A day Query spans first..last; keep only the days the cover asked for.
                    if *level == 'D' && !wanted_days.contains(&sk) {
                        continue;
                    }
                    let rollup = Rollup::from_terms(item.iter().filter_map(|(k, v)| {
                        let n = v.as_n().ok()?.parse::<i64>().ok()?;
                        Some((k.as_str(), n))
                    }));
                    out.entry(sk).or_default().merge(&rollup);
                }
            }
        }
        Ok(out)
    }

    async fn query_range(
        &self,
        table: &str,
        pk: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = vec![];
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
                .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
                .expression_attribute_values(":a", AttributeValue::S(from.to_owned()))
                .expression_attribute_values(":b", AttributeValue::S(to.to_owned()))
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| dynamo_err("Query rollups", e))?;
            let units = out
                .consumed_capacity()
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0);
            let page = out.items.unwrap_or_default();
            self.charge(|s| {
                s.read_units += units;
                s.items_read += page.len();
            });
            items.extend(page);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// The user's all-time credits: (used, purchased, refunded).
    pub async fn credit_totals(&self, user: &UserId) -> Result<(i64, i64, i64), StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.rollups_table()?)
            .key("pk", AttributeValue::S(format!("USER#{user}#TOTAL")))
            .key("sk", AttributeValue::S("ALL".into()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| dynamo_err("GetItem totals", e))?;
        let units = out
            .consumed_capacity()
            .and_then(|c| c.capacity_units)
            .unwrap_or(0.0);
        self.charge(|s| {
            s.read_units += units;
            s.items_read += usize::from(out.item.is_some());
        });
        let get = |k: &str| {
            out.item
                .as_ref()
                .and_then(|i| i.get(k))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
        };
        Ok((get("cu"), get("cp"), get("cr")))
    }

    /// Users with activity on each UTC day, with their (requests, cost micros) that day.
    pub async fn active_users(
        &self,
        days: &[NaiveDate],
    ) -> Result<BTreeMap<NaiveDate, Vec<(String, i64, i64)>>, StoreError> {
        let mut out = BTreeMap::new();
        for day in days {
            let mut users = vec![];
            let mut start = None;
            loop {
                let page = self
                    .client
                    .query()
                    .table_name(self.rollups_table()?)
                    .index_name("gsi1")
                    .key_condition_expression("gsi1pk = :d")
                    .expression_attribute_values(
                        ":d",
                        AttributeValue::S(format!("DAY#{}", day_key(*day))),
                    )
                    .select(Select::AllProjectedAttributes)
                    .set_exclusive_start_key(start)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| dynamo_err("Query active users", e))?;
                let units = page
                    .consumed_capacity()
                    .and_then(|c| c.capacity_units)
                    .unwrap_or(0.0);
                let items = page.items.unwrap_or_default();
                self.charge(|s| {
                    s.read_units += units;
                    s.items_read += items.len();
                });
                for item in items {
                    let num = |k: &str| {
                        item.get(k)
                            .and_then(|v| v.as_n().ok())
                            .and_then(|n| n.parse::<i64>().ok())
                            .unwrap_or(0)
                    };
                    if let Some(user) = item.get("user_id").and_then(|v| v.as_s().ok()) {
                        users.push((user.clone(), num("T|r"), num("T|u")));
                    }
                }
                match page.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
            out.insert(*day, users);
        }
        Ok(out)
    }

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
        convert: impl Fn(&HashMap<String, AttributeValue>) -> Option<T>,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let from = after
            .map(str::to_owned)
            .unwrap_or_else(|| time_sk(&start, ""));
        // `~` sorts after every id character, so the upper bound excludes `end` itself.
        let to = time_sk(&(end - Duration::milliseconds(1)), "~");
        let mut rows = vec![];
        let mut next: Option<HashMap<String, AttributeValue>> = after.map(|sk| {
            let mut k = HashMap::new();
            k.insert("gsi1pk".to_owned(), AttributeValue::S(events_of_user(user)));
            k.insert("gsi1sk".to_owned(), AttributeValue::S(sk.to_owned()));
            let id = sk.rsplit('#').next().unwrap_or_default();
            k.insert("pk".to_owned(), AttributeValue::S(event_pk(id)));
            k.insert("sk".to_owned(), AttributeValue::S("EVT".into()));
            k
        });
        let mut seen = 0usize;
        let mut last_sk: Option<String> = None;
        while seen < limit {
            let out = self
                .client
                .query()
                .table_name(self.events_table()?)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :u AND gsi1sk BETWEEN :a AND :b")
                .expression_attribute_values(":u", AttributeValue::S(events_of_user(user)))
                .expression_attribute_values(":a", AttributeValue::S(from.clone()))
                .expression_attribute_values(":b", AttributeValue::S(to.clone()))
                .limit((limit - seen).min(1000) as i32)
                .set_exclusive_start_key(next.take())
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
                .map_err(|e| dynamo_err("Query events", e))?;
            let units = out
                .consumed_capacity()
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0);
            let items = out.items.unwrap_or_default();
            self.charge(|s| {
                s.read_units += units;
                s.items_read += items.len();
            });
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

enum WriteError {
    /// Positions (within the chunk's events) whose id was already recorded.
    Duplicates(Vec<usize>),
    /// Contention or throttling: try again.
    Conflict(String),
    Other(StoreError),
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Other(e)
    }
}
