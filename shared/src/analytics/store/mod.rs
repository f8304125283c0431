//! DynamoDB adapter for usage: raw events (EventsTable) and rollups (RollupsTable).
//!
//! Exactly-once: a chunk of events is written in ONE transaction — each raw event `Put` is
//! conditioned on its `event_id` being new, and the same transaction `ADD`s the chunk's sums to
//! the user's quarter-hour, hour and day rollups, a system-wide quarter, hour and day rollup (one of a few shards, so
//! concurrent writers do not all contend for one item) and the user's all-time totals. A
//! duplicate cancels the transaction with its reason; the duplicates are dropped and the rest is
//! written again. So a retry, a re-delivery, a concurrent writer or a crash between two calls
//! can never count an event twice, and an accepted event is always in its rollups.
//!
//! A rollup bucket is stored as its own item plus one item per model and per endpoint (see
//! `Rollup::part_of`), so an update never rewrites more than a few KB whatever the user's
//! dimensions: DynamoDB bills an update on the whole item's size. A quarter-hour bucket (`Q`
//! level, sort key `2026-11-22T10:15`) is its own item only — totals, providers, latency,
//! hours of day, payments — for periods whose edges fall off the hour (zones such as
//! Asia/Kolkata): one more small item per event and scope, never a model or endpoint item.

mod alert_history;
mod alert_rules;
mod anomalies;
mod budgets;
mod credit_alert;
pub mod erase;
pub mod events;
mod reads;
mod record;

pub use alert_history::AlertPage;
pub use alert_rules::{Registry, RuleBook, RuleUsersPage};
pub use budgets::BudgetBook;
pub use credit_alert::CreditStanding;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{Put, ReturnConsumedCapacity, Select, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::TryStreamExt;

use crate::analytics::attribution::TagKeys;
use crate::analytics::event::PaymentStatus;
use crate::analytics::event::{Detail, UsageEvent};
use crate::analytics::period::{day_key, hour_key, quarter_key, Cover};
use crate::analytics::rollup::Rollup;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::attrs::{num, s};
use crate::platform::dynamodb::error::{built, sdk};
use crate::platform::dynamodb::keys::{
    active_day_pk, event_pk, event_time_sk, rollup_bucket, rollup_part_sk, rollup_range_end,
    system_rollup_pk, user_partition, user_rollup_pk, user_totals_pk, EVENT_SK, GSI1, GSI1PK,
    GSI1SK, PK, SK, SYSTEM_ROLLUP_PREFIX, TOTALS_SK,
};
use crate::platform::dynamodb::paging;
use crate::platform::dynamodb::transact::{transact, transact_sized, Attempt, Retry, Tx};
use crate::platform::dynamodb::{units, Attrs, Item, StoreError};

/// DynamoDB's limit of actions per transaction.
const MAX_ACTIONS: usize = 100;
/// Counters one rollup update may `ADD`; keeps the expression well under its 4 KB limit.
const MAX_TERMS: usize = 220;
/// System-wide rollups are spread over this many items per bucket.
pub const SYSTEM_SHARDS: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Duplicate,
    /// Refused: the user's data is being erased.
    Erasing,
}

/// The attribute on a user's totals item that marks an erase in progress (its id).
pub const ERASING: &str = "erasing";

/// What DynamoDB charged, for logs and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// GetItem calls and Query pages.
    pub read_requests: usize,
    pub items_read: usize,
    pub read_units: f64,
    pub write_units: f64,
    pub transactions: usize,
    /// Transactions retried because another writer held one of their items.
    pub conflicts: usize,
}

/// What every store in this process has charged so far: for the benchmark and metrics.
pub struct ProcessStats {
    read_requests: AtomicU64,
    items_read: AtomicU64,
    read_milli_units: AtomicU64,
    write_milli_units: AtomicU64,
    conflicts: AtomicU64,
}

