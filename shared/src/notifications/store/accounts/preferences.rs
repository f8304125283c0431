//! A user's notification preferences: one item, updated field by field.

use super::*;
use crate::notifications::preferences::{Reports, Suppression};
use crate::notifications::timing::{DigestFrequency, LocalTime, QuietHours};
use crate::platform::dynamodb::keys::{report_zone_pk, REPORT_ZONES_PK};

/// On the preferences item: the zone whose registry partition holds the user (see
/// [`Accounts::sync_report_registry`]), so a change of zone can leave the old one.
const REPORT_ZONE_ATTR: &str = "report_zone";

impl Accounts {
    pub async fn preferences(&self, user: &UserId) -> Result<Preferences, StoreError> {
        let out_item = self
            .table
            .get(user_partition(user), PREFS_SK, "GetItem preferences")
            .await?;
        Ok(out_item
            .map(|item| Self::parse_preferences(&item))
            .transpose()?
            .unwrap_or_default())
    }

    fn parse_preferences(item: &Item) -> Result<Preferences, StoreError> {
        let mut p = Preferences::default();
        if let Some(raw) = item.opt_string("email_address")? {
            p.email_address = Some(
                EmailAddress::parse(raw)
                    .map_err(|why| StoreError::Corrupt(format!("email_address {why}")))?,
            );
        }
        for &channel in Channel::ALL {
            for &kind in NotificationType::ALL {
                // A switch never set keeps its default.
                if let Some(on) = item.opt_flag(&switch_attr(channel, kind))? {
                    p.switches_mut(channel).set(kind, on);
                }
            }
        }
        p.low_credit_threshold = item.opt_int("low_credit_threshold")?;
        p.updated_at = item.opt_time("updated_at")?;
        p.reports = Reports {
            daily: item.opt_flag("report_daily")?.unwrap_or(false),
            weekly: item.opt_flag("report_weekly")?.unwrap_or(false),
            monthly: item.opt_flag("report_monthly")?.unwrap_or(false),
            system: item.opt_flag("report_system")?.unwrap_or(false),
        };
        p.tz = item.opt_string("tz")?.map(str::to_owned);
        if let Some(raw) = item.opt_string("digest_email")? {
            p.digest_email = DigestFrequency::parse(raw)
                .ok_or_else(|| StoreError::Corrupt(format!("digest_email {raw:?}")))?;
        }
        if let (Some(start), Some(end)) = (
            item.opt_string("quiet_start")?,
            item.opt_string("quiet_end")?,
        ) {
            let time = |raw: &str| {
                LocalTime::parse(raw)
                    .ok_or_else(|| StoreError::Corrupt(format!("quiet hours time {raw:?}")))
            };
            p.quiet_hours = Some(
                QuietHours::new(time(start)?, time(end)?)
                    .map_err(|(_, why)| StoreError::Corrupt(why))?,
            );
        }
        for &kind in NotificationType::ALL {
            if let Some(on) = item.opt_flag(&format!("bypass_{}", kind.as_str()))? {
                p.bypass.set(kind, on);
            }
        }
        if let Some(address) = item.opt_string("suppressed_address")? {
            p.email_suppressed = Some(Suppression {
                email_address: address.to_owned(),
                reason: item.string("suppressed_reason")?.to_owned(),
                detail: item
                    .opt_string("suppressed_detail")?
                    .unwrap_or("")
                    .to_owned(),
                at: item.time("suppressed_at")?,
            });
        }
        Ok(p)
    }

    /// Pauses email to `address` if it is still the user's address; `true` when this call
    /// paused it (a repeated bounce report changes nothing).
    pub async fn suppress_email(
        &self,
        user: &UserId,
        s_: &Suppression,
    ) -> Result<bool, StoreError> {
        let result = self
            .table
            .update(user_partition(user), PREFS_SK)
            .update_expression(
                "SET suppressed_address = :a, suppressed_reason = :r, suppressed_detail = :d, \
                 suppressed_at = :t",
            )
            .condition_expression(
                "email_address = :a AND (attribute_not_exists(suppressed_address) OR suppressed_address <> :a)",
            )
            .expression_attribute_values(":a", s(&s_.email_address))
            .expression_attribute_values(":r", s(&s_.reason))
            .expression_attribute_values(":d", s(&s_.detail))
            .expression_attribute_values(":t", time(s_.at))
            .send()
            .await;
        Ok(conditional("UpdateItem suppress email", result)?.is_some())
    }

