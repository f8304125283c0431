//! What moto's SES recorded.

use meterbell_dev::stack::Endpoints;
use serde_json::Value;

/// The emails moto's SES accepted for `to`: (subject, body, source).
pub async fn emails_to(to: &str) -> Vec<(String, String, String)> {
    let endpoints = Endpoints::from_env().unwrap();
    let url = format!("{}/moto-api/data.json", endpoints.ses.trim_end_matches('/'));
    let data: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .map(|m| {
            (
                m["subject"].as_str().unwrap_or_default().to_owned(),
                m["body"].as_str().unwrap_or_default().to_owned(),
                m["source"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
