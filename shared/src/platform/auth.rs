//! JWT validation (README, "Configuration"): one algorithm chosen by configuration, `sub` and `exp` required,
//! `iss`/`aud` required when configured, a small leeway, roles from the `roles` claim.

use std::collections::{HashMap, HashSet};

use jsonwebtoken::{jwk::JwkSet, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::platform::config::{ConfigError, JwtAlgorithm, JwtConfig, JwtKey};
use crate::platform::domain::{Role, UserId};
use crate::platform::error::ApiError;

/// Who is calling, proven by a verified token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user_id: UserId,
    pub roles: HashSet<Role>,
}

impl Identity {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_admin(&self) -> bool {
        self.has(Role::Admin)
    }

    /// 403 unless the caller holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.has(*r)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::Forbidden(format!(
            "this needs the role {}",
            names.join(" or ")
        )))
    }
}

/// Why a token was refused. Each becomes a 401 with this text.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header")]
    MissingHeader,
    #[error("Authorization header must be 'Bearer <token>'")]
    NotBearer,
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted")]
    WrongAlgorithm,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token issuer is not accepted")]
    WrongIssuer,
    #[error("token lacks the required claim {0}")]
    MissingClaim(String),
    #[error("token key id is unknown")]
    UnknownKey,
    #[error("token subject is not a valid user id: {0}")]
    BadSubject(String),
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        ApiError::Unauthorized(err.to_string())
    }
}

enum Keys {
    One(DecodingKey),
    ByKid(HashMap<String, DecodingKey>),
}

/// Built once at cold start; verifying a token needs no I/O.
pub struct Verifier {
    keys: Keys,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: RolesClaim,
}

/// `roles` as a list, or a single space-separated string as some issuers write it.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum RolesClaim {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

impl Verifier {
    pub fn new(config: &JwtConfig) -> Result<Self, ConfigError> {
        let algorithm = match config.algorithm {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
        };
        let keys = match &config.key {
            JwtKey::Secret(secret) => Keys::One(DecodingKey::from_secret(secret)),
            JwtKey::PublicKeyPem(pem) => {
                let pem = pem.replace("\\n", "\n"); // PEMs often arrive through one-line parameters
                let key = match config.algorithm {
                    JwtAlgorithm::Es256 => DecodingKey::from_ec_pem(pem.as_bytes()),
                    _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
                }
                .map_err(|e| ConfigError(format!("JWT_PUBLIC_KEY is not a usable PEM key: {e}")))?;
                Keys::One(key)
            }
            JwtKey::Jwks(json) => {
                let set: JwkSet = serde_json::from_str(json)
                    .map_err(|e| ConfigError(format!("JWT_JWKS is not a JWKS document: {e}")))?;
                let mut by_kid = HashMap::new();
                for jwk in &set.keys {
                    let kid = jwk.common.key_id.clone().unwrap_or_default();
                    let key = DecodingKey::from_jwk(jwk).map_err(|e| {
                        ConfigError(format!("JWT_JWKS key {kid:?} is unusable: {e}"))
                    })?;
                    by_kid.insert(kid, key);
                }
                if by_kid.is_empty() {
                    return Err(ConfigError("JWT_JWKS holds no keys".into()));
                }
                Keys::ByKid(by_kid)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway_seconds;
        validation.validate_nbf = true;
        validation.required_spec_claims = ["exp", "sub"].iter().map(|s| s.to_string()).collect();
        match &config.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                validation.required_spec_claims.insert("iss".into());
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        Ok(Verifier { keys, validation })
    }

    /// Verifies the value of an `Authorization` header.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Identity, AuthError> {
        let header = header.ok_or(AuthError::MissingHeader)?;
        self.verify(bearer_token(header)?)
    }

    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        // An unparseable header, including `alg: none` which the library does not know, is malformed.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(AuthError::WrongAlgorithm);
        }
        let key = match &self.keys {
            Keys::One(key) => key,
            Keys::ByKid(keys) => match header.kid.as_deref() {
                Some(kid) => keys.get(kid).ok_or(AuthError::UnknownKey)?,
                None if keys.len() == 1 => keys.values().next().ok_or(AuthError::UnknownKey)?,
                None => return Err(AuthError::UnknownKey),
            },
        };
        let data =
            jsonwebtoken::decode::<Claims>(token, key, &self.validation).map_err(classify)?;
        let user_id = UserId::parse(&data.claims.sub).map_err(AuthError::BadSubject)?;
        let roles = match data.claims.roles {
            RolesClaim::None => HashSet::new(),
            RolesClaim::List(list) => list.iter().filter_map(|r| Role::parse(r)).collect(),
            RolesClaim::Text(text) => text.split_whitespace().filter_map(Role::parse).collect(),
        };
        Ok(Identity { user_id, roles })
    }
}

/// The token of a `Bearer` credential. RFC 7235: the scheme is case-insensitive and any run of
/// spaces or tabs may follow it; the token itself (RFC 6750's b64token) holds no whitespace.
fn bearer_token(header: &str) -> Result<&str, AuthError> {
    const BLANK: [char; 2] = [' ', '\t'];
    let (scheme, rest) = header
        .trim_matches(BLANK)
        .split_once(BLANK)
        .ok_or(AuthError::NotBearer)?;
    let token = rest.trim_start_matches(BLANK);
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.contains(char::is_whitespace)
    {
        return Err(AuthError::NotBearer);
    }
    Ok(token)
}

