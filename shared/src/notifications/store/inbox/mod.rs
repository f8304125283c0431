//! The NotificationsTable: a user's inbox, its counters and job idempotency records.
//!
//! Layout (partition `USER#<user>`):
//! - `NOTIF#<uuid v7>`: one notification. Ids increase per user (see below), so the sort key
//!   orders the inbox and `ScanIndexForward=false` reads it newest first. While unread it also
//!   carries `gsi1pk = UNREAD#<user>`, `gsi1sk = NOTIF#<id>`: a sparse index of unread items.
//! - `COUNTERS`: `unread`, `total`, `unread_<type>`, `total_<type>`; `last_sk`, the newest
//!   notification's sort key; `read_before` and `read_all_at`, the read-all watermark.
//! - `JOB#<job_id>`: which notification a job created for this user, so a job delivered twice
//!   notifies once.
//!
//! Exact counting: every change of an item's read state or existence is one transaction with
//! the matching counter change, conditioned on the state it read; a lost race re-reads and
//! tries again, so the counters never drift.
//!
//! Read-all is one conditional update of the counters item, whatever the inbox size: it sets
//! `read_before = last_sk` and the unread counters to 0. Every notification at or below the
//! watermark counts as read (reads derive `is_read`/`read_at` from it), and inserts keep ids
//! above `last_sk` (a condition of the insert transaction), so a notification created during a
//! read-all is either under the watermark and counted out, or above it and still unread. After
//! the update, the read-all also writes `is_read` onto the items it covered, within a time
//! budget; whatever it leaves is correct already and is tidied by the next read-all or
//! mark-read.

mod counters;
mod expiry;
mod jobs;
mod listing;
mod read_all;
mod writes;

pub use expiry::Expiry;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use uuid::Uuid;

use crate::notifications::jobs::JobId;
use crate::notifications::notification::{Notification, NotificationType};
use crate::platform::domain::UserId;
use crate::platform::dynamodb::attrs::{flag, num, s, time};
use crate::platform::dynamodb::error::{
    built, conditional, is_condition_failed, is_retryable, sdk,
};
use crate::platform::dynamodb::keys::{
    job_sk, notification_sk, unread_partition, user_partition, COUNTERS_SK, GSI1, GSI1PK, GSI1SK,
    NOTIF_PREFIX, PK, SK, UNREAD_ATTR,
};
use crate::platform::dynamodb::paging;
use crate::platform::dynamodb::transact::{transact, Retry, Tx};
use crate::platform::dynamodb::{Attrs, Item, StoreError, Table};

const TOTAL_ATTR: &str = "total";
const LAST_ATTR: &str = "last_sk";
const READ_BEFORE_ATTR: &str = "read_before";
const READ_ALL_AT_ATTR: &str = "read_all_at";
/// Highest sort key of any notification (`~` sorts after every hex digit).
const NOTIF_END: &str = "NOTIF#~";
/// How long the writer of a job's notification has to enqueue its email and webhooks before a
/// repeat of the job may take over: longer than the dispatcher's timeout (30 s), shorter than
/// the queue's visibility timeout (60 s), so a retry after a crash finds it expired.
pub const FAN_OUT_LEASE_SECONDS: i64 = 45;
/// How long a read-all spends writing `is_read` onto the items it covered.
const MATERIALIZE_BUDGET: Duration = Duration::from_millis(1_500);

fn unread_of(kind: NotificationType) -> String {
    format!("{UNREAD_ATTR}_{}", kind.as_str())
}

fn total_of(kind: NotificationType) -> String {
    format!("{TOTAL_ATTR}_{}", kind.as_str())
}

/// The counters item of one user.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    pub unread: u64,
    pub total: u64,
    pub unread_by_type: HashMap<NotificationType, u64>,
    pub total_by_type: HashMap<NotificationType, u64>,
    pub last_sk: Option<String>,
    pub read_before: Option<String>,
    pub read_all_at: Option<DateTime<Utc>>,
}

impl Counters {
    /// Whether the read-all watermark covers the notification with sort key `sk`.
    pub fn covers(&self, sk: &str) -> bool {
        self.read_before.as_deref().is_some_and(|w| sk <= w)
    }

    /// Notifications matching the list filters, exactly.
    pub fn matching(&self, is_read: Option<bool>, kind: Option<NotificationType>) -> u64 {
        let (total, unread) = match kind {
            None => (self.total, self.unread),
            Some(k) => (
                self.total_by_type.get(&k).copied().unwrap_or(0),
                self.unread_by_type.get(&k).copied().unwrap_or(0),
            ),
        };
        match is_read {
            None => total,
            Some(false) => unread,
            Some(true) => total.saturating_sub(unread),
        }
    }

    fn from_item(item: &Item) -> Result<Self, StoreError> {
        let mut c = Counters {
            unread: item.counter(UNREAD_ATTR)?,
            total: item.counter(TOTAL_ATTR)?,
            last_sk: item.opt_string(LAST_ATTR)?.map(str::to_owned),
            read_before: item.opt_string(READ_BEFORE_ATTR)?.map(str::to_owned),
            read_all_at: item.opt_time(READ_ALL_AT_ATTR)?,
            ..Counters::default()
        };
        for &kind in NotificationType::ALL {
            c.unread_by_type
                .insert(kind, item.counter(&unread_of(kind))?);
            c.total_by_type.insert(kind, item.counter(&total_of(kind))?);
        }
        Ok(c)
    }
}

