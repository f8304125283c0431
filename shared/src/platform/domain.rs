//! Types a handler can trust once it holds them: parse, don't validate.

use std::fmt;

/// A user id as upstream systems and JWT `sub` claims carry it.
///
/// Limited to characters that cannot collide with the `#` separators of storage keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        if let Some(bad) = raw.chars().find(|c| {
            !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@' | '+' | '|'))
        }) {
            return Err(format!(
                "may hold only letters, digits and - _ . : @ + | (found {bad:?})"
            ));
        }
        Ok(UserId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Roles a token may grant through its `roles` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sees and acts on any user's data, and system-wide figures.
    Admin,
    /// An upstream system: may ingest usage events.
    Service,
}

impl Role {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "admin" => Some(Role::Admin),
            "service" => Some(Role::Service),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_id_with_a_key_separator_is_refused() {
        assert!(UserId::parse("alice#D").is_err());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn ordinary_user_ids_are_accepted() {
        for id in [
            "user123",
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "alice@example.com",
            "org:42",
        ] {
            assert_eq!(UserId::parse(id).unwrap().as_str(), id);
        }
    }
}
