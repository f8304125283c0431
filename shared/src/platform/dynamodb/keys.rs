//! Key layout of the tables. User ids cannot contain `#` (see [`UserId`]), so keys built here
//! never collide across users.

use crate::platform::domain::UserId;

pub const PK: &str = "pk";
pub const SK: &str = "sk";

/// Partition of everything one user owns in a table.
pub fn user_partition(user: &UserId) -> String {
    format!("USER#{}", user.as_str())
}

/// The item holding a user's notification counters.
pub const COUNTERS_SK: &str = "COUNTERS";
/// Counter attribute: notifications not yet read.
pub const UNREAD_ATTR: &str = "unread";

/// Sort key of one notification; UUID v7 text sorts by creation time.
pub fn notification_sk(id: &uuid::Uuid) -> String {
    format!("NOTIF#{id}")
}

/// Sort-key prefix of a user's notifications.
pub const NOTIF_PREFIX: &str = "NOTIF#";

/// The sparse index of unread notifications: partition `UNREAD#<user>` on `gsi1`, present only
/// while an item is unread.
pub const GSI1: &str = "gsi1";
pub const GSI1PK: &str = "gsi1pk";
pub const GSI1SK: &str = "gsi1sk";

pub fn unread_partition(user: &UserId) -> String {
    format!("UNREAD#{}", user.as_str())
}

/// The idempotency record of a notification job for one user (NotificationsTable).
pub fn job_sk(job_id: &str) -> String {
    format!("JOB#{job_id}")
}

/// AccountsTable: a user's notification preferences.
pub const PREFS_SK: &str = "PREFS";
/// AccountsTable: how many webhook endpoints a user has (bounds them).
pub const WEBHOOK_COUNT_SK: &str = "WEBHOOKS";
pub const WEBHOOK_PREFIX: &str = "WEBHOOK#";

pub fn webhook_sk(endpoint_id: &str) -> String {
    format!("{WEBHOOK_PREFIX}{endpoint_id}")
}

/// AccountsTable: one delivery attempt of a notification, in attempt order (UUID v7).
pub fn delivery_prefix(notification: &uuid::Uuid) -> String {
    format!("DELIVERY#{notification}#")
}

pub fn delivery_sk(notification: &uuid::Uuid, attempt: &uuid::Uuid) -> String {
    format!("{}{attempt}", delivery_prefix(notification))
}

/// AccountsTable: marks a notification delivered to one target, so a repeated queue message
/// does not deliver it again.
pub fn delivered_sk(notification: &uuid::Uuid, target_key: &str) -> String {
    format!("DELIVERED#{notification}#{target_key}")
}

/// EventsTable: one raw usage event, keyed by its id so a second copy fails its condition.
pub fn event_pk(event_id: &str) -> String {
    format!("EVT#{event_id}")
}

pub const EVENT_SK: &str = "EVT";

/// EventsTable `gsi1`: a user's events in time order (partition [`user_partition`]); fixed-width
/// UTC time, then the id.
pub fn event_time_sk(ts: &chrono::DateTime<chrono::Utc>, event_id: &str) -> String {
    format!("{}#{event_id}", ts.format("%Y-%m-%dT%H:%M:%S%.3fZ"))
}

/// RollupsTable: a user's rollups of one level (`Q` quarter-hourly, `H` hourly, `D` daily), sorted
/// by bucket.
pub fn user_rollup_pk(user: &UserId, level: char) -> String {
    format!("USER#{user}#{level}")
}

/// RollupsTable: the sort key of one stored item of a rollup bucket (`2026-11-22`): the bucket's
/// own item, or `2026-11-22#M#openai|gpt-4o` / `2026-11-22#E#/v1/chat` for one model or
/// endpoint. `#` sorts before every character a part starts with, so a Query of buckets
/// `a..=b` reads `a` to [`rollup_range_end`]`(b)` and gets every part.
pub fn rollup_part_sk(bucket: &str, part: Option<&str>) -> String {
    match part {
        None => bucket.to_owned(),
        Some(part) => format!("{bucket}#{part}"),
    }
}

/// The last sort key of bucket `bucket`'s items.
pub fn rollup_range_end(bucket: &str) -> String {
    format!("{bucket}#~")
}

/// The bucket a rollup item's sort key belongs to.
pub fn rollup_bucket(sk: &str) -> &str {
    sk.split('#').next().unwrap_or(sk)
}

/// RollupsTable: one shard of the system-wide rollups of one level (`Q`, `H` or `D`).
pub fn system_rollup_pk(shard: u32, level: char) -> String {
    format!("{SYSTEM_ROLLUP_PREFIX}{shard}#{level}")
}

pub const SYSTEM_ROLLUP_PREFIX: &str = "ALL#";

/// RollupsTable: a user's all-time credit totals.
pub fn user_totals_pk(user: &str) -> String {
    format!("USER#{user}#TOTAL")
}

pub const TOTALS_SK: &str = "ALL";

/// RollupsTable: the partition of the platform's own items beside the system rollups (its
/// system-wide budgets and their alert history), as [`user_totals_pk`] is a user's.
pub const SYSTEM_TOTALS_PK: &str = "SYSTEM#TOTAL";

/// RollupsTable `gsi1`: the users active on a day (their day rollups carry it).
pub fn active_day_pk(day_key: &str) -> String {
    format!("DAY#{day_key}")
}

