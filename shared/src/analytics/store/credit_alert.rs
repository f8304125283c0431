//! The low-credit alert state, kept on the user's totals item (`USER#<user>#TOTAL` / `ALL`) so
//! that one consistent read after an ingest gives the balance, the state and the user's
//! threshold together. The analytics half only stores these attributes; what they mean and
//! what they notify is the seam's (`seam::low_credits`).
//!
//! Attributes: `lc_state` (a level name; absent = never alerted), `lc_epoch` (absent = 0),
//! `lc_threshold` (the user's override; absent = the deployment's default).

use super::*;
use crate::platform::dynamodb::error::conditional;

const STATE: &str = "lc_state";
const EPOCH: &str = "lc_epoch";
const THRESHOLD: &str = "lc_threshold";

/// A user's credits with their low-credit alert state, read in one consistent read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreditStanding {
    pub totals: CreditTotals,
    /// `None` when never alerted.
    pub alert_state: Option<String>,
    pub alert_epoch: i64,
    pub threshold: Option<i64>,
    /// Whether the user has budgets (the `bg` count kept by `store::budgets`): the budget
    /// evaluation after an ingest reads the budgets only then.
    pub has_budgets: bool,
}

impl UsageStore {
    /// The totals item, strongly consistent: it must see the ingest that just committed.
    pub async fn credit_standing(&self, user: &UserId) -> Result<CreditStanding, StoreError> {
        let Some(item) = self
            .totals_item(user, true, "GetItem credit standing")
            .await?
        else {
            return Ok(CreditStanding::default());
        };
        Ok(CreditStanding {
            totals: CreditTotals::from_item(&item)?,
            alert_state: item.opt_string(STATE)?.map(str::to_owned),
            alert_epoch: item.opt_int(EPOCH)?.unwrap_or(0),
            threshold: item.opt_int(THRESHOLD)?,
            has_budgets: item.opt_int(super::budgets::MARKER)?.unwrap_or(0) > 0,
        })
    }

    /// Moves the alert state from (`from_state`, `from_epoch`) as read to (`to_state`,
    /// `to_epoch`); `false` when another writer moved it first (re-read and decide again).
    pub async fn move_credit_alert(
        &self,
        user: &UserId,
        from_state: Option<&str>,
        from_epoch: i64,
        to_state: &str,
        to_epoch: i64,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(self.rollups_table()?)
            .key(PK, s(user_totals_pk(user.as_str())))
            .key(SK, s(TOTALS_SK))
            .update_expression("SET #st = :to, #ep = :te")
            .expression_attribute_names("#st", STATE)
            .expression_attribute_names("#ep", EPOCH)
            .expression_attribute_values(":to", s(to_state))
            .expression_attribute_values(":te", num(to_epoch))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        update = match from_state {
            None => update.condition_expression("attribute_not_exists(#st)"),
            Some(state) => update
                .condition_expression("#st = :fs AND #ep = :fe")
                .expression_attribute_values(":fs", s(state))
                .expression_attribute_values(":fe", num(from_epoch)),
        };
        let written = conditional("UpdateItem credit alert", update.send().await)?;
        if let Some(out) = &written {
            let units = units(out.consumed_capacity());
            self.charge(|s| s.write_units += units);
        }
        Ok(written.is_some())
    }

    /// Sets (`Some`) or removes (`None`) the user's own low-credit threshold.
    pub async fn set_credit_threshold(
        &self,
        user: &UserId,
        threshold: Option<i64>,
    ) -> Result<(), StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(self.rollups_table()?)
            .key(PK, s(user_totals_pk(user.as_str())))
            .key(SK, s(TOTALS_SK))
            .expression_attribute_names("#th", THRESHOLD);
        let update = match threshold {
            Some(t) => update
                .update_expression("SET #th = :th")
                .expression_attribute_values(":th", num(t)),
            None => update.update_expression("REMOVE #th"),
        };
        update
            .send()
            .await
            .map_err(sdk("UpdateItem credit threshold"))?;
        Ok(())
    }
}
