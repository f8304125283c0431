//! Notification preferences: per type × channel on/off, and the address email goes to.
//! The in-app inbox is always on; email needs an address, webhooks an enabled endpoint.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::notifications::channels::{Channel, IN_APP};
use crate::notifications::notification::NotificationType;
use crate::notifications::timing::{DigestFrequency, LocalTime, QuietHours};

/// An email address SES can send to: `local@domain`, checked conservatively (no quoted local
/// parts, no comments, no display names), domain lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        let (local, domain) = raw
            .split_once('@')
            .ok_or_else(|| "must look like name@example.com".to_owned())?;
        if local.is_empty() || local.len() > 64 {
            return Err("must have 1 to 64 characters before the @".into());
        }
        let local_ok = local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        if !local_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err("has characters that are not allowed before the @".into());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err("must have a domain with a dot after the @".into());
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err("has a domain that is not a valid host name".into());
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        {
            return Err("has a domain that is not a valid host name".into());
        }
        Ok(EmailAddress(format!(
            "{local}@{}",
            domain.to_ascii_lowercase()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// On/off per notification type for one channel; every type is on until switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeSwitches([bool; TYPES]);

const TYPES: usize = NotificationType::ALL.len();

impl Default for TypeSwitches {
    fn default() -> Self {
        TypeSwitches([true; TYPES])
    }
}

impl TypeSwitches {
    pub fn allows(&self, kind: NotificationType) -> bool {
        self.0[kind.index()]
    }

    pub fn set(&mut self, kind: NotificationType, on: bool) {
        self.0[kind.index()] = on;
    }

    /// On for `kinds` only.
    pub fn only(kinds: &[NotificationType]) -> Self {
        let mut s = TypeSwitches([false; TYPES]);
        for &k in kinds {
            s.set(k, true);
        }
        s
    }
}

/// The types that skip digests and quiet hours and go out at once; `error` until the user
/// chooses otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Bypass(pub TypeSwitches);

impl Default for Bypass {
    fn default() -> Self {
        Bypass(TypeSwitches::only(&[NotificationType::Error]))
    }
}

impl Bypass {
    pub fn allows(&self, kind: NotificationType) -> bool {
        self.0.allows(kind)
    }

    pub fn set(&mut self, kind: NotificationType, on: bool) {
        self.0.set(kind, on);
    }
}

/// `{"info": true, "warning": true, ...}`, in the order of the types.
impl Serialize for TypeSwitches {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = ser.serialize_map(Some(TYPES))?;
        for &kind in NotificationType::ALL {
            map.serialize_entry(kind.as_str(), &self.allows(kind))?;
        }
        map.end()
    }
}

const CHANNELS: usize = Channel::ALL.len();

/// The largest low-credit threshold a user may set.
pub const MAX_LOW_CREDIT_THRESHOLD: i64 = 1_000_000_000;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Preferences {
    pub email_address: Option<EmailAddress>,
    switches: [TypeSwitches; CHANNELS],
    /// The user's own low-credit threshold; `None` follows the deployment's default.
    pub low_credit_threshold: Option<i64>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Email is paused: the address bounced for good or its owner marked our email as spam.
    /// Setting another address (or the same one again) lifts it.
    pub email_suppressed: Option<Suppression>,
    /// Usage report emails the user asked for.
    pub reports: Reports,
    /// The user's time zone (IANA), for report emails at 08:00 local time, digests and quiet
    /// hours; `None`: UTC.
    pub tz: Option<String>,
    /// How often `info` and `success` emails are batched into one digest.
    pub digest_email: DigestFrequency,
    /// When email and webhooks wait (local time in `tz`).
    pub quiet_hours: Option<QuietHours>,
    /// The types that skip digests and quiet hours.
    pub bypass: Bypass,
}

/// Which usage report emails a user gets (each at 08:00 in their zone: the daily one every day,
/// the weekly one on Mondays, the monthly one on the 1st).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reports {
    pub daily: bool,
    pub weekly: bool,
    pub monthly: bool,
    /// Admins: the reports switched on come as the platform's (system-wide) report instead of
    /// the user's own. Only an admin's token may switch it on.
    #[serde(default)]
    pub system: bool,
}

impl Reports {
    pub const NAMES: [&'static str; 3] = ["daily", "weekly", "monthly"];
    /// What `reports` may switch: the reports, and whose figures they show.
    pub const SWITCHES: [&'static str; 4] = ["daily", "weekly", "monthly", "system"];

    pub fn any(&self) -> bool {
        self.daily || self.weekly || self.monthly
    }

    pub fn get(&self, name: &str) -> bool {
        match name {
            "daily" => self.daily,
            "weekly" => self.weekly,
            "monthly" => self.monthly,
            "system" => self.system,
            _ => false,
        }
    }
}

/// Why and since when email to an address is paused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub email_address: String,
    /// `bounce` or `complaint`.
    pub reason: String,
    pub detail: String,
    #[serde(serialize_with = "crate::notifications::notification::serialize_timestamp")]
    pub at: DateTime<Utc>,
}

impl Preferences {
    pub fn switches(&self, channel: Channel) -> &TypeSwitches {
        &self.switches[channel.index()]
    }

    pub fn switches_mut(&mut self, channel: Channel) -> &mut TypeSwitches {
        &mut self.switches[channel.index()]
    }

    /// Whether the user wants `channel` for notifications of `kind`.
    pub fn allows(&self, channel: Channel, kind: NotificationType) -> bool {
        self.switches(channel).allows(kind)
    }

    /// The address to email about a notification of `kind`, if the user wants that email (and
    /// the address is not suppressed).
    pub fn email_for(&self, kind: NotificationType) -> Option<&EmailAddress> {
        self.email_address
            .as_ref()
            .filter(|_| self.allows(Channel::Email, kind))
            .filter(|a| !self.is_suppressed(a))
    }

    /// Whether email to `address` is paused.
    pub fn is_suppressed(&self, address: &EmailAddress) -> bool {
        self.email_suppressed
            .as_ref()
            .is_some_and(|s| s.email_address == address.as_str())
    }

    pub fn view(&self) -> PreferencesView {
        PreferencesView {
            email_address: self.email_address.as_ref().map(|a| a.to_string()),
            channels: ChannelsView(self.switches),
            low_credit_threshold: self.low_credit_threshold,
            updated_at: self
                .updated_at
                .map(crate::notifications::notification::timestamp),
            email_suppressed: self.email_suppressed.clone(),
            reports: self.reports,
            tz: self.tz.clone(),
            digest: DigestView {
                email: self.digest_email,
            },
            quiet_hours: self.quiet_hours.map(|q| QuietHoursView {
                start: q.start.to_string(),
                end: q.end.to_string(),
            }),
            bypass: self.bypass,
        }
    }
}

/// `{"email": "hourly"}`: the channels with digests (webhooks deliver one event at a time).
#[derive(Serialize)]
pub struct DigestView {
    pub email: DigestFrequency,
}

#[derive(Serialize)]
pub struct QuietHoursView {
    pub start: String,
    pub end: String,
}

/// `GET notifications/preferences`.
#[derive(Serialize)]
pub struct PreferencesView {
    pub email_address: Option<String>,
    pub channels: ChannelsView,
    pub low_credit_threshold: Option<i64>,
    pub updated_at: Option<String>,
    /// Present while email is paused for the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_suppressed: Option<Suppression>,
    pub reports: Reports,
    pub tz: Option<String>,
    pub digest: DigestView,
    pub quiet_hours: Option<QuietHoursView>,
    pub bypass: Bypass,
}

/// `{"in_app": {...}, "email": {...}, "webhook": {...}}`: the inbox is always on, and shown so
/// clients can render the whole matrix.
pub struct ChannelsView([TypeSwitches; CHANNELS]);

impl Serialize for ChannelsView {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = ser.serialize_map(Some(CHANNELS + 1))?;
        map.serialize_entry(IN_APP, &TypeSwitches::default())?;
        for &channel in Channel::ALL {
            map.serialize_entry(channel.as_str(), &self.0[channel.index()])?;
        }
        map.end()
    }
}

/// `PUT notifications/preferences`: every field optional; the ones given replace the stored
/// values, the others stay as they are. Unknown fields, channels and types are refused (by the
/// channel and type lists, which name what is allowed).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesUpdate {
    /// `null` removes the address; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    pub email_address: Option<Option<String>>,
    /// Keyed by name, checked against the lists in [`PreferencesUpdate::check`], so that an
    /// error names the exact field (`channels.email.info`).
    #[serde(default)]
    pub channels: Option<BTreeMap<String, BTreeMap<String, bool>>>,
    /// Credits; `null` returns to the deployment's default; absent leaves it. Any JSON value
    /// here, so that a wrong one is refused naming this field.
    #[serde(default, deserialize_with = "present")]
    pub low_credit_threshold: Option<Option<serde_json::Value>>,
    /// `{"daily": true, "weekly": false, ...}`: the report emails to switch.
    #[serde(default)]
    pub reports: Option<BTreeMap<String, bool>>,
    /// An IANA time zone (offset by whole quarter hours, as every zone is today), or `null` for UTC.
    #[serde(default, deserialize_with = "present")]
    pub tz: Option<Option<String>>,
    /// `{"email": "off" | "hourly" | "daily"}`. Any JSON, checked in [`PreferencesUpdate::check`]
    /// so that an error names the exact field.
    #[serde(default)]
    pub digest: Option<serde_json::Value>,
    /// `{"start": "22:00", "end": "07:00"}`, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    pub quiet_hours: Option<Option<serde_json::Value>>,
    /// `{"error": true, "info": false, ...}`: the types that skip digests and quiet hours.
    #[serde(default)]
    pub bypass: Option<serde_json::Value>,
}

