//! Digests and quiet hours (README, "Digests and quiet hours"): `info`/`success` email batched
//! into one digest per window, sent once however often or concurrently the flusher runs; email
//! and webhooks held through quiet hours in the user's zone and delivered when they end; `error`
//! at once through both; the inbox always at once; bad settings refused naming the field.
//!
//! Each test has an AccountsTable of its own: the flusher reads every user's due batches, and
//! the tests fire it at future times.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeZone, Timelike, Utc};
use meterbell::platform::handler::Tick;
use meterbell::App;
use meterbell_dev::poller::Consumer;
use meterbell_dev::receiver::Receiver;
use meterbell_dev::testing::unique_user;
use serde_json::{json, Value};

use crate::helpers::{
    app_for, drain, fresh_accounts_table, mails_to, pipeline, queues, send, Queues, TestApi,
};

/// The API, the test's queues and AccountsTable, the notification pipeline and the flusher.
struct Harness {
    api: TestApi,
    q: Queues,
    table: String,
    consumers: Vec<Consumer>,
    flusher: Arc<App>,
}

impl Harness {
    async fn new() -> Harness {
        let api = TestApi::spawn().await;
        let q = queues(&api.stack, 3).await;
        let table = fresh_accounts_table(&api.stack).await;
        let extra = [("ACCOUNTS_TABLE", table.as_str())];
        let consumers = pipeline(&api.stack, &q, &extra);
        let flusher = app_for(&api.stack, "NotificationFlushFunction", &q, &extra);
        Harness {
            api,
            q,
            table,
            consumers,
            flusher,
        }
    }

    /// The routes of `function`, on the test's AccountsTable.
    fn route(&self, function: &str) -> TestApi {
        self.api
            .function_with(function, &[("ACCOUNTS_TABLE", self.table.as_str())])
    }

    async fn set_preferences(&self, user: &str, body: Value) -> Value {
        let reply = self
            .route("PreferencesPutFunction")
            .as_user(user)
            .update_preferences(&body)
            .await;
        assert_eq!(reply.status, 200, "{body}: {}", reply.json);
        reply.json
    }

    async fn notify(&self, user: &str, kind: &str, title: &str, channels: &[&str]) {
        let job = json!({"job_id": format!("{title}-{user}"), "user_id": user, "type": kind,
            "title": title, "message": format!("{title} happened."), "channels": channels});
        send(&self.api.stack, &self.q.jobs, &job.to_string()).await;
    }

    async fn drain(&self) {
        drain(&self.api.stack, &self.consumers, Duration::from_secs(60)).await;
    }

    /// One firing of `notification-flush` as of `at`.
    async fn flush(&self, at: DateTime<Utc>) {
        let Some(meterbell::functions::Handler::Schedule(run)) =
            meterbell::functions::by_binary("notification-flush")
        else {
            panic!("notification-flush is not a scheduled handler");
        };
        run(
            self.flusher.clone(),
            Tick {
                at,
                id: "test".into(),
            },
        )
        .await
        .unwrap();
    }

    async fn deliveries(&self, user: &str, id: &str) -> Vec<Value> {
        self.route("NotificationDeliveriesFunction")
            .as_user(user)
            .delivery_log(id)
            .await
    }
}

/// The end of the current hour, once it is at least `margin` away (so what a test sends now
/// falls in one hourly window).
async fn this_hours_end(margin: chrono::Duration) -> DateTime<Utc> {
    let end = |now: DateTime<Utc>| {
        now.duration_trunc(chrono::Duration::hours(1)).unwrap() + chrono::Duration::hours(1)
    };
    let now = Utc::now();
    if end(now) - now < margin {
        tokio::time::sleep(
            (end(now) - now + chrono::Duration::seconds(1))
                .to_std()
                .unwrap(),
        )
        .await;
    }
    end(Utc::now())
}

fn subjects(mails: &[meterbell_dev::mailbox::Email]) -> Vec<&str> {
    mails.iter().map(|m| m.subject.as_str()).collect()
}

