//! The object's one alarm, shared by kinds of scheduled work (`icc_core::schedule::Work`): a
//! `schedule` table keeps one due time per kind, the alarm is armed at the earliest, and when it
//! fires every due kind runs once and says when it is due again. A kind that fails is retried
//! after `RETRY_MS`; the others still run.
//!
//! Adding a kind: a variant of `Work`, and its arm in `run`.

use super::schema::{int, text};
use super::Inbox;
use icc_core::schedule::{self, Due, Work, RETRY_MS};
use serde::Deserialize;
use worker::{Date, Result};

/// One row of the `schedule` table.
#[derive(Deserialize)]
struct DueRow {
    kind: String,
    due_at_ms: f64,
}

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

impl Inbox {
    pub(super) fn schedule_table(&self) -> Result<Vec<Due>> {
        let rows: Vec<DueRow> = self
            .sql()
            .exec("SELECT kind, due_at_ms FROM schedule", None)?
            .to_array()?;
        Ok(rows
            .into_iter()
            .map(|r| Due {
                kind: r.kind,
                at_ms: r.due_at_ms as i64,
            })
            .collect())
    }

    pub(super) fn set_due(&self, work: Work, at_ms: Option<i64>) -> Result<()> {
        match at_ms {
            Some(at) => self.sql().exec(
                "INSERT INTO schedule(kind, due_at_ms) VALUES (?, ?)
                 ON CONFLICT(kind) DO UPDATE SET due_at_ms = excluded.due_at_ms",
                vec![text(work.as_str()), int(at)],
            )?,
            None => self.sql().exec(
                "DELETE FROM schedule WHERE kind = ?",
                vec![text(work.as_str())],
            )?,
        };
        Ok(())
    }

    /// Arms the alarm at the earliest due time (or clears it when nothing is due).
    pub(super) async fn arm(&self, table: &[Due]) -> Result<()> {
        let storage = self.state.storage();
        match schedule::earliest(table) {
            Some(at) => storage.set_alarm((at - now_ms()).max(0)).await,
            None => storage.delete_alarm().await,
        }
    }

    /// Schedules `work` at `at_ms` unless it is scheduled already.
    pub(super) async fn schedule_once(&self, work: Work, at_ms: i64) -> Result<()> {
        let table = self.schedule_table()?;
        if schedule::is_scheduled(&table, work) {
            return Ok(());
        }
        self.set_due(work, Some(at_ms))?;
        self.arm(&self.schedule_table()?).await
    }

    /// Runs every kind that is due, records when each is due next, re-arms the alarm.
    pub(super) async fn run_due(&self) -> Result<()> {
        let now = now_ms();
        for work in schedule::due_now(&self.schedule_table()?, now) {
            let next = match self.run(work).await {
                Ok(next) => next,
                Err(e) => {
                    worker::console_error!("scheduled {} failed: {}", work.as_str(), e);
                    Some(now_ms() + RETRY_MS)
                }
            };
            self.set_due(work, next)?;
        }
        self.arm(&self.schedule_table()?).await
    }

    /// One run of `work`; when it is due again (`None`: not until something schedules it).
    async fn run(&self, work: Work) -> Result<Option<i64>> {
        match work {
            Work::Retention => self.retention().await,
            Work::Forward => self.forward().await,
            Work::Spool => self.drain_spool().await,
            Work::Archive => self.archive().await,
        }
    }
}
