//! Opaque, tamper-evident pagination cursors: the position as JSON, sealed with HMAC-SHA256
//! under the deployment's `CURSOR_SECRET` and bound to a purpose and a user, so a forged,
//! altered or borrowed cursor is a 400 and can never open another user's page.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::platform::domain::UserId;
use crate::platform::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    /// What the cursor pages through, e.g. "notifications" or "export".
    p: String,
    /// Whose data.
    u: String,
    /// Where the next page starts.
    v: T,
}

fn mac(secret: &[u8], payload: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut mac = HmacSha256::new_from_slice(secret)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("cursor key: {e}")))?;
    mac.update(payload);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// Seals `position` for `user`'s `purpose` pages.
pub fn seal<T: Serialize>(
    secret: &[u8],
    purpose: &str,
    user: &UserId,
    position: &T,
) -> Result<String, ApiError> {
    let payload = serde_json::to_vec(&Envelope {
        p: purpose.to_owned(),
        u: user.to_string(),
        v: position,
    })
    .map_err(|e| ApiError::Unexpected(e.into()))?;
    let tag = mac(secret, &payload)?;
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(tag)
    ))
}

/// Opens a cursor from the `cursor` parameter; anything not sealed by us for this purpose and
/// user is a 400 naming `cursor`.
pub fn open<T: DeserializeOwned>(
    secret: &[u8],
    purpose: &str,
    user: &UserId,
    cursor: &str,
) -> Result<T, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "cursor",
            "cursor is not valid for this request; start again without it",
        )
    };
    let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
    let mut check = HmacSha256::new_from_slice(secret)
        .map_err(|e| ApiError::Unexpected(anyhow::anyhow!("cursor key: {e}")))?;
    check.update(&payload);
    check.verify_slice(&tag).map_err(|_| invalid())?; // constant-time comparison
    let envelope: Envelope<T> = serde_json::from_slice(&payload).map_err(|_| invalid())?;
    if envelope.p != purpose || envelope.u != user.as_str() {
        return Err(invalid());
    }
    Ok(envelope.v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn a_sealed_cursor_opens_for_its_purpose_and_user() {
        let c = seal(KEY, "export", &user("alice"), &("2026-11-01", 42)).unwrap();
        let back: (String, u32) = open(KEY, "export", &user("alice"), &c).unwrap();
        assert_eq!(back, ("2026-11-01".to_owned(), 42));
    }

    #[test]
    fn another_users_or_purposes_cursor_is_refused() {
        let c = seal(KEY, "export", &user("alice"), &1).unwrap();
        assert!(open::<u32>(KEY, "export", &user("mallory"), &c).is_err());
        assert!(open::<u32>(KEY, "notifications", &user("alice"), &c).is_err());
    }

    #[test]
    fn an_altered_or_forged_cursor_is_refused() {
        let c = seal(KEY, "export", &user("alice"), &1).unwrap();
        let (payload, tag) = c.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"p":"export","u":"alice","v":999}"#);
        assert!(open::<u32>(
            KEY,
            "export",
            &user("alice"),
            &format!("{forged_payload}.{tag}")
        )
        .is_err());
        assert!(open::<u32>(KEY, "export", &user("alice"), &format!("{payload}.AAAA")).is_err());
        assert!(open::<u32>(KEY, "export", &user("alice"), "garbage").is_err());
        assert!(open::<u32>(
            b"another-key-another-key-another-",
            "export",
            &user("alice"),
            &c
        )
        .is_err());
    }
}