    /// Applies `update` in one write (concurrent updates of different fields both stick) and
    /// returns the preferences as stored.
    pub async fn update_preferences(
        &self,
        user: &UserId,
        update: &CheckedUpdate,
    ) -> Result<Preferences, StoreError> {
        let mut sets = vec!["#updated = :now".to_owned()];
        let mut removes = vec![];
        let mut names = HashMap::from([("#updated".to_owned(), "updated_at".to_owned())]);
        let mut values = HashMap::from([(":now".to_owned(), time(Utc::now()))]);
        match &update.email_address {
            None => {}
            Some(None) => {
                names.insert("#email".into(), "email_address".into());
                removes.push("#email".to_owned());
            }
            Some(Some(address)) => {
                names.insert("#email".into(), "email_address".into());
                values.insert(":email".into(), s(address.as_str()));
                sets.push("#email = :email".into());
            }
        }
        // Setting the address, to another or the same one, lifts a suppression: the user says
        // it works now.
        if update.email_address.is_some() {
            for attr in [
                "suppressed_address",
                "suppressed_reason",
                "suppressed_detail",
                "suppressed_at",
            ] {
                removes.push(attr.to_owned());
            }
        }
        match update.low_credit_threshold {
            None => {}
            Some(None) => {
                names.insert("#lct".into(), "low_credit_threshold".into());
                removes.push("#lct".to_owned());
            }
            Some(Some(t)) => {
                names.insert("#lct".into(), "low_credit_threshold".into());
                values.insert(":lct".into(), num(t));
                sets.push("#lct = :lct".into());
            }
        }
        for (name, on) in &update.reports {
            names.insert(format!("#r_{name}"), format!("report_{name}"));
            values.insert(format!(":r_{name}"), flag(*on));
            sets.push(format!("#r_{name} = :r_{name}"));
        }
        match &update.tz {
            None => {}
            Some(None) => {
                names.insert("#tz".into(), "tz".into());
                removes.push("#tz".to_owned());
            }
            Some(Some(tz)) => {
                names.insert("#tz".into(), "tz".into());
                values.insert(":tz".into(), s(tz));
                sets.push("#tz = :tz".into());
            }
        }
        if let Some(f) = update.digest_email {
            names.insert("#digest".into(), "digest_email".into());
            values.insert(":digest".into(), s(f.as_str()));
            sets.push("#digest = :digest".into());
        }
        match &update.quiet_hours {
            None => {}
            Some(None) => removes.extend(["quiet_start".to_owned(), "quiet_end".to_owned()]),
            Some(Some(q)) => {
                values.insert(":qs".into(), s(q.start.to_string()));
                values.insert(":qe".into(), s(q.end.to_string()));
                sets.push("quiet_start = :qs, quiet_end = :qe".into());
            }
        }
        for (kind, on) in &update.bypass {
            let k = kind.as_str();
            names.insert(format!("#b_{k}"), format!("bypass_{k}"));
            values.insert(format!(":b_{k}"), flag(*on));
            sets.push(format!("#b_{k} = :b_{k}"));
        }
        for (i, (channel, kind, on)) in update.switches.iter().enumerate() {
            names.insert(format!("#s{i}"), switch_attr(*channel, *kind));
            values.insert(format!(":s{i}"), flag(*on));
            sets.push(format!("#s{i} = :s{i}"));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let out = self
            .table
            .update(user_partition(user), PREFS_SK)
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(sdk("UpdateItem preferences"))?;
        let item = out.attributes.unwrap_or_default();
        let prefs = Self::parse_preferences(&item)?;
        if !update.reports.is_empty() || update.tz.is_some() {
            let registered = item.opt_string(REPORT_ZONE_ATTR)?;
            self.sync_report_registry(user, &prefs, registered).await?;
        }
        Ok(prefs)
    }

    /// Keeps the registry of users with report emails (`REPORTZONE#<zone>` / user: their
    /// reports) in step with `prefs`, leaving the zone they were `registered` in if it changed,
    /// so the report run reads one small item per subscriber due and nothing of anyone else.
    /// Written after the preferences; a crash in between is mended by the user's next change
    /// of reports or zone, and the sender checks the preferences before sending anyway.
    pub async fn sync_report_registry(
        &self,
        user: &UserId,
        prefs: &Preferences,
        registered: Option<&str>,
    ) -> Result<(), StoreError> {
        let zone = prefs
            .reports
            .any()
            .then(|| prefs.tz.as_deref().unwrap_or("UTC"));
        if let Some(old) = registered.filter(|old| Some(*old) != zone) {
            self.leave_report_zone(user, old).await?;
        }
        let Some(zone) = zone else {
            if registered.is_some() {
                self.set_report_zone(user, None).await?;
            }
            return Ok(());
        };
        // The zone's index entry first: a subscriber is never in a zone the run does not visit.
        self.table
            .put()
            .item(PK, s(REPORT_ZONES_PK))
            .item(SK, s(zone))
            .send()
            .await
            .map_err(sdk("PutItem report zone"))?;
        self.table
            .put()
            .item(PK, s(report_zone_pk(zone)))
            .item(SK, s(user.as_str()))
            .item("daily", flag(prefs.reports.daily))
            .item("weekly", flag(prefs.reports.weekly))
            .item("monthly", flag(prefs.reports.monthly))
            .send()
            .await
            .map_err(sdk("PutItem report registry"))?;
        if registered != Some(zone) {
            self.set_report_zone(user, Some(zone)).await?;
        }
        Ok(())
    }

    /// Takes the user out of the report registry (an erase): the zone their preferences name.
    pub async fn leave_report_registry(&self, user: &UserId) -> Result<(), StoreError> {
        let item = self
            .table
            .get(user_partition(user), PREFS_SK, "GetItem preferences")
            .await?;
        if let Some(zone) = item
            .as_ref()
            .map(|i| i.opt_string(REPORT_ZONE_ATTR))
            .transpose()?
            .flatten()
        {
            self.leave_report_zone(user, zone).await?;
        }
        Ok(())
    }

    async fn leave_report_zone(&self, user: &UserId, zone: &str) -> Result<(), StoreError> {
        self.table
            .client()
            .delete_item()
            .table_name(self.table.name())
            .key(PK, s(report_zone_pk(zone)))
            .key(SK, s(user.as_str()))
            .send()
            .await
            .map_err(sdk("DeleteItem report registry"))?;
        Ok(())
    }

    /// Records on the preferences item (which exists: it was just written) where the user is
    /// registered.
    async fn set_report_zone(&self, user: &UserId, zone: Option<&str>) -> Result<(), StoreError> {
        let update = self
            .table
            .update(user_partition(user), PREFS_SK)
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#z", REPORT_ZONE_ATTR);
        let update = match zone {
            Some(z) => update
                .update_expression("SET #z = :z")
                .expression_attribute_values(":z", s(z)),
            None => update.update_expression("REMOVE #z"),
        };
        conditional("UpdateItem report zone", update.send().await)?;
        Ok(())
    }
}

/// The report registry before it was keyed by zone: `REPORTUSERS#<shard>` / user id, read by
/// every hourly run. Deployments that had it move its users to the zone-keyed registry a page
/// at a time (see [`Accounts::migrate_legacy_report_users`]); `LEGACY_DONE` marks the end, so
/// afterwards a run pays one read for it.
const LEGACY_REPORT_USERS_SHARDS: u32 = 8;
const LEGACY_DONE_PK: &str = "REPORTUSERS#MIGRATED";
/// Users read per shard and Query.
const LEGACY_PAGE: i32 = 100;

fn legacy_report_users_pk(shard: u32) -> String {
    format!("REPORTUSERS#{shard}")
}

impl Accounts {
    /// Moves users from the old registry into the zone-keyed one (from their preferences, which
    /// decide), a page per shard at a time, deleting each old entry after, until the old
    /// registry is empty (then marks the migration done) or `deadline` passes (the next run goes
    /// on). Returns how many users moved. Idempotent: a run that stops half-way leaves old
    /// entries the next run moves again to the same place.
    pub async fn migrate_legacy_report_users(
        &self,
        deadline: std::time::Instant,
    ) -> Result<usize, StoreError> {
        if self
            .table
            .get(
                LEGACY_DONE_PK.to_owned(),
                LEGACY_DONE_PK,
                "GetItem report registry migrated",
            )
            .await?
            .is_some()
        {
            return Ok(0);
        }
        let mut moved = 0;
        loop {
            let round = self.migrate_legacy_page().await?;
            moved += round;
            if round == 0 {
                self.table
                    .put()
                    .item(PK, s(LEGACY_DONE_PK))
                    .item(SK, s(LEGACY_DONE_PK))
                    .send()
                    .await
                    .map_err(sdk("PutItem report registry migrated"))?;
                return Ok(moved);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(moved);
            }
        }
    }

