//! `GET /api/v1/unsubscribe?token=...` shows a page asking to confirm and changes nothing (link
//! scanners fetch links); `POST` of the same URL — a mail client's one-click button (RFC 8058,
//! body `List-Unsubscribe=One-Click`) or the page's button — switches that notification type's
//! email off. The token is the authorization (see `notifications::unsubscribe`); a forged or
//! altered one is a 400 naming `token`.

use http::StatusCode;
use lambda_http::Request;

use crate::notifications::channels::email::escape_html;
use crate::notifications::channels::Channel;
use crate::notifications::notification::NotificationType;
use crate::notifications::preferences::CheckedUpdate;
use crate::notifications::store;
use crate::notifications::unsubscribe;
use crate::platform::app::App;
use crate::platform::domain::UserId;
use crate::platform::error::ApiError;
use crate::platform::handler::http_handler;
use crate::platform::http::{html, HttpResponse, Params};

fn claim(app: &App, req: &Request) -> Result<(UserId, Vec<NotificationType>, String), ApiError> {
    let params = Params::parse(req, &["token"])?;
    let token = params
        .get("token")
        .ok_or_else(|| ApiError::invalid("token", "token is required"))?
        .to_owned();
    let (user, kinds) =
        unsubscribe::open(&app.config().cursor_secret, &token).ok_or_else(|| {
            ApiError::invalid(
                "token",
                "token is not a valid unsubscribe link of this service",
            )
        })?;
    Ok((user, kinds, token))
}

/// `info`, `info and success`: the types a token names, for the pages.
fn kinds_text(kinds: &[NotificationType]) -> String {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n<body style=\"font-family:sans-serif;max-width:32rem;\
         margin:3rem auto;padding:0 1rem;line-height:1.5\">\n<h1>{title}</h1>\n{body}\n</body></html>\n"
    )
}

http_handler!(
    /// `GET /api/v1/unsubscribe` — the confirmation page; nothing changes.
    confirm => get_unsubscribe
);

async fn get_unsubscribe(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (_, kinds, token) = claim(app, req)?;
    let kind = kinds_text(&kinds);
    let body = format!(
        "<p>Stop receiving <strong>{kind}</strong> notifications by email? The other types, the \
         in-app inbox and webhooks stay as they are.</p>\n\
         <form method=\"post\" action=\"?token={token}\">\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe from {kind} emails</button></form>",
        kind = escape_html(&kind),
        token = escape_html(&token),
    );
    Ok(html(app, StatusCode::OK, page("Unsubscribe", &body)))
}

http_handler!(
    /// `POST /api/v1/unsubscribe` — switches the type's email off (idempotent).
    unsubscribe => post_unsubscribe
);

async fn post_unsubscribe(app: &App, req: &Request) -> Result<HttpResponse, ApiError> {
    let (user, kinds, _) = claim(app, req)?;
    store::accounts(app)
        .await?
        .update_preferences(
            &user,
            &CheckedUpdate {
                switches: kinds.iter().map(|k| (Channel::Email, *k, false)).collect(),
                ..CheckedUpdate::default()
            },
        )
        .await?;
    let kind = kinds_text(&kinds);
    tracing::info!(user = %user, kinds = %kind, "unsubscribed from email");
    let body = format!(
        "<p>You will no longer receive <strong>{}</strong> notifications by email. You can turn \
         them back on in your notification preferences.</p>",
        escape_html(&kind)
    );
    Ok(html(app, StatusCode::OK, page("Unsubscribed", &body)))
}
