//! Fires the template's EventBridge schedules locally, as EventBridge would: each `Schedule`
//! event of each function, at the minutes its expression names, with the firing's own time in
//! the [`Tick`]. `meterbell-dev fire <Function>` fires one now.
//!
//! Expressions understood: `rate(N minute|minutes|hour|hours|day|days)` and
//! `cron(minutes hours day-of-month month day-of-week year)` where the minute and hour fields are
//! `*`, `*/n`, `a/n`, a number or a list of numbers and the other fields are `*` or `?` — what the
//! template uses. Anything else is refused when the runner starts, so a schedule the runner
//! cannot honour is never silently skipped.

use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use chrono::{DateTime, Duration, DurationRound, Timelike, Utc};
use meterbell::functions::{self as handlers, Handler};
use meterbell::platform::handler::{ScheduleHandler, Tick};
use meterbell::App;

use crate::stack::LocalStack;

/// When a schedule fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expression {
    /// Every `n` minutes, counted from when the runner started (as a rate rule counts from its
    /// creation).
    Every(i64),
    /// At the listed minutes of the listed hours (UTC).
    Cron { minutes: Vec<u32>, hours: Vec<u32> },
}

impl Expression {
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if let Some(inner) = raw.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            let (n, unit) = inner
                .trim()
                .split_once(' ')
                .ok_or_else(|| anyhow!("{raw}: rate takes a value and a unit"))?;
            let n: i64 = n
                .parse()
                .map_err(|_| anyhow!("{raw}: rate value must be a whole number"))?;
            let minutes = match unit.trim() {
                "minute" | "minutes" => n,
                "hour" | "hours" => n * 60,
                "day" | "days" => n * 1_440,
                other => bail!("{raw}: unknown rate unit {other:?}"),
            };
            if minutes <= 0 {
                bail!("{raw}: rate must be positive");
            }
            return Ok(Self::Every(minutes));
        }
        if let Some(inner) = raw.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            let fields: Vec<&str> = inner.split_whitespace().collect();
            let [minute, hour, dom, month, dow, year] = fields[..] else {
                bail!("{raw}: cron takes six fields");
            };
            for (name, f) in [
                ("day-of-month", dom),
                ("month", month),
                ("day-of-week", dow),
                ("year", year),
            ] {
                if f != "*" && f != "?" {
                    bail!("{raw}: the local runner supports only * or ? in the {name} field");
                }
            }
            return Ok(Self::Cron {
                minutes: field(raw, minute, 60)?,
                hours: field(raw, hour, 24)?,
            });
        }
        bail!("{raw}: not a rate(...) or cron(...) expression")
    }

    /// The first firing strictly after `after` (for [`Expression::Every`], counted from
    /// `started`).
    pub fn next(&self, started: DateTime<Utc>, after: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Every(n) => {
                let step = Duration::minutes(*n);
                let done = (after - started).num_minutes().max(0) / n;
                started + step * (done as i32 + 1)
            }
            Self::Cron { minutes, hours } => {
                let mut t = after.duration_trunc(Duration::minutes(1)).unwrap_or(after)
                    + Duration::minutes(1);
                // At most two days of minutes: every valid (minute, hour) pair occurs daily.
                for _ in 0..2 * 1_440 {
                    if minutes.contains(&t.minute()) && hours.contains(&t.hour()) {
                        return t;
                    }
                    t += Duration::minutes(1);
                }
                t
            }
        }
    }
}

/// One cron field: `*`, `*/n`, `a` or `a,b,c` within `0..limit`.
fn field(raw: &str, f: &str, limit: u32) -> Result<Vec<u32>> {
    if f == "*" {
        return Ok((0..limit).collect());
    }
    // `*/n` or `a/n` (EventBridge's form): every n-th value from the first (or from a).
    if let Some((first, step)) = f.split_once('/') {
        let from: u32 = match first {
            "*" => 0,
            a => a
                .parse()
                .ok()
                .filter(|a| *a < limit)
                .ok_or_else(|| anyhow!("{raw}: bad start {f:?}"))?,
        };
        let step: u32 = step
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| anyhow!("{raw}: bad step {f:?}"))?;
        return Ok((from..limit).step_by(step as usize).collect());
    }
    f.split(',')
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|v| *v < limit)
                .ok_or_else(|| anyhow!("{raw}: {v:?} is not a value below {limit}"))
        })
        .collect()
}

