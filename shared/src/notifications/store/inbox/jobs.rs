//! Job records: which notification a job created for a user, and the lease on its fan-out.

use super::*;

impl Notifications {
    /// What `job` created for `user`, if it ran.
    pub async fn job_record(
        &self,
        user: &UserId,
        job: &JobId,
    ) -> Result<Option<JobRecord>, StoreError> {
        let out_item = self
            .table
            .get(
                user_partition(user),
                job_sk(job.as_str()),
                "GetItem job record",
            )
            .await?;
        let Some(item) = out_item else {
            return Ok(None);
        };
        let id = Uuid::parse_str(item.string("notification_id")?)
            .map_err(|_| StoreError::Corrupt("job record notification_id is not a UUID".into()))?;
        let created_at = item.time("created_at")?;
        let fanned_out = item.flag("fanned_out")?;
        Ok(Some(JobRecord {
            notification_id: id,
            created_at,
            fanned_out,
        }))
    }

    /// Takes over the fan-out of a job whose writer did not record it done: `true` when the
    /// lease was free (expired), `false` while another invocation still holds it.
    pub async fn claim_fan_out(&self, user: &UserId, job: &JobId) -> Result<bool, StoreError> {
        let now = Utc::now().timestamp();
        let result = self
            .table
            .update(user_partition(user), job_sk(job.as_str()))
            .update_expression("SET fanning_until = :until")
            .condition_expression(
                "fanned_out = :f AND (attribute_not_exists(fanning_until) OR fanning_until < :now)",
            )
            .expression_attribute_values(":f", flag(false))
            .expression_attribute_values(":now", num(now))
            .expression_attribute_values(":until", num(now + FAN_OUT_LEASE_SECONDS))
            .send()
            .await;
        // A race with the writer counts as "held by someone else": look again later.
        match result {
            Err(e) if is_retryable(&e) => Ok(false),
            other => Ok(conditional("UpdateItem claim fan-out", other)?.is_some()),
        }
    }

    /// Records that the job's email and webhook messages for `user` are enqueued.
    pub async fn mark_fanned_out(&self, user: &UserId, job: &JobId) -> Result<(), StoreError> {
        self.table
            .update(user_partition(user), job_sk(job.as_str()))
            .update_expression("SET fanned_out = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", flag(true))
            .send()
            .await
            .map_err(sdk("UpdateItem job record"))?;
        Ok(())
    }
}
