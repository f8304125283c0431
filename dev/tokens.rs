//! Development tokens, signed with the local stack's HS256 secret.

use anyhow::Result;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

/// The HS256 secret `make dev` and the tests configure. Local use only: never deploy with it.
pub const DEV_JWT_SECRET: &str = "meterbell-local-development-secret-do-not-deploy";

/// The cursor-sealing key of the local stack. Local use only.
pub const DEV_CURSOR_SECRET: &str = "meterbell-local-cursor-secret-do-not-deploy";

/// Notification parameters of the local stack: a sender moto has verified, and webhooks allowed
/// to reach the local receiver on 127.0.0.1. Local use only.
pub const DEV_NOTIFICATION_PARAMS: &[(&str, &str)] = &[
    ("EmailSender", DEV_EMAIL_SENDER),
    ("EmailReplyTo", "support@meterbell.example"),
    ("WebhookAllowPrivateTargets", "true"),
    // The local API (make dev replaces the port with the one it serves on).
    ("PublicApiUrl", "http://127.0.0.1:3000/prod"),
];

pub const DEV_EMAIL_SENDER: &str = "notifications@meterbell.example";

/// The signing secret of the demo user's webhook endpoint under `make dev`. Local use only.
pub const DEV_WEBHOOK_SECRET: &str = "whsec_bWV0ZXJiZWxsLWxvY2FsLXdlYmhvb2stc2VjcmV0ISE=";

pub fn mint(secret: &str, sub: &str, roles: &[&str], ttl_seconds: i64) -> Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": sub, "roles": roles, "iat": now, "exp": now + ttl_seconds});
    Ok(encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}
