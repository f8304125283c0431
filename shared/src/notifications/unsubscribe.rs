//! One-click unsubscribe (RFC 8058) for notification types on the email channel. Every email
//! links to `/api/v1/unsubscribe?token=...`; the token names the user and the types (one for a
//! notification's email, those it lists for a digest) and is sealed
//! with the deployment's cursor key (HMAC-SHA256), so it cannot be forged or pointed at another
//! user or type. A `GET` of the link (what a link scanner or a click does) only shows a page
//! asking to confirm; a `POST` (what a mail client's one-click button or that page's button
//! does) switches the type's email off.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::notifications::notification::NotificationType;
use crate::platform::domain::UserId;

#[derive(Serialize, Deserialize)]
struct Claim {
    u: String,
    /// One type, or several joined by commas (a digest's).
    t: String,
}

fn mac(secret: &[u8], payload: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(b"unsubscribe.");
    mac.update(payload.as_bytes());
    Some(mac)
}

/// The token of `user`'s unsubscribe from `kind` emails.
pub fn token(secret: &[u8], user: &UserId, kind: NotificationType) -> Option<String> {
    token_for(secret, user, &[kind])
}

/// The token of `user`'s unsubscribe from the emails of all of `kinds` (a digest's types).
pub fn token_for(secret: &[u8], user: &UserId, kinds: &[NotificationType]) -> Option<String> {
    if kinds.is_empty() {
        return None;
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let claim = serde_json::to_vec(&Claim {
        u: user.to_string(),
        t: names.join(","),
    })
    .ok()?;
    let payload = URL_SAFE_NO_PAD.encode(claim);
    let tag = mac(secret, &payload)?.finalize().into_bytes();
    Some(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag)))
}

/// Whom and which types a token names; `None` for anything not sealed by this deployment.
pub fn open(secret: &[u8], token: &str) -> Option<(UserId, Vec<NotificationType>)> {
    let (payload, tag) = token.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    mac(secret, payload)?.verify_slice(&tag).ok()?;
    let claim: Claim = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let kinds = claim
        .t
        .split(',')
        .map(NotificationType::parse)
        .collect::<Option<Vec<_>>>()?;
    Some((UserId::parse(&claim.u).ok()?, kinds))
}

/// The link in an email: `{base}/api/v1/unsubscribe?token=...`.
pub fn link(base: &str, token: &str) -> String {
    format!(
        "{}/api/v1/unsubscribe?token={token}",
        base.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_under_its_key_and_unaltered() {
        let user = UserId::parse("u1").unwrap();
        let t = token(b"key-one", &user, NotificationType::Info).unwrap();
        assert_eq!(
            open(b"key-one", &t),
            Some((user.clone(), vec![NotificationType::Info]))
        );
        let digest = token_for(
            b"key-one",
            &user,
            &[NotificationType::Info, NotificationType::Success],
        )
        .unwrap();
        assert_eq!(
            open(b"key-one", &digest),
            Some((
                user.clone(),
                vec![NotificationType::Info, NotificationType::Success]
            ))
        );
        assert_eq!(open(b"key-two", &t), None);
        let (payload, tag) = t.split_once('.').unwrap();
        let other = URL_SAFE_NO_PAD.encode(br#"{"u":"u2","t":"info"}"#);
        assert_eq!(open(b"key-one", &format!("{other}.{tag}")), None);
        assert_eq!(open(b"key-one", payload), None);
        assert_eq!(open(b"key-one", "junk"), None);
    }
}
