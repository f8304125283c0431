//! Configuration, read once at cold start from the function's environment (which
//! `template.yaml` declares) — or, for the local runner and tests, from any lookup.

use std::fmt;

/// Why a function cannot start: a missing or invalid setting, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Which JWT algorithm every token must carry. Anything else is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
    Es256,
}

impl JwtAlgorithm {
    fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw {
            "HS256" => Ok(Self::Hs256),
            "RS256" => Ok(Self::Rs256),
            "ES256" => Ok(Self::Es256),
            other => Err(ConfigError(format!(
                "JWT_ALGORITHM must be HS256, RS256 or ES256, not {other:?}"
            ))),
        }
    }
}

/// Where the verification key comes from.
#[derive(Clone)]
pub enum JwtKey {
    Secret(Vec<u8>),
    PublicKeyPem(String),
    Jwks(String),
}

impl fmt::Debug for JwtKey {
    // Never print the secret, even in a debug log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKey::Secret(_) => f.write_str("Secret(<redacted>)"),
            JwtKey::PublicKeyPem(_) => f.write_str("PublicKeyPem"),
            JwtKey::Jwks(_) => f.write_str("Jwks"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct JwtConfig {
    pub algorithm: JwtAlgorithm,
    pub key: JwtKey,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_seconds: u64,
}

/// Tables and queues a function may use. Each function's environment names only the ones its
/// IAM policy grants, so each is optional here and asked for where it is used.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    pub events_table: Option<String>,
    pub rollups_table: Option<String>,
    pub notifications_table: Option<String>,
    pub accounts_table: Option<String>,
    pub usage_events_queue_url: Option<String>,
    pub usage_events_dlq_url: Option<String>,
    pub notification_jobs_queue_url: Option<String>,
    pub email_queue_url: Option<String>,
    pub webhook_queue_url: Option<String>,
    /// Where the dispatcher puts a malformed job at once, with its reason.
    pub notification_jobs_dlq_url: Option<String>,
    /// The scheduled rule evaluation's work queue (users to evaluate) and its dead-letter queue.
    pub alert_rules_queue_url: Option<String>,
    pub alert_rules_dlq_url: Option<String>,
    /// The erase work queue (users being erased, a step at a time) and its dead-letter queue.
    pub erase_queue_url: Option<String>,
    pub erase_dlq_url: Option<String>,
    /// Where a bounce or complaint report that cannot be read goes at once.
    pub email_feedback_dlq_url: Option<String>,
    /// Where the hourly anomaly run puts its groups of users for the workers, and where a
    /// malformed group goes at once.
    pub anomaly_scan_queue_url: Option<String>,
    pub anomaly_scan_dlq_url: Option<String>,
    /// Report emails due (queued by the hourly run) and where a malformed message goes.
    pub report_queue_url: Option<String>,
    pub report_dlq_url: Option<String>,
}

/// Delivery settings of the notification functions (template parameters `EmailSender`,
/// `EmailReplyTo`, `WebhookAllowPrivateTargets`, `WebhookRetryDelays`).
#[derive(Clone, Debug)]
pub struct NotificationSettings {
    /// SES `Source` of every email; a verified identity.
    pub email_sender: Option<String>,
    pub email_reply_to: Option<String>,
    /// The SES configuration set every email is sent with: it publishes bounces and
    /// complaints to `EmailFeedbackQueue`.
    pub email_configuration_set: Option<String>,
    /// The API's public base URL (`https://.../prod`): the unsubscribe links point there.
    pub public_api_url: Option<String>,
    /// Local development only: let webhooks reach loopback and private addresses (and plain
    /// `http://`), so a receiver on 127.0.0.1 works. Metadata addresses stay refused.
    pub webhook_allow_private_targets: bool,
    /// Seconds a failed webhook waits before its next attempt: the n-th failure waits the n-th
    /// entry (the last one repeats) through the SQS visibility timeout.
    pub webhook_retry_delays: Vec<u32>,
    /// Whole-request timeout of one webhook attempt.
    pub webhook_timeout_ms: u64,
}

impl NotificationSettings {
    pub const DEFAULT_RETRY_DELAYS: &'static str = "30,120,600,1800,3600,7200,14400";
    pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
}

#[derive(Clone, Debug)]
pub struct Config {
    pub jwt: JwtConfig,
    pub resources: Resources,
    pub cors_allow_origin: String,
    pub retention_days: u32,
    /// Key that seals pagination cursors, so a forged or altered cursor is refused.
    pub cursor_secret: Vec<u8>,
    pub notifications: NotificationSettings,
    /// Balance below which a user gets the "Low Credits" warning, unless they set their own
    /// (template parameter `LowCreditThreshold`).
    pub low_credit_threshold: i64,
    /// The gates of anomaly detection (template parameters `Anomaly*`).
    pub anomaly: crate::analytics::anomaly::Thresholds,
    /// Who hears of system-wide anomalies (`AnomalyAdminUserIds`; none: recorded only).
    pub anomaly_admins: Vec<crate::platform::domain::UserId>,
    /// Tag keys whose values usage is rolled up by (`AttributedTagKeys`).
    pub tag_keys: crate::analytics::attribution::TagKeys,
}

impl Config {
    /// Reads the process environment, as a deployed function does.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`; empty values count as unset, as CloudFormation
    /// parameters left at `""` arrive that way.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let algorithm =
            JwtAlgorithm::parse(&get("JWT_ALGORITHM").unwrap_or_else(|| "HS256".into()))?;
        let key = match algorithm {
            JwtAlgorithm::Hs256 => {
                let secret = get("JWT_SECRET").ok_or_else(|| {
                    ConfigError("JWT_SECRET is not set (template parameter JwtSecret)".into())
                })?;
                // RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
                if secret.len() < 32 {
                    return Err(ConfigError(
                        "JWT_SECRET must be at least 32 bytes long".into(),
                    ));
                }
                JwtKey::Secret(secret.into_bytes())
            }
            JwtAlgorithm::Rs256 | JwtAlgorithm::Es256 => {
                match (get("JWT_PUBLIC_KEY"), get("JWT_JWKS")) {
                    (Some(pem), None) => JwtKey::PublicKeyPem(pem),
                    (None, Some(jwks)) => JwtKey::Jwks(jwks),
                    (Some(_), Some(_)) => {
                        return Err(ConfigError(
                            "set JWT_PUBLIC_KEY or JWT_JWKS, not both".into(),
                        ))
                    }
                    (None, None) => {
                        return Err(ConfigError(
                            "RS256/ES256 need JWT_PUBLIC_KEY (PEM) or JWT_JWKS (JSON)".into(),
                        ))
                    }
                }
            }
        };
        let leeway_seconds = parse_number(get("JWT_LEEWAY_SECONDS"), "JWT_LEEWAY_SECONDS", 30)?;
        let retention_days = parse_number(get("RETENTION_DAYS"), "RETENTION_DAYS", 400)?;
        if retention_days == 0 {
            return Err(ConfigError("RETENTION_DAYS must be at least 1".into()));
        }
        let cursor_secret = get("CURSOR_SECRET").ok_or_else(|| {
            ConfigError("CURSOR_SECRET is not set (template parameter CursorSecret)".into())
        })?;
        if cursor_secret.len() < 32 {
            return Err(ConfigError(
                "CURSOR_SECRET must be at least 32 bytes long".into(),
            ));
        }
        let notifications = NotificationSettings {
            email_sender: get("EMAIL_SENDER"),
            email_reply_to: get("EMAIL_REPLY_TO"),
            email_configuration_set: get("EMAIL_CONFIGURATION_SET"),
            public_api_url: get("PUBLIC_API_URL"),
            webhook_allow_private_targets: parse_bool(
                get("WEBHOOK_ALLOW_PRIVATE_TARGETS"),
                "WEBHOOK_ALLOW_PRIVATE_TARGETS",
            )?,
            webhook_retry_delays: parse_delays(
                get("WEBHOOK_RETRY_DELAYS")
                    .as_deref()
                    .unwrap_or(NotificationSettings::DEFAULT_RETRY_DELAYS),
            )?,
            webhook_timeout_ms: parse_number(
                get("WEBHOOK_TIMEOUT_MS"),
                "WEBHOOK_TIMEOUT_MS",
                NotificationSettings::DEFAULT_TIMEOUT_MS,
            )?,
        };
        if notifications.webhook_timeout_ms == 0 {
            return Err(ConfigError("WEBHOOK_TIMEOUT_MS must be at least 1".into()));
        }
        let low_credit_threshold = parse_number(
            get("LOW_CREDIT_THRESHOLD"),
            "LOW_CREDIT_THRESHOLD",
            crate::seam::low_credits::DEFAULT_THRESHOLD,
        )?;
        if !(0..=crate::seam::low_credits::MAX_THRESHOLD).contains(&low_credit_threshold) {
            return Err(ConfigError(
                "LOW_CREDIT_THRESHOLD must be between 0 and 1000000000".into(),
            ));
        }
        let anomaly = anomaly_thresholds(&get)?;
        let anomaly_admins = get("ANOMALY_ADMIN_USER_IDS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                crate::platform::domain::UserId::parse(u)
                    .map_err(|why| ConfigError(format!("ANOMALY_ADMIN_USER_IDS: {u:?} {why}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            anomaly,
            anomaly_admins,
            low_credit_threshold,
            notifications,
            cursor_secret: cursor_secret.into_bytes(),
            jwt: JwtConfig {
                algorithm,
                key,
                issuer: get("JWT_ISSUER"),
                audience: get("JWT_AUDIENCE"),
                leeway_seconds,
            },
            resources: Resources {
                events_table: get("EVENTS_TABLE"),
                rollups_table: get("ROLLUPS_TABLE"),
                notifications_table: get("NOTIFICATIONS_TABLE"),
                accounts_table: get("ACCOUNTS_TABLE"),
                usage_events_queue_url: get("USAGE_EVENTS_QUEUE_URL"),
                usage_events_dlq_url: get("USAGE_EVENTS_DLQ_URL"),
                notification_jobs_queue_url: get("NOTIFICATION_JOBS_QUEUE_URL"),
                email_queue_url: get("EMAIL_QUEUE_URL"),
                webhook_queue_url: get("WEBHOOK_QUEUE_URL"),
                notification_jobs_dlq_url: get("NOTIFICATION_JOBS_DLQ_URL"),
                alert_rules_queue_url: get("ALERT_RULES_QUEUE_URL"),
                alert_rules_dlq_url: get("ALERT_RULES_DLQ_URL"),
                erase_queue_url: get("ERASE_QUEUE_URL"),
                erase_dlq_url: get("ERASE_DLQ_URL"),
                email_feedback_dlq_url: get("EMAIL_FEEDBACK_DLQ_URL"),
                report_queue_url: get("REPORT_QUEUE_URL"),
                report_dlq_url: get("REPORT_DLQ_URL"),
                anomaly_scan_queue_url: get("ANOMALY_SCAN_QUEUE_URL"),
                anomaly_scan_dlq_url: get("ANOMALY_SCAN_DLQ_URL"),
            },
            cors_allow_origin: get("CORS_ALLOW_ORIGIN").unwrap_or_else(|| "*".into()),
            retention_days,
            tag_keys: crate::analytics::attribution::TagKeys::parse(
                get("ATTRIBUTED_TAG_KEYS").as_deref(),
            )?,
        })
    }
}

/// The anomaly gates from `ANOMALY_SCORE_THRESHOLD`, `ANOMALY_DOLLAR_FLOOR` (USD),
/// `ANOMALY_RELATIVE_EXCESS_PERCENT`, `ANOMALY_MIN_REQUESTS`, `ANOMALY_BASELINE_WEEKS` and
/// `ANOMALY_QUIET_DAYS`; each absent one keeps its default.
fn anomaly_thresholds(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::analytics::anomaly::Thresholds, ConfigError> {
    let d = crate::analytics::anomaly::Thresholds::default();
    let decimal = |name: &str, default: f64, min: f64, max: f64| -> Result<f64, ConfigError> {
        let v = match get(name) {
            None => default,
            Some(raw) => raw
                .trim()
                .parse::<f64>()
                .map_err(|_| ConfigError(format!("{name} must be a number, not {raw:?}")))?,
        };
        if !(min..=max).contains(&v) {
            return Err(ConfigError(format!(
                "{name} must be between {min} and {max}"
            )));
        }
        Ok(v)
    };
    let floor_usd = decimal(
        "ANOMALY_DOLLAR_FLOOR",
        d.floor_micros as f64 / 1e6,
        0.0,
        1_000_000.0,
    )?;
    Ok(crate::analytics::anomaly::Thresholds {
        score: decimal("ANOMALY_SCORE_THRESHOLD", d.score, 1.0, 100.0)?,
        floor_micros: (floor_usd * 1e6).round() as i64,
        relative_pct: decimal(
            "ANOMALY_RELATIVE_EXCESS_PERCENT",
            d.relative_pct,
            0.0,
            10_000.0,
        )?,
        min_requests: decimal("ANOMALY_MIN_REQUESTS", d.min_requests as f64, 1.0, 1e9)? as u64,
        baseline_weeks: decimal("ANOMALY_BASELINE_WEEKS", d.baseline_weeks as f64, 2.0, 8.0)?
            as usize,
        quiet_days: decimal("ANOMALY_QUIET_DAYS", d.quiet_days as f64, 1.0, 365.0)? as i64,
    })
}

fn parse_number<T: std::str::FromStr>(
    raw: Option<String>,
    name: &str,
    default: T,
) -> Result<T, ConfigError> {
    match raw {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| ConfigError(format!("{name} must be a whole number, not {v:?}"))),
    }
}

fn parse_bool(raw: Option<String>, name: &str) -> Result<bool, ConfigError> {
    match raw.as_deref().map(str::trim) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ConfigError(format!(
            "{name} must be true or false, not {v:?}"
        ))),
    }
}