/// A scheduled function of the template, ready to fire.
pub struct Scheduled {
    pub function: String,
    pub expressions: Vec<Expression>,
    pub handler: ScheduleHandler,
    pub app: Arc<App>,
}

/// Every scheduled function of the template.
pub fn scheduled(stack: &LocalStack) -> Result<Vec<Scheduled>> {
    let mut out = vec![];
    for function in &stack.template.functions {
        if function.schedules.is_empty() {
            continue;
        }
        let handler = match handlers::by_binary(&function.binary) {
            Some(Handler::Schedule(h)) => h,
            _ => bail!(
                "{}: no scheduled handler for binary {:?}",
                function.logical_id,
                function.binary
            ),
        };
        out.push(Scheduled {
            function: function.logical_id.clone(),
            expressions: function
                .schedules
                .iter()
                .map(|e| Expression::parse(e))
                .collect::<Result<_>>()?,
            handler,
            app: stack.app_for(function)?,
        });
    }
    Ok(out)
}

impl Scheduled {
    /// Fires once, as of `at`.
    pub async fn fire(&self, at: DateTime<Utc>) -> Result<()> {
        let tick = Tick {
            at,
            id: format!("local-{}", uuid::Uuid::new_v4()),
        };
        (self.handler)(self.app.clone(), tick)
            .await
            .map_err(|e| anyhow!("{}: {e}", self.function))
    }

    /// Fires at every time the expressions name, until the task is dropped.
    pub async fn run(self) {
        let started = Utc::now();
        let mut last = started;
        loop {
            let Some(next) = self.expressions.iter().map(|e| e.next(started, last)).min() else {
                return;
            };
            let wait = (next - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            match self.fire(next).await {
                Ok(()) => tracing::info!(function = self.function, at = %next, "schedule fired"),
                Err(e) => {
                    tracing::warn!(function = self.function, error = %e, "scheduled run failed")
                }
            }
            last = next;
        }
    }
}

/// The scheduled function `logical_id` of the template.
pub fn find(stack: &LocalStack, logical_id: &str) -> Result<Scheduled> {
    scheduled(stack)?
        .into_iter()
        .find(|s| s.function == logical_id)
        .ok_or_else(|| {
            let names: Vec<String> = stack
                .template
                .functions
                .iter()
                .filter(|f| !f.schedules.is_empty())
                .map(|f| f.logical_id.clone())
                .collect();
            anyhow!(
                "{logical_id} is not a scheduled function of the template; these are: {}",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn rates_count_from_the_start() {
        let e = Expression::parse("rate(15 minutes)").unwrap();
        let start = at("2026-11-24T10:07:00Z");
        assert_eq!(e.next(start, start), at("2026-11-24T10:22:00Z"));
        assert_eq!(
            e.next(start, at("2026-11-24T10:22:00Z")),
            at("2026-11-24T10:37:00Z")
        );
        assert_eq!(
            Expression::parse("rate(1 hour)").unwrap(),
            Expression::Every(60)
        );
    }

    #[test]
    fn cron_fires_at_the_named_minute_of_each_hour() {
        let e = Expression::parse("cron(2 * * * ? *)").unwrap();
        let start = at("2026-11-24T10:07:30Z");
        assert_eq!(e.next(start, start), at("2026-11-24T11:02:00Z"));
        let e = Expression::parse("cron(0,30 8 * * ? *)").unwrap();
        assert_eq!(e.next(start, start), at("2026-11-25T08:00:00Z"));
        assert_eq!(
            e.next(start, at("2026-11-25T08:00:00Z")),
            at("2026-11-25T08:30:00Z")
        );
        let e = Expression::parse("cron(0/5 * * * ? *)").unwrap();
        assert_eq!(e.next(start, start), at("2026-11-24T10:10:00Z"));
        let e = Expression::parse("cron(3/20 * * * ? *)").unwrap();
        assert_eq!(e.next(start, start), at("2026-11-24T10:23:00Z"));
    }

    #[test]
    fn expressions_the_runner_cannot_honour_are_refused() {
        for bad in [
            "rate(0 minutes)",
            "rate(5 fortnights)",
            "cron(2 * * * MON *)",
            "cron(61 * * * ? *)",
            "cron(60/5 * * * ? *)",
            "cron(0/0 * * * ? *)",
            "cron(* *)",
            "at(2026-11-24T10:00:00)",
        ] {
            assert!(Expression::parse(bad).is_err(), "{bad}");
        }
    }
}
