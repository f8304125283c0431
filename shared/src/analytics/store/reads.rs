//! Reading rollups: the items covering a period (one Query per contiguous run of buckets), a
//! user's credit totals, and the users active on each day.

use super::*;

impl UsageStore {
    /// The rollups covering `cover` for `scope`, keyed as [`Cover::keys`] (`2026-11-22`,
    /// `2026-11-22T10`, `2026-11-22T10:15`, or `2026-11-22T10#parts` for an edge hour's model
    /// and endpoint items). Reads one Query per contiguous run of buckets, each bucket's own item
    /// and its model and endpoint items, so the items read depend on the period and the
    /// distinct models and endpoints, never on how many events it holds.
    pub async fn rollups(
        &self,
        scope: &Scope,
        cover: &Cover,
    ) -> Result<BTreeMap<String, Rollup>, StoreError> {
        self.rollups_read(scope, cover, false).await
    }

    /// [`Self::rollups`], strongly consistent: for a decision right after an ingest committed.
    pub async fn rollups_consistent(
        &self,
        scope: &Scope,
        cover: &Cover,
    ) -> Result<BTreeMap<String, Rollup>, StoreError> {
        self.rollups_read(scope, cover, true).await
    }

    async fn rollups_read(
        &self,
        scope: &Scope,
        cover: &Cover,
        consistent: bool,
    ) -> Result<BTreeMap<String, Rollup>, StoreError> {
        let mut runs: Vec<(char, String, String)> = vec![];
        if let (Some(first), Some(last)) = (cover.days.first(), cover.days.last()) {
            runs.push(('D', day_key(*first), day_key(*last)));
        }
        // Whole hours and edge hours (whose model and endpoint items only are wanted) are read
        // together: one Query per contiguous run.
        let mut hours: Vec<DateTime<Utc>> = cover.hours.clone();
        hours.extend(&cover.edge_hours);
        for (from, to) in contiguous(hours, Duration::hours(1)) {
            runs.push(('H', hour_key(from), hour_key(to)));
        }
        for (from, to) in contiguous(cover.quarters.clone(), Duration::minutes(15)) {
            runs.push(('Q', quarter_key(from), quarter_key(to)));
        }
        let wanted_days: BTreeSet<String> = cover.days.iter().map(|d| day_key(*d)).collect();
        let whole_hours: BTreeSet<String> = cover.hours.iter().map(|h| hour_key(*h)).collect();
        let edge_hours: BTreeSet<String> = cover.edge_hours.iter().map(|h| hour_key(*h)).collect();
        let mut out: BTreeMap<String, Rollup> = BTreeMap::new();
        let partitions: Vec<(String, char)> = runs
            .iter()
            .map(|r| r.0)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .flat_map(|level| match scope {
                Scope::User(u) => vec![(user_rollup_pk(u, level), level)],
                Scope::System => (0..SYSTEM_SHARDS)
                    .map(|s| (system_rollup_pk(s, level), level))
                    .collect(),
            })
            .collect();
        for (level, from, to) in &runs {
            for (pk, l) in &partitions {
                if l != level {
                    continue;
                }
                let to = rollup_range_end(to);
                for item in self
                    .query_range(self.rollups_table()?, pk, from, &to, consistent)
                    .await?
                {
                    // A bucket's own item and its model and endpoint items sum to its rollup.
                    let sk = item.string(SK)?;
                    let bucket = rollup_bucket(sk).to_owned();
                    let part = sk.split_once('#').map(|(_, part)| part.to_owned());
                    // A day Query spans first..last; keep only the days the cover asked for.
                    if *level == 'D' && !wanted_days.contains(&bucket) {
                        continue;
                    }
                    // Every number attribute is a counter; keys and index attributes are text.
                    let mut terms = vec![];
                    for (name, value) in &item {
                        if value.is_n() {
                            terms.push((name.as_str(), item.int(name)?));
                        }
                    }
                    let rollup = Rollup::from_item(part.as_deref(), terms);
                    if *level != 'H' {
                        out.entry(bucket).or_default().merge(&rollup);
                        continue;
                    }
                    // An edge hour lends only its model and endpoint items (see `Cover`).
                    let is_part = item.string(SK)?.contains('#');
                    if is_part && edge_hours.contains(&bucket) {
                        out.entry(format!("{bucket}#parts"))
                            .or_default()
                            .merge(&rollup);
                    }
                    if whole_hours.contains(&bucket) {
                        out.entry(bucket).or_default().merge(&rollup);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn query_range(
        &self,
        table: &str,
        pk: &str,
        from: &str,
        to: &str,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(table)
            .consistent_read(consistent)
            .key_condition_expression("pk = :pk AND sk BETWEEN :a AND :b")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":a", s(from))
            .expression_attribute_values(":b", s(to))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let mut items = vec![];
        let mut pages = std::pin::pin!(paging::pages(query, "Query rollups"));
        while let Some(page) = pages.try_next().await? {
            self.charge_read(page.read_units, page.items.len());
            items.extend(page.items);
        }
        Ok(items)
    }

    /// The user's all-time credits (all zero for a user with no usage yet).
    pub async fn credit_totals(&self, user: &UserId) -> Result<CreditTotals, StoreError> {
        match self.totals_item(user, false, "GetItem totals").await? {
            None => Ok(CreditTotals::default()),
            Some(item) => CreditTotals::from_item(&item),
        }
    }

    /// The user's totals item; `consistent` when it must see a write that just committed.
    pub(super) async fn totals_item(
        &self,
        user: &UserId,
        consistent: bool,
        what: &'static str,
    ) -> Result<Option<Item>, StoreError> {
        self.user_item(user, TOTALS_SK, consistent, what).await
    }

    /// One item of the user's totals partition (`sk`): the totals, the budgets or the rules.
    pub(super) async fn user_item(
        &self,
        user: &UserId,
        sk: &str,
        consistent: bool,
        what: &'static str,
    ) -> Result<Option<Item>, StoreError> {
        self.partition_item(&user_totals_pk(user.as_str()), sk, consistent, what)
            .await
    }

    /// One item of a totals partition (a user's, or the platform's).
    pub(super) async fn partition_item(
        &self,
        pk: &str,
        sk: &str,
        consistent: bool,
        what: &'static str,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(self.rollups_table()?)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(consistent)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(sdk(what))?;
        let units = units(out.consumed_capacity());
        self.charge_read(units, usize::from(out.item.is_some()));
        Ok(out.item)
    }

    /// Users with activity on each UTC day, with their (requests, cost micros) that day.
    pub async fn active_users(
        &self,
        days: &[NaiveDate],
    ) -> Result<BTreeMap<NaiveDate, Vec<ActiveUser>>, StoreError> {
        let mut out = BTreeMap::new();
        for day in days {
            let query = self
                .client
                .query()
                .table_name(self.rollups_table()?)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :d")
                .expression_attribute_values(":d", s(active_day_pk(&day_key(*day))))
                .select(Select::AllProjectedAttributes)
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            let mut users = vec![];
            let mut pages = std::pin::pin!(paging::pages(query, "Query active users"));
            while let Some(page) = pages.try_next().await? {
                self.charge_read(page.read_units, page.items.len());
                for item in &page.items {
                    users.push(ActiveUser {
                        user_id: item.string("user_id")?.to_owned(),
                        requests: item.opt_int("T|r")?.unwrap_or(0),
                        cost_micros: item.opt_int("T|u")?.unwrap_or(0),
                    });
                }
            }
            out.insert(*day, users);
        }
        Ok(out)
    }
}

/// Sorted, deduplicated `times` cut into runs of consecutive steps: (first, last) of each.
fn contiguous(
    mut times: Vec<DateTime<Utc>>,
    step: Duration,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    times.sort();
    times.dedup();
    let mut runs = vec![];
    let mut i = 0;
    while i < times.len() {
        let mut j = i;
        while j + 1 < times.len() && times[j + 1] - times[j] == step {
            j += 1;
        }
        runs.push((times[i], times[j]));
        i = j + 1;
    }
    runs
}
