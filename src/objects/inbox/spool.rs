//! The spool: a body too big to plan and commit inside the ack deadline is stored as received
//! (`POST /spool`, one transaction, in pieces under the 2 MB value limit) and drained under the
//! alarm in arrival order, in bounded chunks (`icc_core::spool`). Each chunk is planned exactly
//! as a direct push and committed by the commit path's transaction together with the spool's
//! progress, so a crash between chunks resumes where it stopped without storing anything twice.
//! A body is deleted only in the transaction of its last chunk; its row (address, type, SHA-256)
//! stays so a resend is a duplicate, and goes with retention.

use super::schema::{int, scalar, sql_err, text, SeqRow};
use super::Inbox;
use crate::objects::storage_tx;
use crate::{env_config, respond};
use icc_core::error::ApiError;
use icc_core::inbox_protocol::{DecodedCommit, RowKey};
use icc_core::message_type::{Product, TypePin};
use icc_core::normalize::Source;
use icc_core::push::{self, Arrival};
use icc_core::schedule::Work;
use icc_core::spool::{self, Split, SpoolHeader};
use serde::Deserialize;
use worker::{Date, Response, Result, SqlStorageValue};

/// At most this many chunks per alarm …
const CHUNKS_PER_RUN: usize = 3;
/// … or this much wall time (checked after each chunk); then the alarm re-arms at once.
const RUN_BUDGET_MS: i64 = 100;

#[derive(Deserialize)]
struct PendingRow {
    id: f64,
    header: String,
    next_idx: f64,
}

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

fn storage_error(e: &worker::Error) -> &'static ApiError {
    let msg = e.to_string();
    if msg.contains("SQLITE_FULL") || msg.contains("database or disk is full") {
        &ApiError::StorageFull
    } else {
        &ApiError::Unavailable
    }
}

impl Inbox {
    /// `POST /spool`: stores a body as received, once per (address, type, SHA-256). Answers
    /// `{"spooled": true}` for a new body, `false` for one already pending or drained.
    pub(super) async fn spool(&self, wire: Vec<u8>) -> Result<Response> {
        let Some((header, body)) = spool::from_wire(&wire) else {
            return respond::error(&ApiError::bad("spool body does not parse"));
        };
        let storage = self.state.storage();
        let sql = storage.sql();
        let header_json = serde_json::to_string(&header).map_err(sql_err)?;
        let pin = header.pin.clone().unwrap_or_default();
        let result = storage_tx::transaction_sync(&storage, || {
            let known = scalar(
                &sql,
                "SELECT COUNT(*) AS v FROM spool WHERE address = ? AND pin = ? AND sha256 = ?",
                vec![text(&header.address), text(&pin), text(&header.sha256)],
            )?;
            if known > 0 {
                return Ok(false);
            }
            let ids: Vec<SeqRow> = sql
                .exec(
                    "INSERT INTO spool(address, pin, sha256, header, size, received_at_ms, next_idx, done)
                     VALUES (?, ?, ?, ?, ?, ?, 0, 0) RETURNING id AS seq",
                    vec![
                        text(&header.address),
                        text(&pin),
                        text(&header.sha256),
                        text(&header_json),
                        int(body.len() as i64),
                        int(header.received_at_ms),
                    ],
                )?
                .to_array()?;
            let id = ids.first().map_or(0, |r| r.seq as i64);
            for (idx, piece) in body.chunks(spool::PIECE_BYTES).enumerate() {
                sql.exec(
                    "INSERT INTO spool_pieces(sid, idx, data) VALUES (?, ?, ?)",
                    vec![
                        int(id),
                        int(idx as i64),
                        SqlStorageValue::from(piece.to_vec()),
                    ],
                )?;
            }
            Ok(true)
        });
        let new = match result {
            Ok(new) => new,
            Err(e) => {
                worker::console_error!("inbox spool failed: {}", storage_error(&e).code());
                return respond::error(storage_error(&e));
            }
        };
        if new {
            self.schedule_once(Work::Spool, now_ms()).await?;
        }
        self.after_write().await?;
        respond::json(200, format!("{{\"spooled\":{new}}}"))
    }

    /// The body of spooled item `id`, from its pieces.
    fn spool_body(&self, id: i64) -> Result<Vec<u8>> {
        let cursor = self.sql().exec(
            "SELECT data FROM spool_pieces WHERE sid = ? ORDER BY idx",
            vec![int(id)],
        )?;
        let mut body = Vec::new();
        for row in cursor.raw() {
            match row?.into_iter().next() {
                Some(SqlStorageValue::Blob(b)) => body.extend_from_slice(&b),
                Some(SqlStorageValue::String(s)) => body.extend_from_slice(s.as_bytes()),
                _ => return Err(sql_err("spool piece is not bytes")),
            }
        }
        Ok(body)
    }

