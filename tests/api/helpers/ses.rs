//! What moto's SES recorded.

use meterbell_dev::mailbox::{emails, Email};
use meterbell_dev::stack::Endpoints;

/// The emails moto's SES accepted for `to`, decoded.
pub async fn mails_to(to: &str) -> Vec<Email> {
    let endpoints = Endpoints::from_env().unwrap();
    emails(&endpoints.ses)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.to.iter().any(|x| x == to))
        .collect()
}

/// The emails moto's SES accepted for `to`: (subject, HTML body, source).
pub async fn emails_to(to: &str) -> Vec<(String, String, String)> {
    mails_to(to)
        .await
        .into_iter()
        .map(|m| (m.subject, m.html, m.source))
        .collect()
}
