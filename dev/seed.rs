//! Demo data for `make dev`, written through the same store adapters the functions use.

use anyhow::Result;
use meterbell::domain::UserId;
use meterbell::notification::{Notification, NotificationType};
use meterbell::store::dynamodb::Notifications;
use meterbell::store::NotificationCounts;

use crate::stack::LocalStack;
use meterbell::preferences::{CheckedUpdate, EmailAddress};
use meterbell::store::accounts::{Accounts, Endpoint};

pub const DEMO_USER: &str = "demo-user";
pub const DEMO_ADMIN: &str = "demo-admin";

/// Gives the demo user a few unread notifications, once (a second run finds them and stops).
pub async fn seed(stack: &LocalStack) -> Result<()> {
    let table = stack
        .resolver
        .refs
        .get("NotificationsTable")
        .cloned()
        .unwrap_or_else(|| "NotificationsTable".into());
    let store = Notifications::new(stack.clients.dynamodb.clone(), table);
    let user = UserId::parse(DEMO_USER).map_err(anyhow::Error::msg)?;
    if store.unread_count(&user).await? > 0 {
        return Ok(());
    }
    let expires_at = (chrono::Utc::now() + chrono::Duration::days(400)).timestamp();
    let demo = [
        (
            NotificationType::Info,
            "Welcome to Meterbell",
            "Your usage analytics and alerts live here.",
            None,
        ),
        (
            NotificationType::Warning,
            "Low Credits",
            "Your credit balance is low (500 credits remaining).",
            Some(serde_json::json!({"credits_remaining": 500})),
        ),
        (
            NotificationType::Success,
            "Payment successful",
            "We received your payment of $50.00.",
            None,
        ),
    ];
    for (kind, title, message, data) in demo {
        store
            .insert(
                &Notification::new(user.clone(), kind, title, message, data),
                expires_at,
            )
            .await?;
    }
    Ok(())
}

/// The demo user's email address.
pub const DEMO_EMAIL: &str = "demo-user@example.com";

/// Gives the demo user an email address and a webhook endpoint at the local receiver (once),
/// so a job enqueued under `make dev` shows up in all three channels.
pub async fn seed_notifications(
    stack: &LocalStack,
    receiver_url: &str,
    secret: &str,
) -> Result<()> {
    let table = stack
        .resolver
        .refs
        .get("AccountsTable")
        .cloned()
        .unwrap_or_else(|| "AccountsTable".into());
    let accounts = Accounts::new(stack.clients.dynamodb.clone(), table);
    let user = UserId::parse(DEMO_USER).map_err(anyhow::Error::msg)?;
    if accounts.preferences(&user).await?.email_address.is_none() {
        let address = EmailAddress::parse(DEMO_EMAIL).map_err(anyhow::Error::msg)?;
        accounts
            .update_preferences(
                &user,
                &CheckedUpdate {
                    email_address: Some(Some(address)),
                    switches: vec![],
                },
            )
            .await?;
    }
    let existing = accounts.endpoints(&user).await?;
    if !existing.iter().any(|e| e.url == receiver_url) {
        accounts
            .create_endpoint(&Endpoint {
                id: Endpoint::new_id(),
                user_id: user,
                url: receiver_url.to_owned(),
                secret: secret.to_owned(),
                description: Some("make dev receiver".into()),
                enabled: true,
                disabled_reason: None,
                created_at: chrono::Utc::now(),
            })
            .await?;
    }
    Ok(())
}
