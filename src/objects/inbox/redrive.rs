//! `POST /quarantine/{seq}/redrive` and `POST /quarantine/redrive`: quarantined pieces re-planned
//! with today's rules (or a pinned type) and committed through the commit transaction, each
//! item's outcome recorded beside it. The rules are [`icc_core::redrive`].

use super::schema::{self, int, sql_err, text};
use super::Inbox;
use crate::objects::storage_tx;
use crate::{env_config, respond};
use icc_core::body::Reason;
use icc_core::error::ApiError;
use icc_core::inbox_protocol::{CommitRequest, CommitResult, DecodedCommit, RowKey};
use icc_core::redrive::{self, BulkAnswer, Counts};
use serde::Deserialize;
use worker::{Date, Response, Result};

/// A quarantine row as redrive needs it.
#[derive(Deserialize)]
struct ItemRow {
    seq: f64,
    address: String,
    reason: String,
    #[serde(rename = "type")]
    message_type: Option<String>,
    size: f64,
    encoding: String,
    received_at_ms: f64,
}

#[derive(Deserialize)]
struct ChunkRow {
    data: String,
}

/// One item, re-planned.
struct Planned {
    seq: i64,
    plan: CommitRequest,
}

/// What to do with one loaded item.
enum Step {
    Plan(Planned),
    /// A `type=` of another product (bulk: skipped; single: 400).
    WrongType(ApiError),
    /// A `too_large` stub.
    Incomplete,
}

impl Inbox {
    fn redrive_items(
        &self,
        after: i64,
        reason: Option<&str>,
        seq: Option<i64>,
    ) -> Result<Vec<ItemRow>> {
        let sql = self.sql();
        let cols = "seq, address, reason, type, size, encoding, received_at_ms";
        let rows: Vec<ItemRow> = match (seq, reason) {
            (Some(seq), _) => sql
                .exec(
                    &format!("SELECT {cols} FROM quarantine WHERE seq = ?"),
                    vec![int(seq)],
                )?
                .to_array()?,
            (None, Some(reason)) => sql
                .exec(
                    &format!(
                        "SELECT {cols} FROM quarantine WHERE reason = ? AND seq > ? ORDER BY seq LIMIT ?"
                    ),
                    vec![text(reason), int(after), int(i64::from(redrive::BATCH_ITEMS))],
                )?
                .to_array()?,
            (None, None) => Vec::new(),
        };
        Ok(rows)
    }

    fn item_data(&self, seq: i64) -> Result<String> {
        let chunks: Vec<ChunkRow> = self
            .sql()
            .exec(
                "SELECT data FROM quarantine_chunks WHERE qseq = ? ORDER BY idx",
                vec![int(seq)],
            )?
            .to_array()?;
        Ok(chunks.into_iter().map(|c| c.data).collect())
    }

    fn redrive_step(&self, item: &ItemRow, data: String, type_name: Option<&str>) -> Result<Step> {
        if item.reason == Reason::TooLarge.as_str() {
            return Ok(Step::Incomplete);
        }
        let seq = item.seq as i64;
        let Some(origin) = redrive::origin(&item.address, item.message_type.as_deref()) else {
            return Ok(Step::WrongType(ApiError::bad(
                "the item's address names no product",
            )));
        };
        let pin = match redrive::pin(&origin, type_name) {
            Ok(p) => p,
            Err(e) => return Ok(Step::WrongType(e)),
        };
        let Some(bytes) = redrive::item_bytes(&item.encoding, data) else {
            return Err(sql_err("a stored quarantine body does not decode"));
        };
        let stream = self
            .meta()
            .text(schema::STREAM_NAME)?
            .unwrap_or_else(|| icc_core::address::DEFAULT_STREAM.to_owned());
        let plan = redrive::plan(
            &bytes,
            &item.address,
            &origin,
            pin,
            &stream,
            item.received_at_ms as i64,
            env_config::load(&self.env).vendor_offset,
        );
        Ok(Step::Plan(Planned { seq, plan }))
    }

