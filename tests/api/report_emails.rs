//! Usage report emails (README, "Report emails"): a subscriber gets each report once, at 08:00
//! in their zone, however often the hourly run or its messages repeat; preferences refuse a zone
//! off whole hours and an unknown report.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use meterbell::platform::handler::Tick;
use meterbell_dev::testing::unique_user;
use serde_json::json;

use crate::helpers::{
    app_for, consumer, drain, mails_to, queue_pair, queues, TestApi, UsageEventBuilder,
};

/// 08:00 today in Paris, as a UTC instant.
fn eight_in_paris() -> DateTime<Utc> {
    let today = chrono_tz::Europe::Paris
        .from_utc_datetime(&Utc::now().naive_utc())
        .date_naive();
    chrono_tz::Europe::Paris
        .from_local_datetime(&today.and_hms_opt(8, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test]
async fn a_daily_report_email_goes_out_once_at_eight_in_the_subscribers_zone() {
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let q = queues(stack, 3).await;
    let (work, dlq) = queue_pair(&stack.clients.sqs, "reports", 3, 5).await;
    let u = unique_user("report-mail");
    let address = format!("{u}@example.com");
    let prefs = api
        .as_user(&u)
        .update_preferences(&json!({"email_address": address, "tz": "Europe/Paris",
            "reports": {"daily": true}}))
        .await;
    assert_eq!(prefs.status, 200, "{}", prefs.json);
    assert_eq!(prefs.json["reports"]["daily"], true);
    let at = eight_in_paris();
    let yesterday = at - chrono::Duration::hours(12);
    api.as_service()
        .post_events(&json!({"events": [UsageEventBuilder::request().user(&u).cost("0.5").at(yesterday).build()]}))
        .await;
    let schedule = app_for(
        stack,
        "ReportScheduleFunction",
        &q,
        &[("REPORT_QUEUE_URL", &work)],
    );
    let sender = consumer(
        stack,
        "ReportSenderFunction",
        &work,
        app_for(
            stack,
            "ReportSenderFunction",
            &q,
            &[("REPORT_DLQ_URL", &dlq)],
        ),
    );
    let Some(meterbell::functions::Handler::Schedule(run)) =
        meterbell::functions::by_binary("report-schedule")
    else {
        panic!("report-schedule is not a scheduled handler");
    };

    for tick_at in [at, at, at + chrono::Duration::hours(1)] {
        run(
            schedule.clone(),
            Tick {
                at: tick_at,
                id: "test".into(),
            },
        )
        .await
        .unwrap();
    }
    drain(
        stack,
        std::slice::from_ref(&sender),
        Duration::from_secs(60),
    )
    .await;

    let mails = mails_to(&address).await;
    assert_eq!(
        mails.len(),
        1,
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    let day = chrono_tz::Europe::Paris
        .from_utc_datetime(&yesterday.naive_utc())
        .date_naive();
    assert_eq!(mails[0].subject, format!("Your daily usage report: {day}"));
    assert!(mails[0].html.contains("Usage report"), "{}", mails[0].html);
    assert!(!mails[0].html.contains("<script"));
}

#[tokio::test]
async fn report_preferences_refuse_unknown_reports_and_zones_off_whole_hours() {
    let api = TestApi::spawn().await;
    let me = api.as_user(&unique_user("report-prefs"));
    for (body, field) in [
        (json!({"reports": {"hourly": true}}), "reports.hourly"),
        (json!({"tz": "Asia/Kolkata"}), "tz"),
        (json!({"tz": "Mars/Olympus"}), "tz"),
    ] {
        let reply = me.update_preferences(&body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], field, "{body}");
    }
}
