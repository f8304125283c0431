//! What moto's SES accepted, decoded: the emails `make dev` and the tests look at. Emails go out
//! as raw MIME (`SendRawEmail`: our own `multipart/alternative` with base64 parts and an RFC 2047
//! subject), so this reads that shape back.

use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

#[derive(Clone, Debug, Default)]
pub struct Email {
    pub source: String,
    pub to: Vec<String>,
    pub subject: String,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub html: String,
}

impl Email {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn decode_word(v: &str) -> String {
    v.strip_prefix("=?UTF-8?B?")
        .and_then(|r| r.strip_suffix("?="))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| v.to_owned())
}

/// One raw MIME message as Meterbell writes it.
pub fn decode(raw: &str) -> Email {
    let mut email = Email::default();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    for line in head.split("\r\n") {
        if let Some((name, value)) = line.split_once(": ") {
            email.headers.push((name.to_owned(), value.to_owned()));
        }
    }
    email.subject = email.header("Subject").map(decode_word).unwrap_or_default();
    email.source = email.header("From").unwrap_or_default().to_owned();
    email.to = email
        .header("To")
        .map(|t| vec![t.to_owned()])
        .unwrap_or_default();
    let boundary = email
        .header("Content-Type")
        .and_then(|c| c.split("boundary=\"").nth(1))
        .and_then(|b| b.split('"').next())
        .unwrap_or_default()
        .to_owned();
    for part in rest.split(&format!("--{boundary}")) {
        let Some((part_head, body)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let decoded = STANDARD
            .decode(body.replace("\r\n", ""))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        if part_head.contains("text/plain") {
            email.text = decoded;
        } else if part_head.contains("text/html") {
            email.html = decoded;
        }
    }
    email
}

/// Every email moto's SES at `endpoint` holds (raw ones decoded; plain `SendEmail` ones as sent).
pub async fn emails(endpoint: &str) -> Result<Vec<Email>> {
    let url = format!("{}/moto-api/data.json", endpoint.trim_end_matches('/'));
    let text = reqwest::get(&url)
        .await
        .with_context(|| format!("reading {url} (is moto running?)"))?
        .text()
        .await
        .context("moto's data.json")?;
    let data: Value = serde_json::from_str(&text).context("moto's data.json")?;
    let mut out = vec![];
    for m in data["ses"]["RawMessage"].as_array().into_iter().flatten() {
        let mut email = decode(m["raw_data"].as_str().unwrap_or_default());
        if let Some(to) = m["destinations"].as_array() {
            email.to = to
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            // moto lists the address of the call and of the To header both.
            email.to.sort();
            email.to.dedup();
        }
        out.push(email);
    }
    for m in data["ses"]["Message"].as_array().into_iter().flatten() {
        out.push(Email {
            source: m["source"].as_str().unwrap_or_default().to_owned(),
            to: m["destinations"]["ToAddresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            subject: m["subject"].as_str().unwrap_or_default().to_owned(),
            html: m["body"].as_str().unwrap_or_default().to_owned(),
            ..Email::default()
        });
    }
    Ok(out)
}
