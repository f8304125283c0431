//! Webhooks: endpoint URLs, `whsec_` secrets, the Standard Webhooks signature, and the SSRF
//! guard that decides which addresses a delivery may connect to.
//!
//! The guard is the HTTP client's DNS resolver: it resolves the host itself, drops every
//! refused address and hands the client only vetted ones, so the address that was checked is
//! the address that is connected to (a DNS answer that changes between check and connect
//! cannot slip through). IP literals never reach a resolver, so they are checked before the
//! request is made.

pub mod sender;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::{Host, Url};

type HmacSha256 = Hmac<Sha256>;

pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> Result<String, getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The HMAC key inside a `whsec_` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(|| "webhook secret lacks the whsec_ prefix".to_owned())?;
    STANDARD
        .decode(encoded)
        .map_err(|_| "webhook secret is not base64 after whsec_".to_owned())
}

/// The `webhook-id` of a notification's deliveries: `msg_` and the notification id exactly as
/// the API shows it (hyphenated), so a receiver can match a delivery to `GET notifications`.
pub fn message_id(notification_id: &uuid::Uuid) -> String {
    format!("msg_{}", notification_id.hyphenated())
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` — the `webhook-signature` header.
pub fn sign(key: &[u8], msg_id: &str, timestamp: i64, body: &str) -> Result<String, String> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|e| e.to_string())?;
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header signed with each of `secrets` (the current one, then a
/// rotated-out one during its overlap), space-separated as Standard Webhooks allows: a receiver
/// still holding the old secret verifies, and so does one already holding the new.
pub fn signature_header(
    secrets: &[&str],
    msg_id: &str,
    timestamp: i64,
    body: &str,
) -> Result<String, String> {
    let mut out = vec![];
    for secret in secrets {
        out.push(sign(&secret_key(secret)?, msg_id, timestamp, body)?);
    }
    Ok(out.join(" "))
}

/// Why a URL cannot be a webhook endpoint.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

pub const MAX_URL_LEN: usize = 2_048;

/// An endpoint URL: absolute `https://` (plain `http://` only where private targets are
/// allowed, i.e. local development), a host, no credentials, no fragment, and not an IP
/// literal the guard would refuse.
pub fn parse_url(raw: &str, allow_private: bool) -> Result<Url, UrlError> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlError(format!(
            "url must be at most {MAX_URL_LEN} characters"
        )));
    }
    let url = Url::parse(raw).map_err(|e| UrlError(format!("url is not a valid URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(UrlError("url must start with https://".into())),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError(
            "url must not carry a user name or password".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(UrlError("url must not have a #fragment".into()));
    }
    match url.host() {
        None => return Err(UrlError("url must name a host".into())),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if !allow_private && (d == "localhost" || d.ends_with(".localhost")) {
                return Err(UrlError(
                    "url must not point to this machine (localhost)".into(),
                ));
            }
        }
        Some(Host::Ipv4(ip)) => check_literal(IpAddr::V4(ip), allow_private)?,
        Some(Host::Ipv6(ip)) => check_literal(IpAddr::V6(ip), allow_private)?,
    }
    Ok(url)
}

fn check_literal(ip: IpAddr, allow_private: bool) -> Result<(), UrlError> {
    match refusal(ip, allow_private) {
        None => Ok(()),
        Some(why) => Err(UrlError(format!("url must not point to {why} ({ip})"))),
    }
}

/// Why connecting to `ip` is refused, or `None` when it is allowed. Only loopback, private
/// (10/8, 172.16/12, 192.168/16), link-local and unique-local addresses are opened by
/// `allow_private` (the local development opt-in); metadata, unspecified, multicast,
/// broadcast, shared (CGNAT), documentation and other reserved addresses are refused always.
pub fn refusal(ip: IpAddr, allow_private: bool) -> Option<&'static str> {
    let ip = match ip {
        // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address.
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let (always, private) = match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    };
    always.or(if allow_private { None } else { private })
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff {
        return Some(tail); // ::ffff:0:0/96
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail); // 64:ff9b::/96
    }
    None
}

type Verdict = (Option<&'static str>, Option<&'static str>);

fn classify_v4(ip: Ipv4Addr) -> Verdict {
    let o = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(169, 254, 170, 2) {
        return (Some("a cloud metadata address"), None);
    }
    if o[0] == 0 {
        return (Some("an unspecified address"), None);
    }
    if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        return (Some("a multicast, broadcast or reserved address"), None);
    }
    // Not public, yet no local network a developer runs a receiver on: the opt-in stays shut.
    if o[0] == 100 && (o[1] & 0xc0) == 64 {
        return (Some("a shared (carrier-grade NAT) address"), None);
    }
    if (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
    {
        return (Some("a reserved or documentation address"), None);
    }
    let private = if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else {
        None
    };
    (None, private)
}