    /// One run of the drain: a few chunks in arrival order. `Some(now)` while bodies remain.
    pub(super) async fn drain_spool(&self) -> Result<Option<i64>> {
        let started = now_ms();
        let sql = self.sql();
        let retention_ms = env_config::load(&self.env).retention_ms as i64;
        sql.exec(
            "DELETE FROM spool WHERE done = 1 AND received_at_ms < ?",
            vec![int(started - retention_ms)],
        )?;
        let mut chunks = 0usize;
        loop {
            let pending: Vec<PendingRow> = sql
                .exec(
                    "SELECT id, header, next_idx FROM spool WHERE done = 0 ORDER BY id LIMIT 1",
                    None,
                )?
                .to_array()?;
            let Some(row) = pending.into_iter().next() else {
                return Ok(None);
            };
            let id = row.id as i64;
            let header: SpoolHeader = serde_json::from_str(&row.header).map_err(sql_err)?;
            let body = self.spool_body(id)?;
            let product = Product::from_path(&header.product);
            let pin = product.and_then(|p| TypePin::parse(p, header.pin.as_deref()));
            let (Some(product), Some(pin)) = (product, pin) else {
                // Checked on the push path; a row that does not parse cannot be planned.
                worker::console_error!("spooled body {} has an unknown product or type", id);
                self.finish_spooled(id, 0)?;
                continue;
            };
            let arrival = Arrival {
                product,
                pin,
                stream: &header.stream,
                address: &header.address,
                received_at_ms: header.received_at_ms,
                offset: header.offset(),
                source: Source::Push,
                mns_message_id: None,
            };
            let split = spool::split(&body);
            let mut next = row.next_idx as usize;
            loop {
                let (chunk, after, last) = match &split {
                    Split::Whole => (body.clone(), 1, true),
                    Split::Elements(els) => {
                        let c = spool::next_chunk(els, next);
                        let end = c.end;
                        let last = end >= els.len();
                        (spool::chunk_body(&body, els, c), end, last)
                    }
                };
                self.commit_spooled_chunk(id, &chunk, &arrival, after, last)?;
                chunks += 1;
                next = after;
                if last {
                    break;
                }
                if chunks >= CHUNKS_PER_RUN || now_ms() - started > RUN_BUDGET_MS {
                    return Ok(Some(now_ms()));
                }
            }
            if chunks >= CHUNKS_PER_RUN || now_ms() - started > RUN_BUDGET_MS {
                return Ok(Some(now_ms()));
            }
        }
    }

    /// Plans `chunk` as a direct push and commits it with the commit path's transaction, in the
    /// same transaction as the spool's progress (`after`; the body goes when `last`).
    fn commit_spooled_chunk(
        &self,
        id: i64,
        chunk: &[u8],
        arrival: &Arrival,
        after: usize,
        last: bool,
    ) -> Result<()> {
        let wire = push::plan(chunk, arrival).to_wire();
        let decoded = DecodedCommit::decode(&wire).ok_or_else(|| sql_err("chunk wire"))?;
        let mut keys: Vec<Vec<RowKey>> = Vec::with_capacity(decoded.header.chunks.len());
        for c in &decoded.header.chunks {
            keys.push(serde_json::from_str(c.rows.get()).map_err(sql_err)?);
        }
        let storage = self.state.storage();
        let sql = storage.sql();
        let result = storage_tx::transaction_sync(&storage, || {
            let r = self.commit_tx(&sql, &decoded, &keys)?;
            if last {
                self.finish_spooled(id, after)?;
            } else {
                sql.exec(
                    "UPDATE spool SET next_idx = ? WHERE id = ?",
                    vec![int(after as i64), int(id)],
                )?;
            }
            Ok(r)
        })?;
        if result.stored > 0 {
            self.wake_waiters();
        }
        Ok(())
    }

    /// Marks a spooled body drained and deletes its bytes.
    fn finish_spooled(&self, id: i64, after: usize) -> Result<()> {
        let sql = self.sql();
        sql.exec(
            "UPDATE spool SET next_idx = ?, done = 1 WHERE id = ?",
            vec![int(after as i64), int(id)],
        )?;
        sql.exec("DELETE FROM spool_pieces WHERE sid = ?", vec![int(id)])?;
        Ok(())
    }

    /// `(spool_pending, spool_bytes)`: bodies not yet drained and their size.
    pub(super) fn spool_stats(&self) -> Result<(i64, i64)> {
        let sql = self.sql();
        Ok((
            scalar(
                &sql,
                "SELECT COUNT(*) AS v FROM spool WHERE done = 0",
                vec![],
            )?,
            scalar(
                &sql,
                "SELECT SUM(size) AS v FROM spool WHERE done = 0",
                vec![],
            )?,
        ))
    }
}
