//! The dispatcher's side of digests and quiet hours: each email or webhook delivery either goes
//! on its queue now or waits in the user's partition for the flusher (`notifications::flusher`).

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::notifications::channels::{self, Channel};
use crate::notifications::notification::NotificationView;
use crate::notifications::preferences::Preferences;
use crate::notifications::store::accounts::Joined;
use crate::notifications::store::{self, Accounts};
use crate::notifications::timing::Timing;
use crate::platform::app::App;
use crate::platform::domain::UserId;
use crate::platform::dynamodb::keys::held_batch;

/// How many windows a delivery tries when the one it belongs to was already flushed.
const WINDOWS_TO_TRY: usize = 3;

/// Delivers `view` on `channel` as the user's timing says: now, into a digest, or held.
/// `at` is when the notification was made, so a repeated fan-out decides alike.
pub(crate) async fn deliver(
    app: &App,
    accounts: &Accounts,
    prefs: &Preferences,
    channel: Channel,
    user: &UserId,
    view: &NotificationView,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let timing = prefs.timing(channel, view.kind, at);
    if timing == Timing::Now || !goes_anywhere(accounts, prefs, channel, user, view).await? {
        // Nothing to wait for, or no target to wait for: the channel's own rules (including
        // logging a suppressed address as skipped) decide at once.
        return channels::enqueue(app, accounts, prefs, channel, user, view).await;
    }
    let expires = store::expires_at(app);
    match timing {
        Timing::Now => Ok(()),
        Timing::Hold(until) if until <= Utc::now() => {
            // Quiet hours ended while the job waited on its queue.
            channels::enqueue(app, accounts, prefs, channel, user, view).await
        }
        Timing::Hold(until) => {
            accounts
                .hold(user, &held_batch(&until), channel, view, until, expires)
                .await
                .context("holding a delivery for quiet hours")?;
            tracing::info!(user = %user, channel = channel.as_str(), until = %until,
                "delivery held for quiet hours");
            Ok(())
        }
        Timing::Digest(first) => {
            let zone = prefs.zone();
            let mut window = Some(first);
            for _ in 0..WINDOWS_TO_TRY {
                let Some(w) = window else { break };
                let joined = accounts
                    .join_digest(user, &w.key(), view, prefs.digest_release(&w), expires)
                    .await
                    .context("adding to a digest")?;
                if joined == Joined::Yes {
                    tracing::info!(user = %user, window = w.key(), "email joins the digest");
                    return Ok(());
                }
                // That window's digest went out while this job waited.
                window = w.after_flushed(Utc::now(), &zone);
            }
            anyhow::bail!("no open digest window for user {user}")
        }
    }
}

/// Whether a delivery on `channel` has somewhere to go: an address that is not suppressed, an
/// enabled endpoint taking this type. Nothing waits for a target that is not there.
async fn goes_anywhere(
    accounts: &Accounts,
    prefs: &Preferences,
    channel: Channel,
    user: &UserId,
    view: &NotificationView,
) -> anyhow::Result<bool> {
    Ok(match channel {
        Channel::Email => prefs
            .email_address
            .as_ref()
            .is_some_and(|a| !prefs.is_suppressed(a)),
        Channel::Webhook => accounts
            .endpoints(user)
            .await
            .context("reading webhook endpoints")?
            .iter()
            .any(|e| e.enabled && e.accepts(view.kind)),
    })
}