fn classify_v6(ip: Ipv6Addr) -> Verdict {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return (Some("a cloud metadata address"), None);
    }
    if ip.is_unspecified() {
        return (Some("an unspecified address"), None);
    }
    if ip.is_multicast() {
        return (Some("a multicast address"), None);
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return (Some("a documentation address"), None);
    }
    // Deprecated forms (site-local fec0::/10, IPv4-compatible ::/96) no local setup needs.
    if (s[0] & 0xffc0) == 0xfec0 {
        return (Some("a site-local address"), None);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() {
        return (Some("an IPv4-compatible address"), None);
    }
    let private = if ip.is_loopback() {
        Some("a loopback address")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("a unique-local address")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else {
        None
    };
    (None, private)
}

/// The error the resolver raises for a host with no allowed address; found again in the
/// client's error chain to tell a refusal (not retried) from a network failure (retried).
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves only to refused addresses ({reason})")]
pub struct TargetRefused {
    pub host: String,
    pub reason: String,
}

/// The guard as the client's resolver.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut reasons = vec![];
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| match refusal(a.ip(), allow_private) {
                    None => true,
                    Some(why) => {
                        reasons.push(format!("{}: {why}", a.ip()));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let reason = if reasons.is_empty() {
                    "no addresses".to_owned()
                } else {
                    reasons.join(", ")
                };
                return Err(Box::new(TargetRefused { host, reason }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The webhook HTTP client: the guard as resolver, no proxies, no redirects followed, one
/// timeout for the whole attempt. Built once per process and policy.
pub fn client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    static CLIENTS: OnceLock<Mutex<HashMap<(bool, u128), reqwest::Client>>> = OnceLock::new();
    let key = (allow_private, timeout.as_millis());
    let cache = CLIENTS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(map) = cache.lock() {
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
    }
    let built = reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .https_only(!allow_private)
        .user_agent(concat!("Meterbell-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()?;
    if let Ok(mut map) = cache.lock() {
        map.insert(key, built.clone());
    }
    Ok(built)
}

/// The refusal in `err`'s chain, if the guard refused the target.
pub fn refused_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a TargetRefused> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<TargetRefused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_has_the_prefix_and_a_32_byte_key() {
        let s = generate_secret().unwrap();
        assert!(s.starts_with("whsec_"));
        assert_eq!(secret_key(&s).unwrap().len(), 32);
        assert_ne!(s, generate_secret().unwrap());
    }

    #[test]
    fn the_signature_matches_the_standard_webhooks_test_vector() {
        // From the Standard Webhooks reference libraries' tests.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn the_message_id_is_the_notification_id_as_the_api_shows_it() {
        use crate::notifications::notification::{Notification, NotificationType};
        use crate::platform::domain::UserId;
        let user = UserId::parse("webhook-id-user").unwrap();
        let n = Notification::new(user, NotificationType::Info, "t", "m", None);
        let shown = serde_json::to_value(n.view()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(shown.len(), 36, "hyphenated UUID: {shown}");
        assert_eq!(message_id(&n.id), format!("msg_{shown}"));
    }

    #[test]
    fn refused_addresses_are_refused_unless_private_targets_are_allowed() {
        for raw in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.1.1",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:192.168.0.1",
            "::ffff:169.254.1.1",
            "64:ff9b::a00:1",
            "fe80::1",
        ] {
            let ip: IpAddr = raw.parse().unwrap();
            assert!(refusal(ip, false).is_some(), "{raw} allowed");
            assert!(refusal(ip, true).is_none(), "{raw} refused despite opt-in");
        }
    }

    #[test]
    fn metadata_and_unroutable_addresses_are_refused_even_with_the_opt_in() {
        for raw in [
            "169.254.169.254",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "ff02::1",
        ] {
            let ip: IpAddr = raw.parse().unwrap();
            assert!(refusal(ip, true).is_some(), "{raw} allowed");
        }
    }

    #[test]
    fn the_opt_in_opens_neither_shared_nor_documentation_nor_other_reserved_ranges() {
        for raw in [
            "100.64.0.1",
            "100.127.255.254",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.0.0.8",
            "198.18.0.1",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "fec0::1",
            "::a00:1",
            "::ffff:100.64.0.1",
            "::ffff:192.0.2.1",
            "::ffff:203.0.113.9",
            "64:ff9b::6440:1",
            "64:ff9b::c633:6407",
        ] {
            let ip: IpAddr = raw.parse().unwrap();
            assert!(refusal(ip, false).is_some(), "{raw} allowed");
            assert!(refusal(ip, true).is_some(), "{raw} allowed by the opt-in");
        }
        assert!(parse_url("http://100.64.0.1/hook", true).is_err());
        assert!(parse_url("http://[2001:db8::1]/hook", true).is_err());
        assert!(parse_url("http://[::ffff:198.51.100.1]/hook", true).is_err());
    }

    #[test]
    fn the_edges_of_the_shared_range_are_exact() {
        // 100.64.0.0/10 is 100.64.0.0 ..= 100.127.255.255; its neighbours are public.
        for raw in ["100.63.255.255", "100.128.0.0"] {
            assert_eq!(refusal(raw.parse().unwrap(), false), None, "{raw}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for raw in ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert_eq!(refusal(raw.parse().unwrap(), false), None, "{raw}");
        }
    }

    #[test]
    fn endpoint_urls_must_be_https_with_a_public_host() {
        assert!(parse_url("https://hooks.example.com/meterbell?x=1", false).is_ok());
        for raw in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "https://127.0.0.1/",
            "https://10.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://0x7f000001/",
            "https://2130706433/",
            "https://localhost/",
            "https://api.localhost/",
            "not a url",
            "https://",
        ] {
            assert!(parse_url(raw, false).is_err(), "{raw} accepted");
        }
        assert!(parse_url(&format!("https://e.com/{}", "a".repeat(2100)), false).is_err());
    }

    #[test]
    fn local_development_may_use_http_to_loopback_but_never_metadata() {
        assert!(parse_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(parse_url("http://localhost:9000/hook", true).is_ok());
        assert!(parse_url("http://169.254.169.254/", true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_loopback() {
        use reqwest::dns::Resolve;
        let guard = GuardedResolver {
            allow_private: false,
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = guard.resolve(name).await.err().unwrap();
        assert!(refused_in(err.as_ref()).is_some(), "{err}");
        let open = GuardedResolver {
            allow_private: true,
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        assert!(open.resolve(name).await.is_ok());
    }
}