/// Filters and position of one inbox page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    pub is_read: Option<bool>,
    pub kind: Option<NotificationType>,
    pub limit: usize,
    pub offset: usize,
    /// Start after this notification (the cursor's position).
    pub after: Option<Uuid>,
}

#[derive(Debug)]
pub struct Page {
    pub items: Vec<Notification>,
    /// Notifications matching the filters, in all pages.
    pub total: u64,
    /// More items follow the last one of this page.
    pub has_more: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum MarkRead {
    Marked,
    AlreadyRead,
    NotFound,
}

/// What inserting a job's notification found.
#[derive(Debug)]
pub enum Inserted {
    New(Notification),
    /// The job already created this user's notification.
    Duplicate(JobRecord),
}

#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub notification_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// Its email and webhook messages were enqueued.
    pub fanned_out: bool,
}

/// The NotificationsTable.
#[derive(Clone)]
pub struct Notifications {
    pub(in crate::notifications::store) table: Table,
}

impl Notifications {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Notifications {
            table: Table::new(client, table),
        }
    }

    /// The attributes of `n` as stored. Public so that test fixtures write the same layout.
    pub fn item(n: &Notification, expires_at: i64) -> Item {
        let sk = notification_sk(&n.id);
        let mut item = HashMap::from([
            (PK.to_owned(), s(user_partition(&n.user_id))),
            (SK.to_owned(), s(sk.clone())),
            ("id".to_owned(), s(n.id.to_string())),
            ("user_id".to_owned(), s(n.user_id.to_string())),
            ("type".to_owned(), s(n.kind.as_str())),
            ("title".to_owned(), s(n.title.clone())),
            ("message".to_owned(), s(n.message.clone())),
            ("is_read".to_owned(), flag(n.is_read)),
            ("created_at".to_owned(), time(n.created_at)),
            ("expires_at".to_owned(), num(expires_at)),
        ]);
        if let Some(data) = &n.data {
            item.insert("data".to_owned(), s(data.to_string()));
        }
        if let Some(at) = n.read_at {
            item.insert("read_at".to_owned(), time(at));
        }
        if !n.is_read {
            item.insert(GSI1PK.to_owned(), s(unread_partition(&n.user_id)));
            item.insert(GSI1SK.to_owned(), s(sk));
        }
        item
    }

    fn parse_item(item: &Item) -> Result<Notification, StoreError> {
        let id = Uuid::parse_str(item.string("id")?)
            .map_err(|_| StoreError::Corrupt("notification id is not a UUID".into()))?;
        let user_id = UserId::parse(item.string("user_id")?)
            .map_err(|why| StoreError::Corrupt(format!("notification user_id {why}")))?;
        let kind = NotificationType::parse(item.string("type")?)
            .ok_or_else(|| StoreError::Corrupt("notification type is unknown".into()))?;
        let data = match item.opt_string("data")? {
            None => None,
            Some(raw) => Some(
                serde_json::from_str(raw)
                    .map_err(|_| StoreError::Corrupt("notification data is not JSON".into()))?,
            ),
        };
        Ok(Notification {
            id,
            user_id,
            kind,
            title: item.string("title")?.to_owned(),
            message: item.string("message")?.to_owned(),
            data,
            is_read: item.flag("is_read")?,
            read_at: item.opt_time("read_at")?,
            created_at: item.time("created_at")?,
        })
    }

    /// Applies the read-all watermark to a stored notification.
    fn with_watermark(mut n: Notification, counters: &Counters) -> Notification {
        if !n.is_read && counters.covers(&notification_sk(&n.id)) {
            n.is_read = true;
            n.read_at = counters.read_all_at;
        }
        n
    }

    async fn get_raw(&self, user: &UserId, id: &Uuid) -> Result<Option<Notification>, StoreError> {
        let out_item = self
            .table
            .get(
                user_partition(user),
                notification_sk(id),
                "GetItem notification",
            )
            .await?;
        out_item.as_ref().map(Self::parse_item).transpose()
    }

    /// One of `user`'s notifications, as the inbox shows it; `None` when it is not theirs.
    pub async fn get(&self, user: &UserId, id: &Uuid) -> Result<Option<Notification>, StoreError> {
        match self.get_raw(user, id).await? {
            None => Ok(None),
            Some(n) if n.is_read => Ok(Some(n)),
            Some(n) => {
                let counters = self.counters(user).await?;
                Ok(Some(Self::with_watermark(n, &counters)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_answer_each_filter_exactly() {
        let mut c = Counters {
            unread: 3,
            total: 10,
            ..Counters::default()
        };
        c.unread_by_type.insert(NotificationType::Error, 1);
        c.total_by_type.insert(NotificationType::Error, 4);
        assert_eq!(c.matching(None, None), 10);
        assert_eq!(c.matching(Some(false), None), 3);
        assert_eq!(c.matching(Some(true), None), 7);
        assert_eq!(c.matching(Some(true), Some(NotificationType::Error)), 3);
        assert_eq!(c.matching(None, Some(NotificationType::Info)), 0);
    }

    #[test]
    fn the_watermark_covers_ids_at_or_below_it() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let c = Counters {
            read_before: Some(notification_sk(&a)),
            ..Counters::default()
        };
        assert!(c.covers(&notification_sk(&a)));
        assert!(!c.covers(&notification_sk(&b)));
        assert!(!Counters::default().covers(&notification_sk(&a)));
    }
}
