//! What the integration tests share: the typed client of the API ([`TestApi`]), usage event
//! builders, queues and consumers of the test's own, the tables behind the routes, and moto's
//! recorded emails.

mod alerts;
mod api;
pub mod contract;
mod events;
mod queues;
mod ses;
mod stores;

pub use alerts::{AlertHarness, SCHEDULE};
pub use api::{Caller, TestApi};
pub use events::{midnight_days_ago, minutes_ago, UsageEventBuilder};
pub use queues::{
    app_for, app_with_ses, consumer, count, drain, pipeline, queue_pair, queues, send, take_all,
    Queues,
};
pub use ses::{emails_to, mails_to};
pub use stores::{accounts, fresh_accounts_table, notifications, seed_inbox, uid};
