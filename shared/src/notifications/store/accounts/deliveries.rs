//! The delivery log (every attempt, in order) and the delivery claims that make one queue
//! message send once.

use super::*;

impl Accounts {
    pub async fn record_attempt(
        &self,
        user: &UserId,
        a: &Attempt,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut put = self
            .table
            .put()
            .item(PK, s(user_partition(user)))
            .item(SK, s(delivery_sk(&a.notification_id, &Uuid::now_v7())))
            .item("notification_id", s(a.notification_id.to_string()))
            .item("channel", s(a.channel.as_str()))
            .item("target", s(a.target.clone()))
            .item("attempt", num(a.attempt as i64))
            .item("status", s(a.status.as_str()))
            .item("at", time(a.at))
            .item("expires_at", num(expires_at));
        if let Some(id) = &a.endpoint_id {
            put = put.item("endpoint_id", s(id.clone()));
        }
        if let Some(code) = a.http_status {
            put = put.item("http_status", num(code as i64));
        }
        if let Some(e) = &a.error {
            put = put.item("error", s(e.clone()));
        }
        put.send().await.map_err(sdk("PutItem delivery attempt"))?;
        Ok(())
    }

    /// Every attempt to deliver `notification`, oldest first.
    pub async fn attempts(
        &self,
        user: &UserId,
        notification: &Uuid,
    ) -> Result<Vec<Attempt>, StoreError> {
        let query = self
            .table
            .query_prefix(user_partition(user), delivery_prefix(notification));
        paging::all(query, "Query delivery attempts")
            .await?
            .iter()
            .map(Self::parse_attempt)
            .collect()
    }

    fn parse_attempt(item: &Item) -> Result<Attempt, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("delivery attempt {what}"));
        Ok(Attempt {
            notification_id: Uuid::parse_str(item.string("notification_id")?)
                .map_err(|_| corrupt("notification_id is not a UUID"))?,
            channel: Channel::parse(item.string("channel")?)
                .ok_or_else(|| corrupt("channel is unknown"))?,
            target: item.string("target")?.to_owned(),
            endpoint_id: item.opt_string("endpoint_id")?.map(str::to_owned),
            attempt: u32::try_from(item.int("attempt")?)
                .map_err(|_| corrupt("attempt is out of range"))?,
            status: AttemptStatus::parse(item.string("status")?)
                .ok_or_else(|| corrupt("status is unknown"))?,
            http_status: item
                .opt_int("http_status")?
                .map(u16::try_from)
                .transpose()
                .map_err(|_| corrupt("http_status is out of range"))?,
            error: item.opt_string("error")?.map(str::to_owned),
            at: item.time("at")?,
        })
    }

    /// Claims the delivery of `notification` to `target` for `lease_seconds`, so that two
    /// copies of one queue message never both send: [`Claim::Delivered`] when it reached the
    /// target already, [`Claim::Busy`] while another invocation holds an unexpired claim.
    pub async fn claim_delivery(
        &self,
        user: &UserId,
        notification: &Uuid,
        target: &str,
        lease_seconds: i64,
        expires_at: i64,
    ) -> Result<Claim, StoreError> {
        let now = Utc::now().timestamp();
        let result = self
            .table
            .update(user_partition(user), delivered_sk(notification, target))
            .update_expression("SET #state = :sending, #until = :until, expires_at = :exp")
            .condition_expression(
                "attribute_not_exists(pk) OR (#state <> :delivered AND #until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#until", "claimed_until")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":delivered", s("delivered"))
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":until", num(now + lease_seconds))
            .expression_attribute_values(":exp", num(expires_at))
            .send()
            .await;
        match result {
            Ok(_) => return Ok(Claim::Claimed),
            Err(e) if is_retryable(&e) => return Ok(Claim::Busy),
            Err(e) if is_condition_failed(&e) => {}
            Err(e) => return Err(sdk("UpdateItem delivery claim")(e)),
        }
        let out_item = self
            .table
            .get(
                user_partition(user),
                delivered_sk(notification, target),
                "GetItem delivery claim",
            )
            .await?;
        let delivered = match &out_item {
            Some(item) => item.opt_string("state")? == Some("delivered"),
            None => false,
        };
        Ok(if delivered {
            Claim::Delivered
        } else {
            Claim::Busy
        })
    }

    /// Records that `notification` reached `target`; later copies of its message send nothing.
    pub async fn mark_delivered(
        &self,
        user: &UserId,
        notification: &Uuid,
        target: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.table
            .put()
            .item(PK, s(user_partition(user)))
            .item(SK, s(delivered_sk(notification, target)))
            .item("state", s("delivered"))
            .item("expires_at", num(expires_at))
            .send()
            .await
            .map_err(sdk("PutItem delivered marker"))?;
        Ok(())
    }

    /// Gives a claim back after a failed attempt, so the retry may claim at once.
    pub async fn release_delivery(
        &self,
        user: &UserId,
        notification: &Uuid,
        target: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .table
            .update(user_partition(user), delivered_sk(notification, target))
            .update_expression("SET #until = :zero")
            .condition_expression("#state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#until", "claimed_until")
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":zero", num(0))
            .send()
            .await;
        // Delivered or released by someone else meanwhile: nothing to give back.
        conditional("UpdateItem delivery release", result)?;
        Ok(())
    }

    /// Logs the attempt of a claimed delivery, then settles the claim: a delivery to retry
    /// gives it back so the retry may claim at once; any other outcome is final, so later
    /// copies of the message send nothing.
    pub async fn settle_delivery(
        &self,
        user: &UserId,
        attempt: &Attempt,
        target: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let notification = &attempt.notification_id;
        self.record_attempt(user, attempt, expires_at).await?;
        match attempt.status {
            AttemptStatus::Retrying => self.release_delivery(user, notification, target).await,
            _ => {
                self.mark_delivered(user, notification, target, expires_at)
                    .await
            }
        }
    }
}