/// RollupsTable: a user's metric alert rules, beside the totals (partition [`user_totals_pk`]).
pub const RULES_SK: &str = "RULES";

/// RollupsTable: one shard of the registry of users who have metric alert rules (sort key: the
/// user id), so the scheduled evaluation finds them without a scan.
pub fn rule_users_pk(shard: u32) -> String {
    format!("RULEUSERS#{shard}")
}

/// Shards of the rule-user registry; a user's shard is fixed by their id.
pub const RULE_USER_SHARDS: u32 = 8;

pub fn rule_users_shard(user: &UserId) -> u32 {
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in user.as_str().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h % RULE_USER_SHARDS
}

/// RollupsTable: one entry of a user's alert history (partition [`user_totals_pk`]), newest last
/// in key order: fixed-width UTC time, then what fired.
pub fn alert_history_sk(at: &chrono::DateTime<chrono::Utc>, what: &str) -> String {
    format!(
        "{ALERT_PREFIX}{}#{what}",
        at.format("%Y-%m-%dT%H:%M:%S%.6fZ")
    )
}

pub const ALERT_PREFIX: &str = "ALERT#";

/// RollupsTable: a user's anomalies (`A#<id>`, ids start with their hour so they sort by time)
/// and the drivers their "expected" verdicts quiet (`QUIET#<metric>#<driver>`).
pub fn anomaly_pk(user: &UserId) -> String {
    format!("USER#{user}#ANOMALY")
}

/// RollupsTable: the platform's system-wide anomalies and quiet drivers, as [`anomaly_pk`].
pub const SYSTEM_ANOMALY_PK: &str = "SYSTEM#ANOMALY";

pub const ANOMALY_PREFIX: &str = "A#";

pub fn anomaly_sk(id: &str) -> String {
    format!("{ANOMALY_PREFIX}{id}")
}

pub const QUIET_PREFIX: &str = "QUIET#";

pub fn quiet_sk(metric: &str, driver_key: &str) -> String {
    format!("{QUIET_PREFIX}{metric}#{driver_key}")
}

/// AccountsTable: the registry of users with report emails in one zone (sort key: the user id;
/// their reports beside it). Keyed by zone, so a run reads only the zones where it is 08:00
/// now — whatever daylight saving or a new tz database does to that instant.
pub fn report_zone_pk(zone: &str) -> String {
    format!("REPORTZONE#{zone}")
}

/// AccountsTable: the zones that have (or had) report subscribers, one item each (sort key: the
/// zone): at most the tz database's few hundred names, however many users.
pub const REPORT_ZONES_PK: &str = "REPORTZONES";

/// AccountsTable: the claim that one report email of a user went (or is going) out.
pub fn report_sent_sk(kind: &str, label: &str) -> String {
    format!("REPORT#{kind}#{label}")
}

/// AccountsTable: one email or webhook delivery waiting in a batch of a user (a digest window or
/// the end of quiet hours): `PENDING#<batch>#<notification>#<channel>`.
pub fn pending_prefix(batch: &str) -> String {
    format!("{PENDING_PREFIX}{batch}#")
}

pub const PENDING_PREFIX: &str = "PENDING#";

pub fn pending_sk(batch: &str, notification: &uuid::Uuid, channel: &str) -> String {
    format!("{}{notification}#{channel}", pending_prefix(batch))
}

/// AccountsTable: the due record of one batch of a user (`DUE#<batch>`), which also sits in the
/// sparse index [`DUE_INDEX`] under `DUE#<shard>` / `<release>#<user>#<batch>`, so the flusher
/// reads the batches due by a time with one Query per shard and never touches an idle user.
pub fn due_sk(batch: &str) -> String {
    format!("{DUE_PREFIX}{batch}")
}

pub const DUE_PREFIX: &str = "DUE#";
pub const DUE_INDEX: &str = "gsi1";

pub fn due_index_pk(shard: u32) -> String {
    format!("{DUE_PREFIX}{shard}")
}

/// The index sort key: release time (fixed-width UTC, to the second) first, so "due by `t`" is
/// `<= due_index_upto(t)`.
pub fn due_index_sk(release: &chrono::DateTime<chrono::Utc>, user: &UserId, batch: &str) -> String {
    format!("{}#{user}#{batch}", release.format("%Y-%m-%dT%H:%M:%SZ"))
}

pub fn due_index_upto(at: &chrono::DateTime<chrono::Utc>) -> String {
    format!("{}#~", at.format("%Y-%m-%dT%H:%M:%SZ"))
}

/// The batch of a digest window (`DIGEST#H2026-11-24T14:00Z`) and of deliveries held until
/// quiet hours end (`HELD#2026-11-24T12:00Z`).
pub fn digest_batch(window_key: &str) -> String {
    format!("{DIGEST_BATCH}{window_key}")
}

pub const DIGEST_BATCH: &str = "DIGEST#";
pub const HELD_BATCH: &str = "HELD#";

pub fn held_batch(release: &chrono::DateTime<chrono::Utc>) -> String {
    format!("{HELD_BATCH}{}", release.format("%Y-%m-%dT%H:%MZ"))
}

/// AccountsTable: the claim that one digest email of a user went (or is going) out; while it
/// exists no delivery joins that window.
pub fn digest_sent_sk(window_key: &str) -> String {
    format!("DIGESTSENT#{window_key}")
}