    /// One page of each shard of the old registry moved; how many users that was.
    async fn migrate_legacy_page(&self) -> Result<usize, StoreError> {
        let mut moved = 0;
        for shard in 0..LEGACY_REPORT_USERS_SHARDS {
            let out = self
                .table
                .query()
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(legacy_report_users_pk(shard)))
                .limit(LEGACY_PAGE)
                .send()
                .await
                .map_err(sdk("Query old report registry"))?;
            for item in out.items() {
                let user = UserId::parse(item.string(SK)?)
                    .map_err(|e| StoreError::Corrupt(format!("old report registry user {e}")))?;
                let stored = self
                    .table
                    .get(user_partition(&user), PREFS_SK, "GetItem preferences")
                    .await?;
                if let Some(prefs_item) = &stored {
                    let prefs = Self::parse_preferences(prefs_item)?;
                    let registered = prefs_item.opt_string(REPORT_ZONE_ATTR)?;
                    self.sync_report_registry(&user, &prefs, registered).await?;
                }
                self.table
                    .client()
                    .delete_item()
                    .table_name(self.table.name())
                    .key(PK, s(legacy_report_users_pk(shard)))
                    .key(SK, s(user.as_str()))
                    .send()
                    .await
                    .map_err(sdk("DeleteItem old report registry"))?;
                moved += 1;
            }
        }
        Ok(moved)
    }
}

