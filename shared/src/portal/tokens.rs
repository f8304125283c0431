//! `POST /api/v1/portal/tokens` (service or admin): a short-lived token for one user, for the
//! portal page. The platform's backend, which knows who its customer is, asks for it and links
//! to `portal#token=...`; the fragment never reaches a server log, and the page keeps the token
//! in memory only. A portal token is an ordinary Meterbell token (the same issuer, audience and
//! key) that expires within the hour.

use http::StatusCode;
use jsonwebtoken::{encode, EncodingKey, Header};
use lambda_http::Request;
use serde::{Deserialize, Serialize};

use crate::platform::app::App;
use crate::platform::config::JwtKey;
use crate::platform::domain::{Role, UserId};
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{authenticate, json, object_body, HttpResponse, Params};

const DEFAULT_TTL: i64 = 900;
const MIN_TTL: i64 = 60;
const MAX_TTL: i64 = 3600;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintBody {
    user_id: String,
    #[serde(default)]
    ttl_seconds: Option<i64>,
    /// An admin portal (overview, active and top users); only an admin may ask for one.
    #[serde(default)]
    admin: bool,
}

#[derive(Serialize)]
struct Minted {
    token: String,
    user_id: String,
    expires_at: String,
    /// Where to send the user, relative to the stage's base URL.
    portal_path: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    roles: Vec<&'a str>,
    iat: i64,
    exp: i64,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

http_handler!(
    /// `POST /api/v1/portal/tokens` — 201 `{token, user_id, expires_at, portal_path}`.
    mint => post_token
);

async fn post_token(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(app, req)?;
    caller.require_any(&[Role::Service, Role::Admin])?;
    Params::parse(req, &[])?;
    let body: MintBody = object_body(req, 4096)?;
    let user = UserId::parse(&body.user_id)
        .map_err(|why| ApiError::invalid("user_id", format!("user_id {why}")))?;
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL);
    if !(MIN_TTL..=MAX_TTL).contains(&ttl) {
        return Err(ApiError::invalid(
            "ttl_seconds",
            format!("ttl_seconds must be between {MIN_TTL} and {MAX_TTL}"),
        ));
    }
    if body.admin && !caller.is_admin() {
        return Err(ApiError::Forbidden(
            "only an admin may mint an admin portal token".into(),
        ));
    }
    let jwt = &app.config().jwt;
    // With RS256/ES256 the bundle holds only the public key: the platform mints its own tokens.
    let JwtKey::Secret(secret) = &jwt.key else {
        return Err(ApiError::Conflict(
            "this deployment verifies RS256/ES256 tokens and holds no signing key; mint portal \
             tokens with your own issuer"
                .into(),
        ));
    };
    let now = chrono::Utc::now();
    let exp = now.timestamp() + ttl;
    let claims = Claims {
        sub: user.as_str(),
        roles: if body.admin { vec!["admin"] } else { vec![] },
        iat: now.timestamp(),
        exp,
        scope: "portal",
        iss: jwt.issuer.as_deref(),
        aud: jwt.audience.as_deref(),
    };
    let token = encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| ApiError::Unexpected(e.into()))?;
    let expires_at = chrono::DateTime::from_timestamp(exp, 0)
        .unwrap_or(now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let portal_path = format!("portal#token={token}");
    json(
        app,
        StatusCode::CREATED,
        &Minted {
            token,
            user_id: user.to_string(),
            expires_at,
            portal_path,
        },
    )
}