#[tokio::test]
async fn info_and_success_emails_of_one_hour_arrive_as_one_digest_while_an_error_goes_at_once() {
    let h = Harness::new().await;
    let u = unique_user("digest");
    let address = format!("{u}@example.com");
    let prefs = h
        .set_preferences(
            &u,
            json!({"email_address": address, "digest": {"email": "hourly"}, "tz": "Asia/Tokyo"}),
        )
        .await;
    assert_eq!(prefs["digest"], json!({"email": "hourly"}));
    assert_eq!(prefs["bypass"]["error"], true, "errors bypass by default");
    assert_eq!(prefs["bypass"]["info"], false);
    let end = this_hours_end(chrono::Duration::seconds(45)).await;

    for (kind, title) in [
        ("info", "Deploy finished"),
        ("success", "Backup done"),
        ("info", "New login"),
        ("error", "Payment failed"),
    ] {
        h.notify(&u, kind, title, &["email"]).await;
    }
    h.drain().await;

    let inbox = h.api.as_user(&u).whole_inbox("").await;
    assert_eq!(inbox.len(), 4, "the inbox is immediate");
    let mails = mails_to(&address).await;
    assert_eq!(
        subjects(&mails),
        ["Payment failed"],
        "only the error went at once"
    );

    h.flush(Utc::now()).await;
    assert_eq!(
        mails_to(&address).await.len(),
        1,
        "no digest before its hour ends"
    );

    h.flush(end).await;

    let mails = mails_to(&address).await;
    assert_eq!(mails.len(), 2, "{:?}", subjects(&mails));
    let digest = &mails[1];
    assert_eq!(
        digest.subject,
        "Your hourly Meterbell digest: 3 notifications"
    );
    for title in ["Deploy finished", "Backup done", "New login"] {
        assert!(digest.text.contains(title), "{title}: {}", digest.text);
        assert!(digest.html.contains(title), "{title}");
    }
    assert!(!digest.text.contains("Payment failed"));
    assert_eq!(
        digest.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let info = inbox.iter().find(|n| n["title"] == "New login").unwrap();
    let log = h.deliveries(&u, info["id"].as_str().unwrap()).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["channel"], "email");
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["target"], address.as_str());
}

#[tokio::test]
async fn overlapping_and_repeated_flusher_runs_send_each_digest_exactly_once() {
    let h = Harness::new().await;
    let u = unique_user("digest-once");
    let address = format!("{u}@example.com");
    h.set_preferences(
        &u,
        json!({"email_address": address, "digest": {"email": "hourly"}}),
    )
    .await;
    let end = this_hours_end(chrono::Duration::seconds(45)).await;
    for title in ["One", "Two", "Three"] {
        h.notify(&u, "info", title, &["email"]).await;
    }
    h.drain().await;

    // Four overlapping runs of the same firing, then Lambda's retry of it and the next firing.
    futures::future::join_all((0..4).map(|_| h.flush(end))).await;
    h.flush(end).await;
    h.flush(end + chrono::Duration::minutes(5)).await;

    let mails = mails_to(&address).await;
    assert_eq!(
        subjects(&mails),
        ["Your hourly Meterbell digest: 3 notifications"]
    );

    // A notification after that digest went out joins the next window, not the sent one.
    h.notify(&u, "info", "Four", &["email"]).await;
    h.drain().await;
    h.flush(end).await;
    assert_eq!(mails_to(&address).await.len(), 1);
    h.flush(end + chrono::Duration::hours(1)).await;
    let mails = mails_to(&address).await;
    assert_eq!(
        subjects(&mails),
        [
            "Your hourly Meterbell digest: 3 notifications",
            "Your hourly Meterbell digest: Four"
        ]
    );
}

#[tokio::test]
async fn quiet_hours_in_new_york_hold_email_and_webhooks_until_they_end_there_but_not_errors() {
    let h = Harness::new().await;
    let u = unique_user("quiet");
    let address = format!("{u}@example.com");
    let ny = chrono_tz::America::New_York;
    // Quiet from an hour ago to two hours from now on New York's clock (across midnight when
    // the clock gets there): on the UTC clock, five hours ahead, it would not be quiet now.
    let local = ny.from_utc_datetime(&Utc::now().naive_utc());
    let start = (local - chrono::Duration::hours(1))
        .format("%H:%M")
        .to_string();
    let end_local = local + chrono::Duration::hours(2);
    let end = end_local.format("%H:%M").to_string();
    let release = ny
        .from_local_datetime(
            &end_local
                .date_naive()
                .and_hms_opt(end_local.hour(), end_local.minute(), 0)
                .unwrap(),
        )
        .earliest()
        .unwrap()
        .with_timezone(&Utc);
    let prefs = h
        .set_preferences(
            &u,
            json!({"email_address": address, "tz": "America/New_York",
                "quiet_hours": {"start": start, "end": end}}),
        )
        .await;
    assert_eq!(prefs["quiet_hours"], json!({"start": start, "end": end}));
    let receiver = Receiver::start(0).await.unwrap();
    let created = h
        .route("WebhooksCreateFunction")
        .as_user(&u)
        .create_webhook(&json!({"url": receiver.url("/hooks")}))
        .await;
    assert_eq!(created.status, 201, "{}", created.json);
    receiver.set_secret(created.json["secret"].as_str().unwrap());

    h.notify(&u, "warning", "Budget at 80%", &["email", "webhook"])
        .await;
    h.notify(&u, "error", "Card declined", &["email", "webhook"])
        .await;
    h.drain().await;

    assert_eq!(h.api.as_user(&u).whole_inbox("").await.len(), 2);
    let got = receiver.received();
    assert_eq!(got.len(), 1, "only the error went through quiet hours");
    assert!(got[0].body.contains("Card declined") && got[0].verified);
    assert_eq!(subjects(&mails_to(&address).await), ["Card declined"]);
    let export = h
        .route("DataExportFunction")
        .as_user(&u)
        .get("/me/data/export")
        .await;
    let waiting = export.json["waiting_deliveries"].as_array().unwrap();
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    for w in waiting {
        assert_eq!(w["waiting_for"], "quiet_hours");
        assert_eq!(
            w["release_at"],
            meterbell::notifications::notification::timestamp(release).as_str()
        );
    }

    h.flush(release - chrono::Duration::minutes(1)).await;
    h.drain().await;
    assert_eq!(receiver.received().len(), 1, "still quiet a minute before");

    h.flush(release).await;
    h.flush(release).await;
    h.drain().await;

    let got = receiver.received();
    assert_eq!(got.len(), 2, "the held webhook once");
    assert!(got[1].body.contains("Budget at 80%") && got[1].verified);
    assert_eq!(
        subjects(&mails_to(&address).await),
        ["Card declined", "Budget at 80%"]
    );
    let export = h
        .route("DataExportFunction")
        .as_user(&u)
        .get("/me/data/export")
        .await;
    assert_eq!(export.json["waiting_deliveries"], json!([]));
}

