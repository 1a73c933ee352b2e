//! Retention: removes receipts and quarantine older than `RETENTION_DAYS`, a bounded batch per
//! run (idempotent: it removes by age). `removed_through` records the highest removed `seq`, so
//! older cursors answer `410 cursor_expired`; `head_seq` never moves back.

use super::schema::{self, int, scalar, sql_err, text, SeqRow};
use super::Inbox;
use crate::env_config;
use crate::objects::storage_tx;
use icc_core::inbox_rules;
use worker::{Date, Result};

impl Inbox {
    /// One retention run; when it is due again.
    pub(super) async fn retention(&self) -> Result<Option<i64>> {
        let cfg = env_config::load(&self.env);
        let now = Date::now().as_millis() as i64;
        let cutoff = now - cfg.retention_ms as i64;
        let storage = self.state.storage();
        let sql = storage.sql();
        let batch = int(i64::from(inbox_rules::GC_BATCH));
        let (receipts, quarantine) = storage_tx::transaction_sync(&storage, || {
            let removed: Vec<SeqRow> = sql
                .exec(
                    "DELETE FROM receipts WHERE seq IN
                       (SELECT seq FROM receipts WHERE received_at_ms < ? ORDER BY seq LIMIT ?) RETURNING seq",
                    vec![int(cutoff), batch.clone()],
                )?
                .to_array()?;
            if let Some(max) = removed.iter().map(|s| s.seq as i64).max() {
                let meta = self.meta();
                let through = meta.int(schema::REMOVED_THROUGH)?.max(max);
                meta.set_int(schema::REMOVED_THROUGH, through)?;
            }
            let q: Vec<SeqRow> = sql
                .exec(
                    "DELETE FROM quarantine WHERE seq IN
                       (SELECT seq FROM quarantine WHERE received_at_ms < ? ORDER BY seq LIMIT ?) RETURNING seq",
                    vec![int(cutoff), batch.clone()],
                )?
                .to_array()?;
            if !q.is_empty() {
                let list =
                    serde_json::to_string(&q.iter().map(|s| s.seq as i64).collect::<Vec<_>>())
                        .map_err(sql_err)?;
                sql.exec(
                    "DELETE FROM quarantine_chunks WHERE qseq IN (SELECT value FROM json_each(?))",
                    vec![text(&list)],
                )?;
                sql.exec(
                    "DELETE FROM quarantine_redrive WHERE qseq IN (SELECT value FROM json_each(?))",
                    vec![text(&list)],
                )?;
            }
            Ok((removed.len(), q.len()))
        })?;
        if receipts + quarantine > 0 {
            worker::console_log!(
                "retention removed receipts={} quarantine={}",
                receipts,
                quarantine
            );
        }
        let full_batch =
            receipts as u32 >= inbox_rules::GC_BATCH || quarantine as u32 >= inbox_rules::GC_BATCH;
        let remaining = scalar(
            &sql,
            "SELECT (SELECT COUNT(*) FROM receipts) + (SELECT COUNT(*) FROM quarantine) AS v",
            vec![],
        )?;
        Ok(
            inbox_rules::retention_next_in_ms(full_batch, remaining, cfg.retention_ms)
                .map(|ms| Date::now().as_millis() as i64 + ms as i64),
        )
    }
}
