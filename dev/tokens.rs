//! Development tokens, signed with the local stack's HS256 secret.

use anyhow::Result;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

/// The HS256 secret `make dev` and the tests configure. Local use only: never deploy with it.
pub const DEV_JWT_SECRET: &str = "meterbell-local-development-secret-do-not-deploy";

/// The cursor-sealing key of the local stack. Local use only.
pub const DEV_CURSOR_SECRET: &str = "meterbell-local-cursor-secret-do-not-deploy";

pub fn mint(secret: &str, sub: &str, roles: &[&str], ttl_seconds: i64) -> Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": sub, "roles": roles, "iat": now, "exp": now + ttl_seconds});
    Ok(encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}