#[tokio::test]
async fn bad_digest_and_quiet_hours_settings_are_refused_naming_the_field_and_change_nothing() {
    let api = TestApi::spawn().await;
    let me = api.as_user(&unique_user("quiet-bad"));
    let ok = me
        .update_preferences(&json!({"quiet_hours": {"start": "22:00", "end": "07:00"},
            "digest": {"email": "daily"}}))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    for (body, field) in [
        (
            json!({"quiet_hours": {"start": "25:00", "end": "07:00"}}),
            "quiet_hours.start",
        ),
        (
            json!({"quiet_hours": {"start": "22:00", "end": "7pm"}}),
            "quiet_hours.end",
        ),
        (
            json!({"quiet_hours": {"start": "07:00", "end": "07:00"}}),
            "quiet_hours.end",
        ),
        (
            json!({"quiet_hours": {"start": "22:00"}}),
            "quiet_hours.end",
        ),
        (json!({"quiet_hours": "22-07"}), "quiet_hours"),
        (json!({"digest": {"email": "weekly"}}), "digest.email"),
        (json!({"digest": {"webhook": "hourly"}}), "digest.webhook"),
        (json!({"bypass": {"urgent": true}}), "bypass.urgent"),
        (
            json!({"tz": "Europe/Paris", "quiet_hours": {"start": "24:00", "end": "07:00"}}),
            "quiet_hours.start",
        ),
    ] {
        let reply = me.update_preferences(&body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.json);
        assert_eq!(reply.json["error"]["field"], field, "{body}");
    }
    let prefs = me.preferences("").await;
    assert_eq!(
        prefs.json["quiet_hours"],
        json!({"start": "22:00", "end": "07:00"})
    );
    assert_eq!(prefs.json["digest"]["email"], "daily");
    assert_eq!(prefs.json["tz"], Value::Null, "no partial write");
}

#[tokio::test]
async fn an_erase_takes_the_users_waiting_deliveries_with_it_and_nothing_goes_out_afterwards() {
    let h = Harness::new().await;
    let u = unique_user("quiet-erase");
    let address = format!("{u}@example.com");
    let now = Utc::now();
    let (start, end) = (
        (now - chrono::Duration::hours(1))
            .format("%H:%M")
            .to_string(),
        (now + chrono::Duration::hours(2))
            .format("%H:%M")
            .to_string(),
    );
    h.set_preferences(
        &u,
        json!({"email_address": address, "quiet_hours": {"start": start, "end": end},
            "digest": {"email": "hourly"}}),
    )
    .await;
    h.notify(&u, "warning", "Held back", &["email"]).await;
    h.notify(&u, "info", "Batched", &["email"]).await;
    h.drain().await;
    let stack = &h.api.stack;
    let (work, dlq) = crate::helpers::queue_pair(&stack.clients.sqs, "erase", 3, 5).await;
    let settings = [
        ("ERASE_QUEUE_URL", work.as_str()),
        ("ERASE_DLQ_URL", dlq.as_str()),
        ("ACCOUNTS_TABLE", h.table.as_str()),
    ];
    let eraser = crate::helpers::consumer(
        stack,
        "DataEraserFunction",
        &work,
        app_for(stack, "DataEraserFunction", &h.q, &settings),
    );

    let started = h
        .api
        .function_with("DataEraseFunction", &settings)
        .as_user(&u)
        .delete("/me/data")
        .await;
    assert_eq!(started.status, 202, "{}", started.json);
    drain(stack, &[eraser], Duration::from_secs(120)).await;
    h.flush(now + chrono::Duration::days(2)).await;
    h.drain().await;

    let status = h
        .route("DataErasureFunction")
        .as_user(&u)
        .get("/me/data/erasure")
        .await;
    assert_eq!(status.json["status"], "done", "{}", status.json);
    assert_eq!(status.json["removed"]["waiting_deliveries"], 2);
    let left = stack
        .clients
        .dynamodb
        .query()
        .table_name(&h.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{u}")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(left.count, 0, "{:?}", left.items);
    assert!(mails_to(&address).await.is_empty(), "nothing went out");
}