/// A checked update: the address parsed, the switches to set.
#[derive(Debug, Default, PartialEq)]
pub struct CheckedUpdate {
    pub email_address: Option<Option<EmailAddress>>,
    pub switches: Vec<(Channel, NotificationType, bool)>,
    /// `Some(None)`: back to the deployment's default.
    pub low_credit_threshold: Option<Option<i64>>,
    /// (report name, on) pairs.
    pub reports: Vec<(&'static str, bool)>,
    /// `Some(None)`: back to UTC.
    pub tz: Option<Option<String>>,
    pub digest_email: Option<DigestFrequency>,
    /// `Some(None)`: no quiet hours.
    pub quiet_hours: Option<Option<QuietHours>>,
    /// (type, bypasses) pairs.
    pub bypass: Vec<(NotificationType, bool)>,
}

impl PreferencesUpdate {
    /// Checks the address; `Err((field, message))` otherwise.
    pub fn check(self) -> Result<CheckedUpdate, (String, String)> {
        let email_address =
            match self.email_address {
                None => None,
                Some(None) => Some(None),
                Some(Some(raw)) => Some(Some(EmailAddress::parse(&raw).map_err(|why| {
                    ("email_address".to_owned(), format!("email_address {why}"))
                })?)),
            };
        let mut switches = vec![];
        for (channel_name, kinds) in self.channels.unwrap_or_default() {
            let field = format!("channels.{channel_name}");
            let channel = Channel::parse(&channel_name).ok_or_else(|| {
                let message = format!(
                    "{field}: the channels to switch are {} ({IN_APP} is always on)",
                    Channel::names("and")
                );
                (field.clone(), message)
            })?;
            for (kind_name, on) in kinds {
                let kind = NotificationType::parse(&kind_name).ok_or_else(|| {
                    let field = format!("{field}.{kind_name}");
                    let message =
                        format!("{field}: the types are {}", NotificationType::names("and"));
                    (field, message)
                })?;
                switches.push((channel, kind, on));
            }
        }
        let low_credit_threshold = match self.low_credit_threshold {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => Some(Some(
                raw.as_i64()
                    .filter(|t| (0..=MAX_LOW_CREDIT_THRESHOLD).contains(t))
                    .ok_or_else(|| {
                        (
                            "low_credit_threshold".to_owned(),
                            format!(
                                "low_credit_threshold must be a whole number of credits from 0 \
                                 to {MAX_LOW_CREDIT_THRESHOLD}, or null for the default"
                            ),
                        )
                    })?,
            )),
        };
        let mut reports = vec![];
        for (name, on) in self.reports.unwrap_or_default() {
            let known = Reports::SWITCHES
                .iter()
                .find(|n| **n == name)
                .ok_or_else(|| {
                    (
                        format!("reports.{name}"),
                        format!(
                        "reports.{name}: the reports are daily, weekly and monthly (and system, \
                         for admins: the platform's report instead of your own)"
                    ),
                    )
                })?;
            reports.push((*known, on));
        }
        let tz = match self.tz {
            None => None,
            Some(None) => Some(None),
            Some(Some(name)) => Some(Some(check_zone(&name).map_err(|m| ("tz".to_owned(), m))?)),
        };
        let digest_email = self.digest.map(check_digest).transpose()?;
        let quiet_hours = match self.quiet_hours {
            None => None,
            Some(None) => Some(None),
            Some(Some(v)) => Some(Some(check_quiet_hours(&v)?)),
        };
        let bypass = self.bypass.map(|v| check_bypass(&v)).transpose()?;
        Ok(CheckedUpdate {
            email_address,
            switches,
            low_credit_threshold,
            reports,
            tz,
            digest_email,
            quiet_hours,
            bypass: bypass.unwrap_or_default(),
        })
    }
}

type FieldError = (String, String);

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    (field.to_owned(), message.into())
}

