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

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use uuid::Uuid;

use crate::notifications::jobs::JobId;
use crate::notifications::notification::{Notification, NotificationType};
use crate::platform::domain::UserId;
use crate::platform::dynamodb::keys::{
    job_sk, notification_sk, unread_partition, user_partition, COUNTERS_SK, GSI1, GSI1PK, GSI1SK,
    NOTIF_PREFIX, PK, SK, UNREAD_ATTR,
};
use crate::platform::dynamodb::StoreError;

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
/// Attempts at a write that loses races (transaction conflicts, a concurrent change).
const MAX_ATTEMPTS: u32 = 12;
/// How long a read-all spends writing `is_read` onto the items it covered.
const MATERIALIZE_BUDGET: Duration = Duration::from_millis(1_500);

fn unread_of(kind: NotificationType) -> String {
    format!("{UNREAD_ATTR}_{}", kind.as_str())
}

fn total_of(kind: NotificationType) -> String {
    format!("{TOTAL_ATTR}_{}", kind.as_str())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn num(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn dynamo<E>(what: &str) -> impl FnOnce(E) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
{
    let what = what.to_owned();
    move |e| StoreError::Dynamo(format!("{what}: {}", DisplayErrorContext(e)))
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Dynamo(format!("building a request: {e}")))
}

/// A short randomised pause before retrying a write that lost a race.
pub(crate) async fn backoff(attempt: u32) {
    let cap = 5u64 << attempt.min(6);
    let jitter = getrandom::u64().unwrap_or(7) % cap.max(1);
    tokio::time::sleep(Duration::from_millis(cap / 2 + jitter)).await;
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

    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, StoreError> {
        let count = |name: &str| -> Result<u64, StoreError> {
            item.get(name)
                .map(crate::platform::dynamodb::attrs::read_count)
                .transpose()
                .map(|v| v.unwrap_or(0))
        };
        let mut c = Counters {
            unread: count(UNREAD_ATTR)?,
            total: count(TOTAL_ATTR)?,
            last_sk: item.get(LAST_ATTR).and_then(|v| v.as_s().ok()).cloned(),
            read_before: item
                .get(READ_BEFORE_ATTR)
                .and_then(|v| v.as_s().ok())
                .cloned(),
            read_all_at: item
                .get(READ_ALL_AT_ATTR)
                .and_then(|v| v.as_s().ok())
                .map(|raw| parse_time(raw, READ_ALL_AT_ATTR))
                .transpose()?,
            ..Counters::default()
        };
        for kind in NotificationType::ALL {
            c.unread_by_type.insert(kind, count(&unread_of(kind))?);
            c.total_by_type.insert(kind, count(&total_of(kind))?);
        }
        Ok(c)
    }
}

fn parse_time(raw: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("{what} is not a timestamp: {raw:?}")))
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

/// How a transaction ended when it did not commit.
enum Cancelled {
    /// Per item: did its condition fail?
    Conditions(Vec<bool>),
    /// Lost a race with another transaction; try again.
    Conflict,
}

/// The NotificationsTable.
#[derive(Clone)]
pub struct Notifications {
    client: Client,
    table: String,
}

