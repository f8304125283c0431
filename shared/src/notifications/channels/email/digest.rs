//! The digest email: one message listing the notifications of a window, oldest first, in a text
//! and an inline-styled HTML body into which every piece is escaped.

use crate::notifications::channels::email::{escape_html, RenderedEmail};
use crate::notifications::notification::NotificationView;
use crate::notifications::timing::DigestFrequency;

/// Notifications listed in full; the rest are counted (the inbox has them all).
pub const MAX_LISTED: usize = 100;

/// Text on one line (titles go into the subject and list headings).
fn one_line(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub fn render(frequency: DigestFrequency, items: &[NotificationView]) -> RenderedEmail {
    let period = match frequency {
        DigestFrequency::Daily => "daily",
        _ => "hourly",
    };
    let count = items.len();
    let noun = if count == 1 {
        "notification"
    } else {
        "notifications"
    };
    let subject = match items {
        [only] => format!("Your {period} Meterbell digest: {}", one_line(&only.title)),
        _ => format!("Your {period} Meterbell digest: {count} {noun}"),
    };
    let listed = &items[..count.min(MAX_LISTED)];
    let more = count - listed.len();

    let mut text = format!("Your {period} digest: {count} {noun}.\n\n");
    for n in listed {
        text.push_str(&format!(
            "[{}] {}\n{}\n{}\n\n",
            n.kind.as_str(),
            one_line(&n.title),
            n.message,
            n.created_at
        ));
    }
    if more > 0 {
        text.push_str(&format!("...and {more} more in your inbox.\n\n"));
    }
    text.push_str(
        "--\nMeterbell digest. Choose how often you get digests, and which types, in your \
         notification preferences.\n",
    );

    let mut rows = String::new();
    for n in listed {
        rows.push_str(&format!(
            "<li style=\"margin:0 0 16px 0\"><span style=\"display:inline-block;padding:1px 6px;\
             border-radius:3px;background:#eef2f7;color:#334;font-size:12px\">{kind}</span> \
             <strong>{title}</strong><br>\n<span>{message}</span><br>\n\
             <span style=\"color:#666;font-size:12px\">{at}</span></li>\n",
            kind = escape_html(n.kind.as_str()),
            title = escape_html(&n.title),
            message = escape_html(&n.message).replace('\n', "<br>\n"),
            at = escape_html(&n.created_at),
        ));
    }
    let more_html = if more > 0 {
        format!("<p>...and {more} more in your inbox.</p>\n")
    } else {
        String::new()
    };
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family:sans-serif;line-height:1.5\">\n\
         <h2>Your {period} digest: {count} {noun}</h2>\n\
         <ul style=\"list-style:none;padding:0\">\n{rows}</ul>\n{more_html}\
         <hr><p style=\"color:#666;font-size:12px\">Meterbell digest. Choose how often you get \
         digests, and which types, in your notification preferences.</p>\n</body></html>\n",
        title = escape_html(&subject),
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

    fn view(i: usize, title: &str) -> NotificationView {
        NotificationView {
            id: i.to_string(),
            user_id: "u".into(),
            kind: NotificationType::Info,
            title: title.into(),
            message: format!("message {i}"),
            data: None,
            is_read: false,
            read_at: None,
            created_at: "2026-11-24T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn a_digest_lists_every_notification_escaped_in_html() {
        let items = [view(1, "Deploy <ok>"), view(2, "Backup\r\nBcc: x@y.com")];
        let e = render(DigestFrequency::Hourly, &items);
        assert_eq!(e.subject, "Your hourly Meterbell digest: 2 notifications");
        for body in [&e.text, &e.html] {
            assert!(
                body.contains("message 1") && body.contains("message 2"),
                "{body}"
            );
        }
        assert!(e.html.contains("Deploy &lt;ok&gt;"));
        assert!(!e.html.contains("<ok>"));
        assert!(
            e.text.contains("Backup  Bcc: x@y.com"),
            "titles on one line"
        );
    }

    #[test]
    fn a_long_digest_lists_the_first_hundred_and_counts_the_rest() {
        let items: Vec<_> = (0..130).map(|i| view(i, "t")).collect();
        let e = render(DigestFrequency::Daily, &items);
        assert!(e.subject.contains("daily") && e.subject.contains("130"));
        assert!(e.text.contains("message 99\n") && !e.text.contains("message 100\n"));
        assert!(e.text.contains("30 more") && e.html.contains("30 more"));
    }
}