/// `{"email": "hourly"}`: the email digest's frequency.
fn check_digest(v: serde_json::Value) -> Result<DigestFrequency, FieldError> {
    let serde_json::Value::Object(map) = v else {
        return Err(field_error(
            "digest",
            r#"digest must be an object such as {"email": "hourly"}"#,
        ));
    };
    let mut out = None;
    for (channel, value) in map {
        let field = format!("digest.{channel}");
        if channel != Channel::Email.as_str() {
            return Err(field_error(
                &field,
                format!(
                    "{field}: only email has digests (webhooks deliver each notification on its \
                     own; quiet hours still hold them)"
                ),
            ));
        }
        let frequency = value
            .as_str()
            .and_then(DigestFrequency::parse)
            .ok_or_else(|| {
                field_error(
                    &field,
                    format!("{field} must be {}", DigestFrequency::names("or")),
                )
            })?;
        out = Some(frequency);
    }
    out.ok_or_else(|| field_error("digest.email", "digest.email is required"))
}

/// `{"start": "22:00", "end": "07:00"}`: both times, `HH:MM`, different.
fn check_quiet_hours(v: &serde_json::Value) -> Result<QuietHours, FieldError> {
    let serde_json::Value::Object(map) = v else {
        return Err(field_error(
            "quiet_hours",
            r#"quiet_hours must be an object such as {"start": "22:00", "end": "07:00"}, or null"#,
        ));
    };
    if let Some(other) = map.keys().find(|k| *k != "start" && *k != "end") {
        let field = format!("quiet_hours.{other}");
        return Err(field_error(
            &field,
            format!("{field}: quiet_hours has start and end only"),
        ));
    }
    let time = |name: &str| {
        let field = format!("quiet_hours.{name}");
        let raw = map
            .get(name)
            .ok_or_else(|| field_error(&field, format!("{field} is required")))?;
        raw.as_str().and_then(LocalTime::parse).ok_or_else(|| {
            field_error(
                &field,
                format!(
                    "{field} must be a time of day as HH:MM on a 24-hour clock (00:00 to 23:59), \
                     not {raw}"
                ),
            )
        })
    };
    QuietHours::new(time("start")?, time("end")?)
}