static PROCESS: ProcessStats = ProcessStats {
    read_requests: AtomicU64::new(0),
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
        self.read_requests.fetch_add(
            (after.read_requests - before.read_requests) as u64,
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

/// What all usage stores of this process have charged so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessCharges {
    pub read_requests: u64,
    pub items_read: u64,
    pub read_units: f64,
    pub write_units: f64,
}

pub fn process_stats() -> ProcessCharges {
    ProcessCharges {
        read_requests: PROCESS.read_requests.load(Ordering::Relaxed),
        items_read: PROCESS.items_read.load(Ordering::Relaxed),
        read_units: PROCESS.read_milli_units.load(Ordering::Relaxed) as f64 / 1000.0,
        write_units: PROCESS.write_milli_units.load(Ordering::Relaxed) as f64 / 1000.0,
    }
}

/// A user's all-time credits, kept exact by every ingest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CreditTotals {
    pub used: i64,
    pub purchased: i64,
    pub refunded: i64,
}

impl CreditTotals {
    /// The sums of the totals item, kept with `ADD`: one never added to is 0.
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let sum = |name: &str| -> Result<i64, StoreError> { Ok(item.opt_int(name)?.unwrap_or(0)) };
        Ok(CreditTotals {
            used: sum("cu")?,
            purchased: sum("cp")?,
            refunded: sum("cr")?,
        })
    }

    /// Credits left: purchased, less refunded, less used.
    pub fn balance(&self) -> i64 {
        self.purchased - self.refunded - self.used
    }
}

/// One user active on a day, with that day's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveUser {
    pub user_id: String,
    pub requests: i64,
    pub cost_micros: i64,
}

pub struct UsageStore {
    client: Client,
    /// Only the ingestion and the exports touch raw events; the other reads need no events table.
    events_table: Option<String>,
    /// The exports read raw events only.
    rollups_table: Option<String>,
    retention_days: u32,
    /// The tag keys ingestion rolls up (none unless [`Self::attributing`]).
    tag_keys: TagKeys,
    /// What ingest writes at the quarter-hour level (totals; other modes for the benchmark).
    quarters: QuarterLevel,
    stats: Mutex<Stats>,
}

/// What ingest keeps per quarter hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuarterLevel {
    /// Nothing: hours and days only (what was written before zones off the hour were served).
    Off,
    /// The bucket's own item: totals, providers, latency, hours of day, payments. The default.
    Totals,
    /// Also the model and endpoint items, as hours have them: what exact breakdowns at a
    /// partial-hour edge would cost (benchmark only; reads do not use them).
    Breakdowns,
}

/// Whose rollups to read.
#[derive(Clone, Debug)]
pub enum Scope {
    User(UserId),
    System,
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
            tag_keys: TagKeys::default(),
            quarters: QuarterLevel::Totals,
            stats: Mutex::new(Stats::default()),
        }
    }

    /// A store whose ingestion rolls usage up per value of the tag keys `keys` too.
    pub fn attributing(mut self, keys: &TagKeys) -> Self {
        self.tag_keys = keys.clone();
        self
    }

    /// A store whose ingest writes the quarter-hour level as `level`: only for the benchmark's
    /// figures of what that level costs per event (reads assume [`QuarterLevel::Totals`]).
    #[doc(hidden)]
    pub fn with_quarter_level(mut self, level: QuarterLevel) -> Self {
        self.quarters = level;
        self
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

    /// Counts a read: the units DynamoDB reports and the items it returned.
    fn charge_read(&self, units: f64, items: usize) {
        self.charge(|s| {
            s.read_units += units;
            s.items_read += items;
            s.read_requests += 1;
        });
    }

    fn ttl(&self, from: DateTime<Utc>) -> i64 {
        (from + Duration::days(i64::from(self.retention_days) + 1)).timestamp()
    }

    /// Commits a write conditioned on a version read (budgets, rules) under the retry policy:
    /// `true` once written, `false` when another writer moved the version first.
    async fn commit_versioned(
        &self,
        what: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        match crate::platform::dynamodb::transact::transact_retrying(&self.client, what, items)
            .await?
        {
            Tx::Committed { write_units } => {
                self.charge(|s| {
                    s.write_units += write_units;
                    s.transactions += 1;
                });
                Ok(true)
            }
            _ => Ok(false),
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
}
