//! `POST /commit`: one push (or MNS batch) in one transaction. Rows are classified against the
//! stored identities (core rule), new ones inserted straight from the wire's text section,
//! conflicts and bad pieces quarantined, counters added (core tally), the head moved.

use super::schema::{self, int, sql_err, text};
use super::Inbox;
use crate::objects::storage_tx;
use crate::respond;
use icc_core::body::Reason;
use icc_core::error::ApiError;
use icc_core::inbox_protocol::{CommitResult, DecodedCommit, QuarantineItem, RowKey};
use icc_core::inbox_rules::{self, Outcome};
use icc_core::inbox_tally::Tally;
use serde::Deserialize;
use std::collections::HashMap;
use worker::{Response, Result, SqlStorage, SqlStorageValue};

/// A stored identity and its content hash.
#[derive(Deserialize)]
struct KnownRow {
    id: String,
    hash: String,
}

/// The rows this commit inserted, per type (one row per type, not per receipt).
#[derive(Deserialize)]
struct InsertedRow {
    #[serde(rename = "type")]
    message_type: String,
    n: f64,
    top: f64,
}

impl Inbox {
    pub(super) async fn commit(&self, body: Vec<u8>) -> Result<Response> {
        let Some(wire) = DecodedCommit::decode(&body) else {
            return respond::error(&ApiError::bad("commit body does not parse"));
        };
        let mut keys_per_chunk: Vec<Vec<RowKey>> = Vec::with_capacity(wire.header.chunks.len());
        for c in &wire.header.chunks {
            match serde_json::from_str::<Vec<RowKey>>(c.rows.get()) {
                Ok(k) if wire.chunk_text(c).is_some() => keys_per_chunk.push(k),
                _ => return respond::error(&ApiError::bad("commit rows do not parse")),
            }
        }
        let storage = self.state.storage();
        let sql = storage.sql();
        let result =
            storage_tx::transaction_sync(&storage, || self.commit_tx(&sql, &wire, &keys_per_chunk));
        let result = match result {
            Ok(r) => {
                if r.stored > 0 {
                    self.wake_waiters();
                    self.arm_forward().await;
                    self.tail_broadcast(r.head_seq);
                    self.archive_soon().await;
                }
                self.after_write().await.map(|()| r)
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => respond::json(200, serde_json::to_string(&r).unwrap_or_default()),
            Err(e) => {
                let msg = e.to_string();
                let full = msg.contains("SQLITE_FULL") || msg.contains("database or disk is full");
                worker::console_error!(
                    "inbox commit failed: {}",
                    if full { "full" } else { "error" }
                );
                respond::error(if full {
                    &ApiError::StorageFull
                } else {
                    &ApiError::Unavailable
                })
            }
        }
    }

    pub(super) fn commit_tx(
        &self,
        sql: &SqlStorage,
        wire: &DecodedCommit,
        chunks: &[Vec<RowKey>],
    ) -> Result<CommitResult> {
        let all: Vec<(&str, &str)> = chunks
            .iter()
            .flatten()
            .map(|k| (k.id.as_ref(), k.hash.as_ref()))
            .collect();
        let mut stored_hashes: HashMap<String, String> = HashMap::new();
        if !all.is_empty() {
            let ids = serde_json::to_string(&all.iter().map(|(id, _)| *id).collect::<Vec<_>>())
                .map_err(sql_err)?;
            let known: Vec<KnownRow> = sql
                .exec(
                    "SELECT id, hash FROM receipts WHERE id IN (SELECT value FROM json_each(?))",
                    vec![text(&ids)],
                )?
                .to_array()?;
            stored_hashes.extend(known.into_iter().map(|k| (k.id, k.hash)));
        }
        let outcomes = inbox_rules::classify(&all, &stored_hashes);
        let mut tally = Tally::default();
        let mut conflicts: Vec<QuarantineItem> = Vec::new();
        let mut head = self.head_seq()?;
        // Rows inserted below get a `seq` above the table's AUTOINCREMENT counter as it is now.
        let mut inserted_above: Option<i64> = None;
        let head_before = head;
        let mut outcome_of = outcomes.iter().copied();
        for (chunk, keys) in wire.header.chunks.iter().zip(chunks) {
            let chunk_text = wire.chunk_text(chunk).unwrap_or_default();
            let mut insert_idx: Vec<usize> = Vec::new();
            for (j, key) in keys.iter().enumerate() {
                let outcome = outcome_of.next().unwrap_or(Outcome::Duplicate);
                tally.row(&key.message_type, outcome);
                match outcome {
                    Outcome::Store => insert_idx.push(j),
                    Outcome::Duplicate => {}
                    Outcome::Conflict => conflicts.push(QuarantineItem::new(
                        Reason::ConflictingDuplicate,
                        &wire.header.address,
                        Some(&key.message_type),
                        key.raw_in(chunk_text).unwrap_or_default(),
                    )),
                }
            }
            if insert_idx.is_empty() {
                continue;
            }
            if inserted_above.is_none() {
                inserted_above = Some(schema::scalar(
                    sql,
                    "SELECT seq AS v FROM sqlite_sequence WHERE name = 'receipts'",
                    vec![],
                )?);
            }
            let idx = serde_json::to_string(&insert_idx).map_err(sql_err)?;
            sql.exec(
                // The chunk's text is bound once as a blob; each row's norm and raw are
                // byte ranges of it (substr on a blob counts bytes, from 1).
                "INSERT INTO receipts(id, type, call_id, hash, received_at_ms, norm, raw)
                     SELECT value->>'id', value->>'type', value->>'call_id', value->>'hash', ?2,
                            CAST(substr(?4, (value->>'norm_at') + 1, value->>'norm_len') AS TEXT),
                            CAST(substr(?4, (value->>'raw_at') + 1, value->>'raw_len') AS TEXT)
                     FROM json_each(?1) WHERE key IN (SELECT value FROM json_each(?3)) ORDER BY key
                     ON CONFLICT(id) DO NOTHING",
                vec![
                    text(chunk.rows.get()),
                    int(wire.header.received_at_ms),
                    text(&idx),
                    SqlStorageValue::from(chunk_text.to_vec()),
                ],
            )?;
        }
        if let Some(above) = inserted_above {
            // What was inserted, counted per type in SQLite: no row crosses into wasm.
            let inserted: Vec<InsertedRow> = sql
                .exec(
                    "SELECT type, COUNT(*) AS n, MAX(seq) AS top FROM receipts WHERE seq > ?
                     GROUP BY type",
                    vec![int(above)],
                )?
                .to_array()?;
            for r in inserted {
                head = head.max(r.top as i64);
                for _ in 0..r.n as i64 {
                    tally.inserted(&r.message_type);
                }
            }
        }
        for item in wire.header.quarantine.iter().chain(conflicts.iter()) {
            let kept = self.quarantine_insert(sql, item, wire.header.received_at_ms)?;
            tally.quarantined(item, kept);
        }
        self.add_archive_jobs(sql, head_before, wire.header.received_at_ms)?;
        let (types, result) = tally.finish(head);
        self.add_type_counts(sql, &types, wire.header.received_at_ms)?;
        self.meta().set_int(schema::HEAD_SEQ, head)?;
        Ok(result)
    }
}