/// `{"error": true, "info": false}`: the types that skip digests and quiet hours.
fn check_bypass(v: &serde_json::Value) -> Result<Vec<(NotificationType, bool)>, FieldError> {
    let serde_json::Value::Object(map) = v else {
        return Err(field_error(
            "bypass",
            r#"bypass must be an object of types, such as {"error": true}"#,
        ));
    };
    let mut out = vec![];
    for (name, on) in map {
        let field = format!("bypass.{name}");
        let kind = NotificationType::parse(name).ok_or_else(|| {
            field_error(
                &field,
                format!("{field}: the types are {}", NotificationType::names("and")),
            )
        })?;
        let on = on
            .as_bool()
            .ok_or_else(|| field_error(&field, format!("{field} must be true or false")))?;
        out.push((kind, on));
    }
    Ok(out)
}

/// An IANA zone whose offset is whole quarter hours all year (the reports are cut on
/// quarter-hour rollups): Asia/Kolkata and Asia/Kathmandu are; some historical zones are not.
fn check_zone(name: &str) -> Result<String, String> {
    let zone = jiff::tz::TimeZone::get(name)
        .map_err(|_| format!("tz must be an IANA time zone such as Europe/Paris, not {name:?}"))?;
    let now = jiff::Timestamp::now();
    for days in [0, 91, 182, 273] {
        let t = now
            .checked_add(jiff::SignedDuration::from_hours(24 * days))
            .unwrap_or(now);
        if zone.to_offset(t).seconds() % 900 != 0 {
            return Err(format!(
                "{name} is offset from UTC by a fraction of a quarter hour, which quarter-hour \
                 rollups cannot split; use another zone or UTC"
            ));
        }
    }
    Ok(name.to_owned())
}

