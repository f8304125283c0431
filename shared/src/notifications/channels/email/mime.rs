//! The raw message SES sends (`SendRawEmail`): `multipart/alternative` with the text and HTML
//! bodies, and the headers `SendEmail` cannot carry — RFC 8058 one-click unsubscribe
//! (`List-Unsubscribe` with an https link, `List-Unsubscribe-Post`). Bodies are base64 (any
//! UTF-8, no line-length limits); the subject is an RFC 2047 encoded word.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// What one email holds.
pub struct Mail<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub reply_to: Option<&'a str>,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: &'a str,
    /// The one-click unsubscribe URL (https, token in the query).
    pub unsubscribe: Option<&'a str>,
    /// Fixed in tests; a fresh one per message otherwise.
    pub boundary: &'a str,
}

/// Base64 in lines of 76 characters, as MIME wants.
fn base64_lines(data: &[u8]) -> String {
    let encoded = STANDARD.encode(data);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 76 * 2 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// A header value with no line breaks (addresses and URLs are checked before; this is the last
/// guard against header injection).
fn one_line(v: &str) -> String {
    v.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

pub fn render(m: &Mail) -> String {
    let mut out = String::new();
    let mut header = |name: &str, value: &str| {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(&one_line(value));
        out.push_str("\r\n");
    };
    header("From", m.from);
    header("To", m.to);
    if let Some(r) = m.reply_to {
        header("Reply-To", r);
    }
    header(
        "Subject",
        &format!("=?UTF-8?B?{}?=", STANDARD.encode(m.subject.as_bytes())),
    );
    header("MIME-Version", "1.0");
    if let Some(url) = m.unsubscribe {
        header("List-Unsubscribe", &format!("<{url}>"));
        header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click");
    }
    header(
        "Content-Type",
        &format!("multipart/alternative; boundary=\"{}\"", m.boundary),
    );
    out.push_str("\r\n");
    for (kind, body) in [("text/plain", m.text), ("text/html", m.html)] {
        out.push_str(&format!("--{}\r\n", m.boundary));
        out.push_str(&format!("Content-Type: {kind}; charset=UTF-8\r\n"));
        out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        out.push_str(&base64_lines(body.as_bytes()));
    }
    out.push_str(&format!("--{}--\r\n", m.boundary));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_one_click_unsubscribe_and_both_bodies() {
        let raw = render(&Mail {
            from: "n@meterbell.example",
            to: "u@example.com",
            reply_to: None,
            subject: "Low <Credits> é",
            text: "plain",
            html: "<p>html</p>",
            unsubscribe: Some("https://api.example/api/v1/unsubscribe?token=abc.def"),
            boundary: "b1",
        });
        assert!(raw.contains(
            "List-Unsubscribe: <https://api.example/api/v1/unsubscribe?token=abc.def>\r\n"
        ));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains(&format!(
            "Subject: =?UTF-8?B?{}?=\r\n",
            STANDARD.encode("Low <Credits> é")
        )));
        assert!(raw.contains(&STANDARD.encode("<p>html</p>")));
        assert!(raw.ends_with("--b1--\r\n"));
    }

    #[test]
    fn no_header_takes_a_line_break() {
        let raw = render(&Mail {
            from: "n@meterbell.example",
            to: "u@example.com\r\nBcc: evil@example.com",
            reply_to: None,
            subject: "s",
            text: "t",
            html: "h",
            unsubscribe: None,
            boundary: "b",
        });
        assert!(!raw.contains("\r\nBcc:"));
    }
}