/// SQS visibility timeouts are at most 12 hours.
fn parse_delays(raw: &str) -> Result<Vec<u32>, ConfigError> {
    let delays: Vec<u32> = raw
        .split(',')
        .map(|d| d.trim().parse::<u32>().ok().filter(|d| *d <= 43_200))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            ConfigError(format!(
                "WEBHOOK_RETRY_DELAYS must be comma-separated seconds, each at most 43200, not {raw:?}"
            ))
        })?;
    Ok(delays)
}

/// Settings that may come from AWS Secrets Manager instead: `<NAME>_ARN` (template parameters
/// `JwtSecretArn`, `CursorSecretArn`) names a secret whose `SecretString` is the value. The
/// function reads them once at cold start (`App::start`).
pub const SECRET_SETTINGS: &[&str] = &["JWT_SECRET", "CURSOR_SECRET"];

/// `(setting, secret ARN)` for each of [`SECRET_SETTINGS`] given as a secret. Giving a setting
/// both ways is refused, so it is never unclear which one is in force.
pub fn secret_references(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let mut refs = Vec::new();
    for name in SECRET_SETTINGS {
        let arn_variable = format!("{name}_ARN");
        if let Some(arn) = get(&arn_variable) {
            if get(name).is_some() {
                return Err(ConfigError(format!(
                    "set {name} or {arn_variable}, not both"
                )));
            }
            refs.push((*name, arn.trim().to_owned()));
        }
    }
    Ok(refs)
}

