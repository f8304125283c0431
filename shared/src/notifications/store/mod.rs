//! The notifications half's tables: the inbox (NotificationsTable) and the accounts
//! (AccountsTable: preferences, webhook endpoints, the delivery log and delivery claims).

pub mod accounts;
pub mod erase;
pub mod inbox;

pub use accounts::Accounts;
pub use inbox::Notifications;

use crate::platform::app::App;
use crate::platform::config::{require, ConfigError};

/// The inbox store of this deployment.
pub async fn inbox(app: &App) -> Result<Notifications, ConfigError> {
    let table = require(
        &app.config().resources.notifications_table,
        "NOTIFICATIONS_TABLE",
    )?;
    Ok(Notifications::new(app.dynamodb().await.clone(), table))
}

/// The accounts store of this deployment.
pub async fn accounts(app: &App) -> Result<Accounts, ConfigError> {
    let table = require(&app.config().resources.accounts_table, "ACCOUNTS_TABLE")?;
    Ok(Accounts::new(app.dynamodb().await.clone(), table))
}

/// The TTL of anything written now (epoch seconds): now plus the retention.
pub(crate) fn expires_at(app: &App) -> i64 {
    (chrono::Utc::now() + chrono::Duration::days(i64::from(app.config().retention_days)))
        .timestamp()
}
