//! Usage report emails (README, "Report emails"): a subscriber gets each report once, at 08:00
//! in their zone — on the half or quarter hour in zones such as Asia/Kolkata — however often
//! the quarter-hourly run or its messages repeat; preferences refuse an unknown zone or report.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use meterbell::platform::handler::Tick;
use meterbell_dev::testing::unique_user;
use serde_json::json;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::helpers::{
    app_for, consumer, drain, fresh_accounts_table, mails_to, queue_pair, queues, TestApi,
    UsageEventBuilder,
};

/// 08:00 today in `tz`, as a UTC instant.
fn eight_in(tz: chrono_tz::Tz) -> DateTime<Utc> {
    let today = tz.from_utc_datetime(&Utc::now().naive_utc()).date_naive();
    tz.from_local_datetime(&today.and_hms_opt(8, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn eight_in_paris() -> DateTime<Utc> {
    eight_in(chrono_tz::Europe::Paris)
}

/// The report run and sender of a test, on queues of its own.
struct Reports {
    schedule: std::sync::Arc<meterbell::App>,
    sender: meterbell_dev::poller::Consumer,
    run: meterbell::platform::handler::ScheduleHandler,
}

impl Reports {
    async fn new(api: &TestApi) -> Reports {
        Reports::with(api, &[]).await
    }

    /// With `extra` settings for both functions (an AccountsTable of the test's own).
    async fn with(api: &TestApi, extra: &[(&str, &str)]) -> Reports {
        let stack = &api.stack;
        let q = queues(stack, 3).await;
        let (work, dlq) = queue_pair(&stack.clients.sqs, "reports", 3, 5).await;
        let settings = |name, url| {
            let mut all = vec![(name, url)];
            all.extend_from_slice(extra);
            all
        };
        let schedule = app_for(
            stack,
            "ReportScheduleFunction",
            &q,
            &settings("REPORT_QUEUE_URL", work.as_str()),
        );
        let sender = consumer(
            stack,
            "ReportSenderFunction",
            &work,
            app_for(
                stack,
                "ReportSenderFunction",
                &q,
                &settings("REPORT_DLQ_URL", dlq.as_str()),
            ),
        );
        let Some(meterbell::functions::Handler::Schedule(run)) =
            meterbell::functions::by_binary("report-schedule")
        else {
            panic!("report-schedule is not a scheduled handler");
        };
        Reports {
            schedule,
            sender,
            run,
        }
    }

    /// The schedule fired at each of `ticks`, then the sender until the queue is empty.
    async fn fire(&self, api: &TestApi, ticks: &[DateTime<Utc>]) {
        for at in ticks {
            (self.run)(
                self.schedule.clone(),
                Tick {
                    at: *at,
                    id: "test".into(),
                },
            )
            .await
            .unwrap();
        }
        drain(
            &api.stack,
            std::slice::from_ref(&self.sender),
            Duration::from_secs(60),
        )
        .await;
    }
}

#[tokio::test]
async fn a_daily_report_email_goes_out_once_at_eight_in_the_subscribers_zone() {
    let api = TestApi::spawn().await;
    let reports = Reports::new(&api).await;
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

    reports
        .fire(&api, &[at, at, at + chrono::Duration::hours(1)])
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
async fn report_preferences_take_half_hour_zones_and_refuse_unknown_reports_and_zones() {
    let api = TestApi::spawn().await;
    let me = api.as_user(&unique_user("report-prefs"));
    for tz in ["Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"] {
        let reply = me.update_preferences(&json!({ "tz": tz })).await;
        assert_eq!(reply.status, 200, "{tz}: {}", reply.json);
        assert_eq!(reply.json["tz"], tz);
    }
    for (body, field) in [
        (json!({"reports": {"hourly": true}}), "reports.hourly"),
        (json!({"tz": "Mars/Olympus"}), "tz"),
    ] {
        let reply = me.update_preferences(&body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], field, "{body}");
    }
}

#[tokio::test]
async fn a_daily_report_email_goes_out_once_at_eight_in_kolkata_on_the_half_hour() {
    let api = TestApi::spawn().await;
    let reports = Reports::new(&api).await;
    let u = unique_user("report-kolkata");
    let address = format!("{u}@example.com");
    let prefs = api
        .as_user(&u)
        .update_preferences(&json!({"email_address": address, "tz": "Asia/Kolkata",
            "reports": {"daily": true}}))
        .await;
    assert_eq!(prefs.status, 200, "{}", prefs.json);
    let at = eight_in(chrono_tz::Asia::Kolkata);
    assert_eq!(
        chrono::Timelike::minute(&at),
        30,
        "08:00 in Kolkata is hh:30 UTC"
    );
    let quarter = chrono::Duration::minutes(15);

    // Every quarter hour from 07:15 to 08:45 local, the 08:00 one twice (an overlapping run).
    let ticks: Vec<DateTime<Utc>> = [-3, -2, -1, 0, 0, 1, 2, 3]
        .iter()
        .map(|n| at + quarter * *n)
        .collect();
    reports.fire(&api, &ticks).await;

    let mails = mails_to(&address).await;
    assert_eq!(
        mails.len(),
        1,
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    let yesterday = (at - chrono::Duration::days(1))
        .with_timezone(&chrono_tz::Asia::Kolkata)
        .date_naive();
    assert_eq!(
        mails[0].subject,
        format!("Your daily usage report: {yesterday}")
    );
}

#[tokio::test]
async fn a_subscriber_who_changes_zone_is_sent_the_report_at_eight_in_the_new_zone_only() {
    let api = TestApi::spawn().await;
    let reports = Reports::new(&api).await;
    let u = unique_user("report-moves");
    let address = format!("{u}@example.com");
    let me = api.as_user(&u);
    let first = me
        .update_preferences(&json!({"email_address": address, "tz": "Europe/Paris",
            "reports": {"daily": true}}))
        .await;
    assert_eq!(first.status, 200, "{}", first.json);
    let moved = me
        .update_preferences(&json!({"tz": "Asia/Kathmandu"}))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.json);

    reports.fire(&api, &[eight_in_paris()]).await;
    assert!(
        mails_to(&address).await.is_empty(),
        "08:00 in Paris: not any more"
    );
    let kathmandu = eight_in(chrono_tz::Asia::Kathmandu);
    assert_eq!(chrono::Timelike::minute(&kathmandu), 15);
    reports.fire(&api, &[kathmandu]).await;

    assert_eq!(mails_to(&address).await.len(), 1);
}

#[tokio::test]
async fn an_admin_who_asks_for_it_gets_the_platforms_report_and_a_user_may_not() {
    // Arrange: an admin subscribed to the platform's daily report, and usage yesterday.
    let api = TestApi::spawn().await;
    let reports = Reports::new(&api).await;
    let admin = unique_user("report-admin");
    let address = format!("{admin}@example.com");
    let prefs = api
        .as_caller(&admin, &["admin"])
        .update_preferences(&json!({"email_address": address, "tz": "UTC",
            "reports": {"daily": true, "system": true}}))
        .await;
    assert_eq!(prefs.status, 200, "{}", prefs.json);
    assert_eq!(prefs.json["reports"]["system"], true);
    let at = eight_in(chrono_tz::UTC);
    let user = unique_user("report-platform-usage");
    api.as_service()
        .post_events(
            &json!({"events": [UsageEventBuilder::request().user(&user).cost("0.5")
            .at(at - chrono::Duration::hours(12)).build()]}),
        )
        .await;
    let refused = api
        .as_user(&unique_user("not-admin"))
        .update_preferences(&json!({"reports": {"daily": true, "system": true}}))
        .await;

    // Act: the run fires twice (an overlap) at 08:00 UTC.
    reports.fire(&api, &[at, at]).await;

    // Assert
    let mails = mails_to(&address).await;
    let yesterday = (at - chrono::Duration::days(1)).date_naive();
    assert_eq!(
        mails.iter().map(|m| m.subject.as_str()).collect::<Vec<_>>(),
        [format!("The platform's daily usage report: {yesterday}")]
    );
    assert!(mails[0].html.contains("Top users"), "{}", mails[0].html);
    assert_eq!(refused.status, 403, "{}", refused.json);
}

#[tokio::test]
async fn subscribers_of_the_earlier_registry_are_moved_to_the_zone_keyed_one_and_still_get_their_report(
) {
    // Arrange: a subscriber as the earlier layout left them — preferences with a daily report
    // in Paris, an entry in `REPORTUSERS#<shard>`, nothing in the zone-keyed registry — on an
    // AccountsTable of this test's own (the migration is once per table).
    let api = TestApi::spawn().await;
    let stack = &api.stack;
    let table = fresh_accounts_table(stack).await;
    let extra = [("ACCOUNTS_TABLE", table.as_str())];
    let u = unique_user("report-legacy");
    let address = format!("{u}@example.com");
    let prefs = api
        .function_with("PreferencesPutFunction", &extra)
        .as_user(&u)
        .update_preferences(&json!({"email_address": address, "tz": "Europe/Paris",
            "reports": {"daily": true}}))
        .await;
    assert_eq!(prefs.status, 200, "{}", prefs.json);
    let db = &stack.clients.dynamodb;
    let key = |pk: &str, sk: &str| {
        std::collections::HashMap::from([
            ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
            ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
        ])
    };
    for (pk, sk) in [
        ("REPORTZONE#Europe/Paris", u.as_str()),
        ("REPORTZONES", "Europe/Paris"),
    ] {
        db.delete_item()
            .table_name(&table)
            .set_key(Some(key(pk, sk)))
            .send()
            .await
            .unwrap();
    }
    db.update_item()
        .table_name(&table)
        .set_key(Some(key(&format!("USER#{u}"), "PREFS")))
        .update_expression("REMOVE report_zone")
        .send()
        .await
        .unwrap();
    db.put_item()
        .table_name(&table)
        .set_item(Some(key("REPORTUSERS#5", &u)))
        .send()
        .await
        .unwrap();
    let reports = Reports::with(&api, &extra).await;

    // Act: the first run at 08:00 Paris moves the subscriber, a second run finds nothing left.
    let at = eight_in_paris();
    reports.fire(&api, &[at, at]).await;

    // Assert
    assert_eq!(mails_to(&address).await.len(), 1);
    let old = db
        .get_item()
        .table_name(&table)
        .set_key(Some(key("REPORTUSERS#5", &u)))
        .send()
        .await
        .unwrap();
    assert!(old.item.is_none(), "the old entry is gone");
    let done = db
        .get_item()
        .table_name(&table)
        .set_key(Some(key("REPORTUSERS#MIGRATED", "REPORTUSERS#MIGRATED")))
        .send()
        .await
        .unwrap();
    assert!(done.item.is_some(), "the migration is marked done");
}
