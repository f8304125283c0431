//! One page of the inbox, newest first, with the exact total of its filters.

use super::*;

impl Notifications {
    /// One page of `user`'s inbox, newest first.
    pub async fn list(&self, user: &UserId, q: &ListQuery) -> Result<Page, StoreError> {
        let counters = self.counters(user).await?;
        let want = q.offset + q.limit + 1;
        let high = match &q.after {
            Some(id) => notification_sk(id),
            None => NOTIF_END.to_owned(),
        };
        let unread_only = q.is_read == Some(false);
        let mut names = HashMap::new();
        let mut values = HashMap::from([(":hi".to_owned(), s(high))]);
        let mut filters = vec![];
        let key_condition = if unread_only {
            names.insert("#gpk".to_owned(), GSI1PK.to_owned());
            names.insert("#gsk".to_owned(), GSI1SK.to_owned());
            values.insert(":pk".into(), s(unread_partition(user)));
            values.insert(
                ":lo".into(),
                s(counters
                    .read_before
                    .clone()
                    .unwrap_or_else(|| NOTIF_PREFIX.to_owned())),
            );
            "#gpk = :pk AND #gsk BETWEEN :lo AND :hi"
        } else {
            values.insert(":pk".into(), s(user_partition(user)));
            values.insert(":lo".into(), s(NOTIF_PREFIX));
            "pk = :pk AND sk BETWEEN :lo AND :hi"
        };
        if let Some(kind) = q.kind {
            names.insert("#type".into(), "type".into());
            values.insert(":type".into(), s(kind.as_str()));
            filters.push("#type = :type".to_owned());
        }
        if q.is_read == Some(true) {
            values.insert(":true".into(), flag(true));
            match counters
                .read_before
                .as_deref()
                .and_then(|w| w.strip_prefix(NOTIF_PREFIX))
            {
                Some(watermark_id) => {
                    values.insert(":rb".into(), s(watermark_id));
                    filters.push("(is_read = :true OR id <= :rb)".into());
                }
                None => filters.push("is_read = :true".into()),
            }
        }
        // Unread items all sit above the watermark: a position under it (a read-all came
        // between two pages) has nothing unread after it.
        if unread_only {
            let lo = counters.read_before.as_deref().unwrap_or(NOTIF_PREFIX);
            if values
                .get(":hi")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|hi| hi.as_str() < lo)
            {
                return Ok(Page {
                    items: vec![],
                    total: counters.matching(q.is_read, q.kind),
                    has_more: false,
                });
            }
        }
        let page_size = if filters.is_empty() {
            (want + 1).min(1_000) as i32
        } else {
            500
        };
        let mut query = self
            .table
            .query()
            .key_condition_expression(key_condition)
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(false)
            .limit(page_size);
        if !names.is_empty() {
            query = query.set_expression_attribute_names(Some(names));
        }
        if !filters.is_empty() {
            query = query.filter_expression(filters.join(" AND "));
        }
        query = if unread_only {
            query.index_name(GSI1)
        } else {
            query.consistent_read(true)
        };
        let mut pages = std::pin::pin!(paging::pages(query, "Query notifications"));
        let mut items = Vec::new();
        'pages: while let Some(page) = pages.try_next().await? {
            for raw in &page.items {
                let n = Self::parse_item(raw)?;
                let sk = notification_sk(&n.id);
                if Some(n.id) == q.after || (unread_only && counters.covers(&sk)) {
                    continue;
                }
                items.push(Self::with_watermark(n, &counters));
                if items.len() >= want {
                    break 'pages;
                }
            }
        }
        let has_more = items.len() > q.offset + q.limit;
        let items = items.into_iter().skip(q.offset).take(q.limit).collect();
        Ok(Page {
            items,
            total: counters.matching(q.is_read, q.kind),
            has_more,
        })
    }
}