impl Notifications {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Notifications {
            client,
            table: table.into(),
        }
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Cancelled>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(err) => match err.into_service_error() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    let codes: Vec<&str> = e
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None"))
                        .collect();
                    if codes
                        .iter()
                        .any(|c| *c == "TransactionConflict" || *c == "ThrottlingError")
                    {
                        return Ok(Some(Cancelled::Conflict));
                    }
                    Ok(Some(Cancelled::Conditions(
                        codes
                            .iter()
                            .map(|c| *c == "ConditionalCheckFailed")
                            .collect(),
                    )))
                }
                TransactWriteItemsError::TransactionInProgressException(_) => {
                    Ok(Some(Cancelled::Conflict))
                }
                other => Err(StoreError::Dynamo(format!(
                    "TransactWriteItems: {}",
                    DisplayErrorContext(other)
                ))),
            },
        }
    }

    /// The user's counters (strongly consistent).
    pub async fn counters(&self, user: &UserId) -> Result<Counters, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(COUNTERS_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo("GetItem counters"))?;
        match out.item {
            None => Ok(Counters::default()),
            Some(item) => Counters::from_item(&item),
        }
    }

    /// The attributes of `n` as stored. Public so that test fixtures write the same layout.
    pub fn item(n: &Notification, expires_at: i64) -> HashMap<String, AttributeValue> {
        let sk = notification_sk(&n.id);
        let mut item = HashMap::from([
            (PK.to_owned(), s(user_partition(&n.user_id))),
            (SK.to_owned(), s(sk.clone())),
            ("id".to_owned(), s(n.id.to_string())),
            ("user_id".to_owned(), s(n.user_id.to_string())),
            ("type".to_owned(), s(n.kind.as_str())),
            ("title".to_owned(), s(n.title.clone())),
            ("message".to_owned(), s(n.message.clone())),
            ("is_read".to_owned(), AttributeValue::Bool(n.is_read)),
            (
                "created_at".to_owned(),
                s(n.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            ),
            ("expires_at".to_owned(), num(expires_at)),
        ]);
        if let Some(data) = &n.data {
            item.insert("data".to_owned(), s(data.to_string()));
        }
        if let Some(at) = n.read_at {
            item.insert(
                "read_at".to_owned(),
                s(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            );
        }
        if !n.is_read {
            item.insert(GSI1PK.to_owned(), s(unread_partition(&n.user_id)));
            item.insert(GSI1SK.to_owned(), s(sk));
        }
        item
    }

    fn parse_item(item: &HashMap<String, AttributeValue>) -> Result<Notification, StoreError> {
        let text = |name: &str| -> Result<&String, StoreError> {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("notification lacks {name}")))
        };
        let id = Uuid::parse_str(text("id")?)
            .map_err(|_| StoreError::Corrupt("notification id is not a UUID".into()))?;
        let user_id = UserId::parse(text("user_id")?)
            .map_err(|why| StoreError::Corrupt(format!("notification user_id {why}")))?;
        let kind = NotificationType::parse(text("type")?)
            .ok_or_else(|| StoreError::Corrupt("notification type is unknown".into()))?;
        let data = match item.get("data").and_then(|v| v.as_s().ok()) {
            None => None,
            Some(raw) => Some(
                serde_json::from_str(raw)
                    .map_err(|_| StoreError::Corrupt("notification data is not JSON".into()))?,
            ),
        };
        let is_read = *item
            .get("is_read")
            .and_then(|v| v.as_bool().ok())
            .ok_or_else(|| StoreError::Corrupt("notification lacks is_read".into()))?;
        let read_at = item
            .get("read_at")
            .and_then(|v| v.as_s().ok())
            .map(|raw| parse_time(raw, "read_at"))
            .transpose()?;
        Ok(Notification {
            id,
            user_id,
            kind,
            title: text("title")?.clone(),
            message: text("message")?.clone(),
            data,
            is_read,
            read_at,
            created_at: parse_time(text("created_at")?, "created_at")?,
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
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(notification_sk(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo("GetItem notification"))?;
        out.item.as_ref().map(Self::parse_item).transpose()
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
        for attempt in 0..MAX_ATTEMPTS {
            let sk = notification_sk(&n.id);
            let put = built(
                Put::builder()
                    .table_name(&self.table)
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
                    .table_name(&self.table)
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
                        .table_name(&self.table)
                        .item(PK, s(pk.clone()))
                        .item(SK, s(job_sk(job.as_str())))
                        .item("notification_id", s(n.id.to_string()))
                        .item(
                            "created_at",
                            s(n.created_at
                                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
                        )
                        .item("fanned_out", AttributeValue::Bool(false))
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
            match self.transact(items).await? {
                None => return Ok(Inserted::New(n)),
                Some(Cancelled::Conflict) => backoff(attempt).await,
                Some(Cancelled::Conditions(failed)) => {
                    if failed.get(2).copied().unwrap_or(false) {
                        if let Some(job) = job {
                            if let Some(record) = self.job_record(&n.user_id, job).await? {
                                return Ok(Inserted::Duplicate(record));
                            }
                        }
                        continue;
                    }
                    // Our id is not above the newest: take the next one above it.
                    let last = self.counters(&n.user_id).await?.last_sk;
                    n.id = next_id(last.as_deref());
                }
            }
        }
        Err(StoreError::Contention("inserting a notification".into()))
    }

    /// What `job` created for `user`, if it ran.
    pub async fn job_record(
        &self,
        user: &UserId,
        job: &JobId,
    ) -> Result<Option<JobRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(job_sk(job.as_str())))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo("GetItem job record"))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let id = item
            .get("notification_id")
            .and_then(|v| v.as_s().ok())
            .and_then(|v| Uuid::parse_str(v).ok())
            .ok_or_else(|| StoreError::Corrupt("job record lacks notification_id".into()))?;
        let created_at = item
            .get("created_at")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt("job record lacks created_at".into()))
            .and_then(|raw| parse_time(raw, "created_at"))?;
        let fanned_out = item
            .get("fanned_out")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false);
        Ok(Some(JobRecord {
            notification_id: id,
            created_at,
            fanned_out,
        }))
    }

    /// Takes over the fan-out of a job whose writer did not record it done: `true` when the
    /// lease was free (expired), `false` while another invocation still holds it.
    pub async fn claim_fan_out(&self, user: &UserId, job: &JobId) -> Result<bool, StoreError> {
        let now = Utc::now().timestamp();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(job_sk(job.as_str())))
            .update_expression("SET fanning_until = :until")
            .condition_expression(
                "fanned_out = :f AND (attribute_not_exists(fanning_until) OR fanning_until < :now)",
            )
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":until", num(now + FAN_OUT_LEASE_SECONDS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                match err.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(_)
                    | UpdateItemError::TransactionConflictException(_) => Ok(false),
                    other => Err(StoreError::Dynamo(format!(
                        "UpdateItem claim fan-out: {}",
                        DisplayErrorContext(other)
                    ))),
                }
            }
        }
    }

    /// Records that the job's email and webhook messages for `user` are enqueued.
    pub async fn mark_fanned_out(&self, user: &UserId, job: &JobId) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(job_sk(job.as_str())))
            .update_expression("SET fanned_out = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(dynamo("UpdateItem job record"))?;
        Ok(())
    }

    /// One page of `user`'s inbox, newest first.
    pub async fn list(&self, user: &UserId, q: &ListQuery) -> Result<Page, StoreError> {
        let counters = self.counters(user).await?;
        let want = q.offset + q.limit + 1;
        let high = match &q.after {
            Some(id) => notification_sk(id),
            None => NOTIF_END.to_owned(),
        };
        let unread_only = q.is_read == Some(false);
        let mut names = HashMap::new();
        let mut values = HashMap::from([(":hi".to_owned(), s(high))]);
        let mut filters = vec![];
        let key_condition = if unread_only {
            names.insert("#gpk".to_owned(), GSI1PK.to_owned());
            names.insert("#gsk".to_owned(), GSI1SK.to_owned());
            values.insert(":pk".into(), s(unread_partition(user)));
            values.insert(
                ":lo".into(),
                s(counters
                    .read_before
                    .clone()
                    .unwrap_or_else(|| NOTIF_PREFIX.to_owned())),
            );
            "#gpk = :pk AND #gsk BETWEEN :lo AND :hi"
        } else {
            values.insert(":pk".into(), s(user_partition(user)));
            values.insert(":lo".into(), s(NOTIF_PREFIX));
            "pk = :pk AND sk BETWEEN :lo AND :hi"
        };
        if let Some(kind) = q.kind {
            names.insert("#type".into(), "type".into());
            values.insert(":type".into(), s(kind.as_str()));
            filters.push("#type = :type".to_owned());
        }
        if q.is_read == Some(true) {
            values.insert(":true".into(), AttributeValue::Bool(true));
            match counters
                .read_before
                .as_deref()
                .and_then(|w| w.strip_prefix(NOTIF_PREFIX))
            {
                Some(watermark_id) => {
                    values.insert(":rb".into(), s(watermark_id));
                    filters.push("(is_read = :true OR id <= :rb)".into());
                }
                None => filters.push("is_read = :true".into()),
            }
        }
        // Unread items all sit above the watermark: a position under it (a read-all came
        // between two pages) has nothing unread after it.
        if unread_only {
            let lo = counters.read_before.as_deref().unwrap_or(NOTIF_PREFIX);
            if values
                .get(":hi")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|hi| hi.as_str() < lo)
            {
                return Ok(Page {
                    items: vec![],
                    total: counters.matching(q.is_read, q.kind),
                    has_more: false,
                });
            }
        }
        let page_size = if filters.is_empty() {
            (want + 1).min(1_000) as i32
        } else {
            500
        };
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(key_condition)
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(page_size)
                .set_exclusive_start_key(start.take());
            if !names.is_empty() {
                query = query.set_expression_attribute_names(Some(names.clone()));
            }
            if !filters.is_empty() {
                query = query.filter_expression(filters.join(" AND "));
            }
            if unread_only {
                query = query.index_name(GSI1);
            } else {
                query = query.consistent_read(true);
            }
            let out = query.send().await.map_err(dynamo("Query notifications"))?;
            for raw in out.items() {
                let n = Self::parse_item(raw)?;
                let sk = notification_sk(&n.id);
                if Some(n.id) == q.after || (unread_only && counters.covers(&sk)) {
                    continue;
                }
                items.push(Self::with_watermark(n, &counters));
                if items.len() >= want {
                    break;
                }
            }
            match out.last_evaluated_key {
                Some(key) if items.len() < want => start = Some(key),
                _ => break,
            }
        }
        let has_more = items.len() > q.offset + q.limit;
        let items = items.into_iter().skip(q.offset).take(q.limit).collect();
        Ok(Page {
            items,
            total: counters.matching(q.is_read, q.kind),
            has_more,
        })
    }

    /// Marks one notification read and counts it out, exactly once.
    pub async fn mark_read(&self, user: &UserId, id: &Uuid) -> Result<MarkRead, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
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
            let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let item = built(
                Update::builder()
                    .table_name(&self.table)
                    .key(PK, s(user_partition(user)))
                    .key(SK, s(sk.clone()))
                    .update_expression("SET is_read = :t, read_at = :now REMOVE #gpk, #gsk")
                    .condition_expression("is_read = :f")
                    .expression_attribute_names("#gpk", GSI1PK)
                    .expression_attribute_names("#gsk", GSI1SK)
                    .expression_attribute_values(":t", AttributeValue::Bool(true))
                    .expression_attribute_values(":f", AttributeValue::Bool(false))
                    .expression_attribute_values(":now", s(now))
                    .build(),
            )?;
            let count = self.counter_update(
                user,
                &[(UNREAD_ATTR.to_owned(), -1), (unread_of(n.kind), -1)],
                Watermark::Above(&sk),
            )?;
            match self
                .transact(vec![
                    TransactWriteItem::builder().update(item).build(),
                    count,
                ])
                .await?
            {
                None => return Ok(MarkRead::Marked),
                Some(Cancelled::Conflict) => backoff(attempt).await,
                Some(Cancelled::Conditions(_)) => {} // read again: deleted, read or read-all
            }
        }
        Err(StoreError::Contention("marking a notification read".into()))
    }

    /// Deletes one notification and counts it out, exactly once; `false` when it is not there.
    pub async fn delete(&self, user: &UserId, id: &Uuid) -> Result<bool, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
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
                    .table_name(&self.table)
                    .key(PK, s(user_partition(user)))
                    .key(SK, s(sk.clone()))
                    .condition_expression("is_read = :was")
                    .expression_attribute_values(":was", AttributeValue::Bool(n.is_read))
                    .build(),
            )?;
            let count = self.counter_update(user, &changes, watermark)?;
            match self
                .transact(vec![
                    TransactWriteItem::builder().delete(delete).build(),
                    count,
                ])
                .await?
            {
                None => return Ok(true),
                Some(Cancelled::Conflict) => backoff(attempt).await,
                Some(Cancelled::Conditions(_)) => {}
            }
        }
        Err(StoreError::Contention("deleting a notification".into()))
    }

    /// The counters update of a transaction, conditioned on where the watermark stands.
    fn counter_update(
        &self,
        user: &UserId,
        changes: &[(String, i64)],
        watermark: Watermark<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(&self.table)
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
        update = match watermark {
            Watermark::Any => update,
            Watermark::Above(sk) => update
                .condition_expression("attribute_not_exists(#rb) OR #rb < :sk")
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
        let mut attempt = 0;
        let old = loop {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PK, s(user_partition(user)))
                .key(SK, s(COUNTERS_SK))
                .update_expression(format!("SET {}", sets.join(", ")))
                .condition_expression("attribute_exists(#last) AND #u > :zero")
                .set_expression_attribute_names(Some(names.clone()))
                .expression_attribute_values(
                    ":now",
                    s(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
                )
                .expression_attribute_values(":zero", num(0))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match result {
                Ok(out) => break out.attributes.unwrap_or_default(),
                Err(err) => {
                    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                    match err.into_service_error() {
                        UpdateItemError::ConditionalCheckFailedException(_) => return Ok(0),
                        UpdateItemError::TransactionConflictException(_)
                            if attempt + 1 < MAX_ATTEMPTS =>
                        {
                            backoff(attempt).await;
                            attempt += 1;
                        }
                        other => {
                            return Err(StoreError::Dynamo(format!(
                                "UpdateItem read-all: {}",
                                DisplayErrorContext(other)
                            )))
                        }
                    }
                }
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
        let mut done = 0;
        let mut start = None;
        while Instant::now() < deadline {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("#gpk = :pk AND #gsk <= :w")
                .expression_attribute_names("#gpk", GSI1PK)
                .expression_attribute_names("#gsk", GSI1SK)
                .expression_attribute_values(":pk", s(unread_partition(user)))
                .expression_attribute_values(":w", s(watermark))
                .projection_expression("sk")
                .limit(200)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(dynamo("Query unread index"))?;
            let keys: Vec<String> = out
                .items()
                .iter()
                .filter_map(|i| i.get(SK).and_then(|v| v.as_s().ok()).cloned())
                .collect();
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
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok(done)
    }

    /// Writes the read state a read-all gave the item `sk`; no counter changes (it was counted
    /// out by the read-all). Nothing happens when the item is gone or read already.
    async fn materialize(
        &self,
        user: &UserId,
        sk: &str,
        read_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(user_partition(user)))
            .key(SK, s(sk))
            .update_expression("SET is_read = :t, read_at = :at REMOVE #gpk, #gsk")
            .condition_expression("is_read = :f")
            .expression_attribute_names("#gpk", GSI1PK)
            .expression_attribute_names("#gsk", GSI1SK)
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(
                ":at",
                s(read_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
                match err.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(_)
                    | UpdateItemError::TransactionConflictException(_) => Ok(()),
                    other => Err(StoreError::Dynamo(format!(
                        "UpdateItem materialize: {}",
                        DisplayErrorContext(other)
                    ))),
                }
            }
        }
    }
}

/// Where the read-all watermark must stand for a counters change to be right.
enum Watermark<'a> {
    Any,
    /// The item is above it: it counts as unread.
    Above(&'a str),
    /// The item is at or below it: read-all counted it out already.
    AtOrBelow(&'a str),
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

impl Notifications {
    /// The user's unread count; 0 for a user with nothing yet.
    pub async fn unread_count(&self, user: &UserId) -> Result<u64, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(user_partition(user)))
            .key(SK, AttributeValue::S(COUNTERS_SK.to_owned()))
            .projection_expression("#u")
            .expression_attribute_names("#u", UNREAD_ATTR)
            .send()
            .await
            .map_err(dynamo("GetItem counters"))?;
        match output.item.as_ref().and_then(|item| item.get(UNREAD_ATTR)) {
            None => Ok(0),
            Some(value) => crate::platform::dynamodb::attrs::read_count(value),
        }
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