fn classify(err: jsonwebtoken::errors::Error) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as K;
    match err.into_kind() {
        K::InvalidSignature => AuthError::BadSignature,
        K::ExpiredSignature => AuthError::Expired,
        K::ImmatureSignature => AuthError::NotYetValid,
        K::InvalidAudience => AuthError::WrongAudience,
        K::InvalidIssuer => AuthError::WrongIssuer,
        K::InvalidAlgorithm
        | K::MissingAlgorithm
        | K::InvalidAlgorithmName
        | K::UnsupportedAlgorithm => AuthError::WrongAlgorithm,
        K::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim),
        _ => AuthError::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "unit-test-secret-unit-test-secret-0123";

    fn verifier(issuer: Option<&str>, audience: Option<&str>) -> Verifier {
        Verifier::new(&JwtConfig {
            algorithm: JwtAlgorithm::Hs256,
            key: JwtKey::Secret(SECRET.as_bytes().to_vec()),
            issuer: issuer.map(Into::into),
            audience: audience.map(Into::into),
            leeway_seconds: 5,
        })
        .unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn sign(claims: serde_json::Value) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn a_valid_token_yields_the_subject_and_known_roles() {
        let token =
            sign(json!({"sub": "user123", "exp": now() + 60, "roles": ["admin", "astronaut"]}));
        let id = verifier(None, None).verify(&token).unwrap();
        assert_eq!(id.user_id.as_str(), "user123");
        assert!(id.is_admin());
        assert_eq!(id.roles.len(), 1);
    }

    #[test]
    fn a_token_without_exp_is_refused() {
        let token = sign(json!({"sub": "user123"}));
        assert_eq!(
            verifier(None, None).verify(&token),
            Err(AuthError::MissingClaim("exp".into()))
        );
    }

    #[test]
    fn an_expired_token_is_refused_beyond_the_leeway() {
        let token = sign(json!({"sub": "u", "exp": now() - 60}));
        assert_eq!(verifier(None, None).verify(&token), Err(AuthError::Expired));
    }

    #[test]
    fn a_token_from_the_future_is_refused() {
        let token = sign(json!({"sub": "u", "exp": now() + 600, "nbf": now() + 300}));
        assert_eq!(
            verifier(None, None).verify(&token),
            Err(AuthError::NotYetValid)
        );
    }

    #[test]
    fn configured_issuer_and_audience_are_required() {
        let v = verifier(Some("https://issuer"), Some("meterbell"));
        let missing = sign(json!({"sub": "u", "exp": now() + 60}));
        assert!(v.verify(&missing).is_err());
        let wrong =
            sign(json!({"sub": "u", "exp": now() + 60, "iss": "https://issuer", "aud": "other"}));
        assert_eq!(v.verify(&wrong), Err(AuthError::WrongAudience));
        let right = sign(
            json!({"sub": "u", "exp": now() + 60, "iss": "https://issuer", "aud": "meterbell"}),
        );
        assert!(v.verify(&right).is_ok());
    }

    #[test]
    fn alg_none_is_refused() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = b64.encode(format!(r#"{{"sub":"u","exp":{}}}"#, now() + 60));
        let token = format!("{header}.{claims}.");
        assert!(verifier(None, None).verify(&token).is_err());
    }

    #[test]
    fn a_header_without_bearer_is_refused() {
        assert_eq!(
            verifier(None, None).verify_header(Some("Token abc")),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            verifier(None, None).verify_header(None),
            Err(AuthError::MissingHeader)
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_may_be_followed_by_spaces_or_tabs() {
        let token = sign(json!({"sub": "user123", "exp": now() + 60}));
        let v = verifier(None, None);
        for header in [
            format!("Bearer {token}"),
            format!("bearer {token}"),
            format!("BEARER {token}"),
            format!("bEaReR {token}"),
            format!("Bearer\t{token}"),
            format!("Bearer  \t \t{token}"),
            format!("Bearer {token} "),
        ] {
            let id = v.verify_header(Some(&header));
            assert_eq!(
                id.map(|i| i.user_id.to_string()),
                Ok("user123".to_owned()),
                "{header:?}"
            );
        }
    }

    #[test]
    fn a_missing_or_empty_token_another_scheme_or_a_token_with_spaces_is_refused() {
        let token = sign(json!({"sub": "user123", "exp": now() + 60}));
        let v = verifier(None, None);
        for header in [
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            "Bearer \t ".to_owned(),
            "".to_owned(),
            format!("Bearer{token}"),
            format!("Basic {token}"),
            format!("Bearerx {token}"),
            format!("Bearer {token} {token}"),
            format!("Bearer {token}\tx"),
        ] {
            assert_eq!(
                v.verify_header(Some(&header)),
                Err(AuthError::NotBearer),
                "{header:?}"
            );
        }
    }

    #[test]
    fn roles_may_be_a_space_separated_string() {
        let token = sign(json!({"sub": "svc", "exp": now() + 60, "roles": "service admin"}));
        let id = verifier(None, None).verify(&token).unwrap();
        assert!(id.has(Role::Service) && id.has(Role::Admin));
    }
}