/// One subscriber of report emails, as the registry holds them.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportSubscriber {
    pub user: UserId,
    pub tz: String,
    pub reports: Reports,
}

/// Who may send one report email now.
#[derive(Debug, PartialEq, Eq)]
pub enum ReportClaim {
    /// This invocation: send, then mark it sent.
    Claimed,
    /// It went out already.
    Sent,
    /// Another invocation is sending it right now.
    Busy,
}

/// How long a claim holds a report email before another invocation may take it over.
const REPORT_CLAIM_SECONDS: i64 = 120;

impl Accounts {
    /// The zones with report subscribers (or that had some).
    pub async fn report_zones(&self) -> Result<Vec<String>, StoreError> {
        let query = self
            .table
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(REPORT_ZONES_PK));
        let mut out = vec![];
        for item in paging::all(query, "Query report zones").await? {
            out.push(item.string(SK)?.to_owned());
        }
        Ok(out)
    }

    /// The subscribers registered in `zone`.
    pub async fn report_subscribers(
        &self,
        zone: &str,
    ) -> Result<Vec<ReportSubscriber>, StoreError> {
        let query = self
            .table
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(report_zone_pk(zone)));
        let mut out = vec![];
        for item in paging::all(query, "Query report registry").await? {
            let user = UserId::parse(item.string(SK)?)
                .map_err(|e| StoreError::Corrupt(format!("report registry user {e}")))?;
            out.push(ReportSubscriber {
                user,
                tz: zone.to_owned(),
                reports: Reports {
                    daily: item.flag("daily")?,
                    weekly: item.flag("weekly")?,
                    monthly: item.flag("monthly")?,
                    // The sender reads it from the preferences.
                    system: false,
                },
            });
        }
        Ok(out)
    }

    /// Claims the report email `sk` of `user` (`REPORT#<kind>#<period>`): exactly one invocation
    /// sends it, however many runs or redeliveries ask.
    pub async fn claim_report(&self, user: &UserId, sk: &str) -> Result<ReportClaim, StoreError> {
        let now = Utc::now();
        let result = self
            .table
            .put()
            .item(PK, s(user_partition(user)))
            .item(SK, s(sk))
            .item("state", s("sending"))
            .item("claimed_at", num(now.timestamp()))
            .item(
                "expires_at",
                num((now + chrono::Duration::days(400)).timestamp()),
            )
            .condition_expression(
                "attribute_not_exists(pk) OR (#st = :sending AND claimed_at < :stale)",
            )
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":stale", num(now.timestamp() - REPORT_CLAIM_SECONDS))
            .send()
            .await;
        if conditional("PutItem report claim", result)?.is_some() {
            return Ok(ReportClaim::Claimed);
        }
        let item = self
            .table
            .get(user_partition(user), sk, "GetItem report claim")
            .await?;
        Ok(
            match item.as_ref().map(|i| i.string("state")).transpose()? {
                Some("sent") => ReportClaim::Sent,
                _ => ReportClaim::Busy,
            },
        )
    }

    /// Marks the report email `sk` sent (or settled: nothing to send).
    pub async fn report_sent(
        &self,
        user: &UserId,
        sk: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.table
            .update(user_partition(user), sk)
            .update_expression("SET #st = :sent, outcome = :o")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":sent", s("sent"))
            .expression_attribute_values(":o", s(outcome))
            .send()
            .await
            .map_err(sdk("UpdateItem report sent"))?;
        Ok(())
    }
}
