//! Key layout of the tables. User ids cannot contain `#` (see [`UserId`]), so keys built here
//! never collide across users.

use crate::domain::UserId;

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