    /// Commits the planned items in one transaction, each through the commit transaction, and
    /// records each item's outcome. Answers the counts per item.
    async fn redrive_commit(
        &self,
        items: Vec<Planned>,
    ) -> std::result::Result<Vec<Counts>, ApiError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let wires: Vec<(i64, usize, Vec<u8>)> = items
            .into_iter()
            .map(|p| (p.seq, p.plan.quarantine.len(), p.plan.to_wire()))
            .collect();
        let mut decoded = Vec::with_capacity(wires.len());
        for (seq, planned_quarantine, wire) in &wires {
            let w = DecodedCommit::decode(wire).ok_or(ApiError::Unavailable)?;
            let mut keys: Vec<Vec<RowKey>> = Vec::with_capacity(w.header.chunks.len());
            for c in &w.header.chunks {
                keys.push(serde_json::from_str(c.rows.get()).map_err(|_| ApiError::Unavailable)?);
            }
            decoded.push((*seq, *planned_quarantine, w, keys));
        }
        let storage = self.state.storage();
        let sql = storage.sql();
        let now = Date::now().as_millis() as i64;
        let done = storage_tx::transaction_sync(&storage, || {
            let mut out = Vec::with_capacity(decoded.len());
            for (seq, planned_quarantine, wire, keys) in &decoded {
                let r: CommitResult = self.commit_tx(&sql, wire, keys)?;
                let counts = Counts::of(&r, *planned_quarantine);
                sql.exec(
                    "INSERT INTO quarantine_redrive(qseq, redriven_at_ms, outcome) VALUES (?, ?, ?)
                     ON CONFLICT(qseq) DO UPDATE SET redriven_at_ms = excluded.redriven_at_ms,
                     outcome = excluded.outcome",
                    vec![int(*seq), int(now), text(counts.outcome().as_str())],
                )?;
                out.push(counts);
            }
            Ok(out)
        });
        let done = match done {
            Ok(d) => d,
            Err(e) => {
                let msg = e.to_string();
                let full = msg.contains("SQLITE_FULL") || msg.contains("database or disk is full");
                worker::console_error!(
                    "inbox redrive failed: {}",
                    if full { "full" } else { "error" }
                );
                return Err(if full {
                    ApiError::StorageFull
                } else {
                    ApiError::Unavailable
                });
            }
        };
        if done.iter().any(|c| c.stored > 0) {
            self.wake_waiters();
        }
        self.after_write()
            .await
            .map_err(|_| ApiError::Unavailable)?;
        Ok(done)
    }

    pub(super) async fn redrive_one(
        &self,
        seq: i64,
        type_name: Option<String>,
    ) -> Result<Response> {
        let Some(item) = self.redrive_items(0, None, Some(seq))?.into_iter().next() else {
            return respond::error(&ApiError::NoSuchItem);
        };
        let data = self.item_data(seq)?;
        let planned = match self.redrive_step(&item, data, type_name.as_deref())? {
            Step::Plan(p) => p,
            Step::WrongType(e) => return respond::error(&e),
            Step::Incomplete => return respond::error(&ApiError::Incomplete),
        };
        match self.redrive_commit(vec![planned]).await {
            Ok(counts) => {
                let c = counts.into_iter().next().unwrap_or_default();
                respond::json(200, serde_json::to_string(&c).map_err(sql_err)?)
            }
            Err(e) => respond::error(&e),
        }
    }

    pub(super) async fn redrive_bulk(
        &self,
        reason: &str,
        after: i64,
        type_name: Option<String>,
    ) -> Result<Response> {
        if redrive::reason(reason).is_none() {
            return respond::error(&ApiError::bad("unknown reason"));
        }
        if reason == Reason::TooLarge.as_str() {
            return respond::error(&ApiError::Incomplete);
        }
        let items = self.redrive_items(after, Some(reason), None)?;
        let mut answer = BulkAnswer {
            next_after: after,
            ..Default::default()
        };
        let mut planned = Vec::new();
        let mut bytes = 0usize;
        for item in &items {
            if !planned.is_empty() && bytes + item.size as usize > redrive::BATCH_BYTES {
                break;
            }
            bytes += item.size as usize;
            answer.next_after = item.seq as i64;
            let data = self.item_data(item.seq as i64)?;
            match self.redrive_step(item, data, type_name.as_deref())? {
                Step::Plan(p) => planned.push(p),
                Step::WrongType(_) | Step::Incomplete => answer.skipped += 1,
            }
        }
        match self.redrive_commit(planned).await {
            Ok(counts) => counts.into_iter().for_each(|c| answer.counts.add(c)),
            Err(e) => return respond::error(&e),
        }
        answer.has_more = schema::scalar(
            &self.sql(),
            "SELECT EXISTS(SELECT 1 FROM quarantine WHERE reason = ? AND seq > ?) AS v",
            vec![text(reason), int(answer.next_after)],
        )? == 1;
        respond::json(200, serde_json::to_string(&answer).map_err(sql_err)?)
    }
}
