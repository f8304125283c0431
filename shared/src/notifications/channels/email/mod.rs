//! The email of a notification: subject, plain-text body and an HTML body into which every
//! piece of the notification is escaped.

pub mod digest;
pub mod feedback;
pub mod mime;
pub mod sender;

use crate::notifications::notification::NotificationView;

pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn render(n: &NotificationView) -> RenderedEmail {
    // A subject is one line: no header injection through a title with line breaks.
    let subject: String = n
        .title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let data = n
        .data
        .as_ref()
        .and_then(|d| serde_json::to_string_pretty(d).ok());
    let mut text = format!("{}\n\n{}\n", n.title, n.message);
    if let Some(d) = &data {
        text.push_str(&format!("\nDetails:\n{d}\n"));
    }
    text.push_str(&format!(
        "\n--\nMeterbell notification ({}) sent {}.\nChoose which emails you get in your notification preferences.\n",
        n.kind.as_str(),
        n.created_at
    ));
    let message_html = escape_html(&n.message).replace('\n', "<br>\n");
    let details = data
        .map(|d| {
            format!(
                "<pre style=\"background:#f6f8fa;padding:12px;border-radius:4px\">{}</pre>\n",
                escape_html(&d)
            )
        })
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family:sans-serif;line-height:1.5\">\n\
         <h2>{title}</h2>\n<p>{message}</p>\n{details}\
         <hr><p style=\"color:#666;font-size:12px\">Meterbell notification ({kind}) sent {at}. \
         Choose which emails you get in your notification preferences.</p>\n</body></html>\n",
        title = escape_html(&n.title),
        message = message_html,
        details = details,
        kind = n.kind.as_str(),
        at = escape_html(&n.created_at),
    );
    RenderedEmail {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::notification::NotificationType;

    fn view(title: &str, message: &str, data: Option<serde_json::Value>) -> NotificationView {
        NotificationView {
            id: "0".into(),
            user_id: "u".into(),
            kind: NotificationType::Warning,
            title: title.into(),
            message: message.into(),
            data,
            is_read: false,
            read_at: None,
            created_at: "2026-11-23T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn markup_in_a_notification_is_escaped_in_the_html_body() {
        let e = render(&view(
            "<script>alert(1)</script>",
            "Tom & \"Jerry\" <b>",
            Some(serde_json::json!({"x": "<img src=x onerror=alert(1)>"})),
        ));
        assert!(!e.html.contains("<script>"));
        assert!(!e.html.contains("<img"));
        assert!(e.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(e.html.contains("Tom &amp; &quot;Jerry&quot; &lt;b&gt;"));
        assert!(
            e.text.contains("Tom & \"Jerry\" <b>"),
            "text stays as written"
        );
    }

    #[test]
    fn the_subject_is_the_title_on_one_line() {
        let e = render(&view("Low\r\nBcc: x@y.com", "m", None));
        assert!(!e.subject.contains('\n') && !e.subject.contains('\r'));
        assert!(e.subject.starts_with("Low"));
    }

    #[test]
    fn both_bodies_carry_the_message_and_the_details() {
        let e = render(&view(
            "Low Credits",
            "500 left",
            Some(serde_json::json!({"credits_remaining": 500})),
        ));
        for body in [&e.text, &e.html] {
            assert!(body.contains("500 left"));
            assert!(body.contains("credits_remaining"));
        }
    }
}