/// Names a resource the function needs but its environment lacks: a template mistake.
pub fn require<'a>(value: &'a Option<String>, variable: &str) -> Result<&'a str, ConfigError> {
    value.as_deref().ok_or_else(|| {
        ConfigError(format!(
            "{variable} is not set in this function's environment"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn hs256_without_a_secret_is_refused_with_the_parameter_named() {
        let err = Config::from_lookup(lookup(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET", "")]))
            .unwrap_err();
        assert!(err.to_string().contains("JwtSecret"), "{err}");
    }

    #[test]
    fn a_short_hs256_secret_is_refused() {
        let err = Config::from_lookup(lookup(&[("JWT_SECRET", "short")])).unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }

    #[test]
    fn rs256_needs_exactly_one_key_source() {
        assert!(Config::from_lookup(lookup(&[("JWT_ALGORITHM", "RS256")])).is_err());
        assert!(Config::from_lookup(lookup(&[
            ("JWT_ALGORITHM", "RS256"),
            ("JWT_PUBLIC_KEY", "pem"),
            ("JWT_JWKS", "{}")
        ]))
        .is_err());
    }

    #[test]
    fn the_low_credit_threshold_defaults_to_1000_and_is_checked() {
        let with = |raw: &str| {
            Config::from_lookup(lookup(&[
                ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("CURSOR_SECRET", "cursor-secret-cursor-secret-cursor-secret"),
                ("LOW_CREDIT_THRESHOLD", raw),
            ]))
        };
        assert_eq!(with("").unwrap().low_credit_threshold, 1_000);
        assert_eq!(with("250").unwrap().low_credit_threshold, 250);
        for bad in ["-1", "1000000001", "1.5", "lots"] {
            let err = with(bad).unwrap_err();
            assert!(err.to_string().contains("LOW_CREDIT_THRESHOLD"), "{err}");
        }
    }

    #[test]
    fn the_anomaly_gates_default_and_are_checked() {
        let with = |name: &str, raw: &str| {
            Config::from_lookup(lookup(&[
                ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                ("CURSOR_SECRET", "cursor-secret-cursor-secret-cursor-secret"),
                (name, raw),
            ]))
        };
        let defaults = with("ANOMALY_DOLLAR_FLOOR", "").unwrap().anomaly;
        assert_eq!(defaults, crate::analytics::anomaly::Thresholds::default());
        let set = with("ANOMALY_DOLLAR_FLOOR", "2.5").unwrap().anomaly;
        assert_eq!(set.floor_micros, 2_500_000);
        assert_eq!(
            with("ANOMALY_SCORE_THRESHOLD", "6").unwrap().anomaly.score,
            6.0
        );
        let admins = with("ANOMALY_ADMIN_USER_IDS", "ops-1, ops-2").unwrap();
        assert_eq!(admins.anomaly_admins.len(), 2);
        for (name, bad) in [
            ("ANOMALY_ADMIN_USER_IDS", "ops-1,bad#id"),
            ("ANOMALY_SCORE_THRESHOLD", "0"),
            ("ANOMALY_DOLLAR_FLOOR", "-1"),
            ("ANOMALY_RELATIVE_EXCESS_PERCENT", "lots"),
            ("ANOMALY_MIN_REQUESTS", "0"),
            ("ANOMALY_QUIET_DAYS", "366"),
        ] {
            let err = with(name, bad).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn unset_resources_are_none_and_empty_ones_too() {
        let config = Config::from_lookup(lookup(&[
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("CURSOR_SECRET", "cursor-secret-cursor-secret-cursor-secret"),
            ("NOTIFICATIONS_TABLE", "Notifications"),
            ("EVENTS_TABLE", ""),
        ]))
        .unwrap();
        assert_eq!(
            config.resources.notifications_table.as_deref(),
            Some("Notifications")
        );
        assert_eq!(config.resources.events_table, None);
        assert_eq!(config.retention_days, 400);
    }

    #[test]
    fn webhook_delivery_defaults_to_a_five_second_timeout_and_a_growing_schedule() {
        let config = Config::from_lookup(lookup(&[
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("CURSOR_SECRET", "cursor-secret-cursor-secret-cursor-secret"),
        ]))
        .unwrap();
        let n = &config.notifications;
        assert_eq!(n.webhook_timeout_ms, 5_000);
        assert!(!n.webhook_allow_private_targets);
        assert_eq!(
            n.webhook_retry_delays,
            vec![30, 120, 600, 1800, 3600, 7200, 14400]
        );
        assert!(n.webhook_retry_delays.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn bad_webhook_settings_are_refused_with_the_variable_named() {
        let base = [
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("CURSOR_SECRET", "cursor-secret-cursor-secret-cursor-secret"),
        ];
        for (name, value) in [
            ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "yes"),
            ("WEBHOOK_RETRY_DELAYS", "30,x"),
            ("WEBHOOK_RETRY_DELAYS", "50000"),
            ("WEBHOOK_TIMEOUT_MS", "0"),
        ] {
            let mut pairs = base.to_vec();
            pairs.push((name, value));
            let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn secrets_may_be_named_by_arn_but_not_given_twice() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwt-AbCdEf";
        let refs =
            secret_references(lookup(&[("JWT_SECRET_ARN", arn), ("JWT_SECRET", "")])).unwrap();
        assert_eq!(refs, vec![("JWT_SECRET", arn.to_owned())]);
        assert!(secret_references(lookup(&[("CURSOR_SECRET", "x")]))
            .unwrap()
            .is_empty());
        let err = secret_references(lookup(&[
            ("CURSOR_SECRET_ARN", arn),
            ("CURSOR_SECRET", "y".repeat(32).as_str()),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
    }

    #[test]
    fn an_unknown_algorithm_is_refused() {
        assert!(Config::from_lookup(lookup(&[("JWT_ALGORITHM", "none")])).is_err());
    }
}