/// Distinguishes a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_addresses_are_accepted_and_their_domain_lower_cased() {
        for (raw, stored) in [
            ("alice@example.com", "alice@example.com"),
            (
                "Bob.Smith+tag@Mail.Example.CO.uk",
                "Bob.Smith+tag@mail.example.co.uk",
            ),
            ("x_y-z@sub-domain.example.io", "x_y-z@sub-domain.example.io"),
        ] {
            assert_eq!(EmailAddress::parse(raw).unwrap().as_str(), stored);
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for raw in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "alice@@example.com",
            "al ice@example.com",
            "alice@exa mple.com",
            ".alice@example.com",
            "al..ice@example.com",
            "alice@-example.com",
            "alice@example..com",
            "Alice <alice@example.com>",
            "alice@example.com\r\nBcc: x@y.com",
            "alice@127.0.0.1",
        ] {
            assert!(EmailAddress::parse(raw).is_err(), "{raw:?} was accepted");
        }
        assert!(EmailAddress::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
        assert!(EmailAddress::parse(&format!("a@{}.com", "b".repeat(250))).is_err());
    }

    #[test]
    fn email_goes_out_only_with_an_address_and_the_type_switched_on() {
        let mut p = Preferences::default();
        assert_eq!(p.email_for(NotificationType::Info), None);
        p.email_address = Some(EmailAddress::parse("a@example.com").unwrap());
        assert!(p.email_for(NotificationType::Info).is_some());
        p.switches_mut(Channel::Email)
            .set(NotificationType::Info, false);
        assert_eq!(p.email_for(NotificationType::Info), None);
        assert!(p.email_for(NotificationType::Error).is_some());
    }

    #[test]
    fn a_low_credit_threshold_is_a_whole_number_in_range_or_null() {
        let check = |body: &str| {
            serde_json::from_str::<PreferencesUpdate>(body)
                .unwrap()
                .check()
                .map(|u| u.low_credit_threshold)
        };
        assert_eq!(check(r#"{}"#), Ok(None));
        assert_eq!(check(r#"{"low_credit_threshold": null}"#), Ok(Some(None)));
        assert_eq!(check(r#"{"low_credit_threshold": 0}"#), Ok(Some(Some(0))));
        assert_eq!(
            check(r#"{"low_credit_threshold": 1000000000}"#),
            Ok(Some(Some(1_000_000_000)))
        );
        for bad in ["-1", "1000000001", "1.5", "10.0", "\"500\"", "true", "[1]"] {
            let (field, _) = check(&format!(r#"{{"low_credit_threshold": {bad}}}"#)).unwrap_err();
            assert_eq!(field, "low_credit_threshold", "{bad}");
        }
    }

    #[test]
    fn digests_quiet_hours_and_bypass_are_checked_naming_the_field() {
        let check = |body: serde_json::Value| {
            serde_json::from_value::<PreferencesUpdate>(body)
                .unwrap()
                .check()
        };
        let ok = check(serde_json::json!({"digest": {"email": "daily"},
            "quiet_hours": {"start": "22:00", "end": "07:00"}, "bypass": {"warning": true}}))
        .unwrap();
        assert_eq!(ok.digest_email, Some(DigestFrequency::Daily));
        assert_eq!(
            ok.quiet_hours.unwrap().unwrap().start,
            LocalTime::parse("22:00").unwrap()
        );
        assert_eq!(ok.bypass, vec![(NotificationType::Warning, true)]);
        assert_eq!(
            check(serde_json::json!({"quiet_hours": null}))
                .unwrap()
                .quiet_hours,
            Some(None)
        );
        for (body, field) in [
            (serde_json::json!({"digest": "hourly"}), "digest"),
            (
                serde_json::json!({"digest": {"email": "weekly"}}),
                "digest.email",
            ),
            (
                serde_json::json!({"digest": {"webhook": "hourly"}}),
                "digest.webhook",
            ),
            (serde_json::json!({"digest": {}}), "digest.email"),
            (
                serde_json::json!({"quiet_hours": "22:00-07:00"}),
                "quiet_hours",
            ),
            (
                serde_json::json!({"quiet_hours": {"start": "25:00", "end": "07:00"}}),
                "quiet_hours.start",
            ),
            (
                serde_json::json!({"quiet_hours": {"start": "22:00", "end": "7pm"}}),
                "quiet_hours.end",
            ),
            (
                serde_json::json!({"quiet_hours": {"start": "22:00"}}),
                "quiet_hours.end",
            ),
            (
                serde_json::json!({"quiet_hours": {"start": 22, "end": "07:00"}}),
                "quiet_hours.start",
            ),
            (
                serde_json::json!({"quiet_hours": {"start": "07:00", "end": "07:00"}}),
                "quiet_hours.end",
            ),
            (
                serde_json::json!({"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "UTC"}}),
                "quiet_hours.tz",
            ),
            (
                serde_json::json!({"bypass": {"urgent": true}}),
                "bypass.urgent",
            ),
            (
                serde_json::json!({"bypass": {"error": "yes"}}),
                "bypass.error",
            ),
            (serde_json::json!({"bypass": ["error"]}), "bypass"),
        ] {
            let (got, _) = check(body.clone()).unwrap_err();
            assert_eq!(got, field, "{body}");
        }
    }

    #[test]
    fn an_update_tells_null_from_absent() {
        let u: PreferencesUpdate = serde_json::from_str(r#"{"email_address": null}"#).unwrap();
        assert_eq!(u.check().unwrap().email_address, Some(None));
        let u: PreferencesUpdate = serde_json::from_str(r#"{}"#).unwrap();
        assert_eq!(u.check().unwrap().email_address, None);
        let u: PreferencesUpdate =
            serde_json::from_str(r#"{"channels": {"webhook": {"info": false}}}"#).unwrap();
        assert_eq!(
            u.check().unwrap().switches,
            vec![(Channel::Webhook, NotificationType::Info, false)]
        );
    }
}
