//! Quarantine: pieces kept aside with their reason, deduplicated by (address, body hash), bodies
//! stored in chunks; `GET /quarantine` pages through them.

use super::schema::{int, text, SeqRow};
use super::Inbox;
use crate::respond;
use icc_core::inbox_protocol::QuarantineItem;
use icc_core::inbox_rules;
use icc_core::vendor_time::format_utc_ms;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::{Response, Result, SqlStorage, SqlStorageValue};

/// A quarantine row without its body.
#[derive(Deserialize)]
struct QuarantineRow {
    seq: f64,
    address: String,
    sha256: String,
    reason: String,
    #[serde(rename = "type")]
    message_type: Option<String>,
    size: f64,
    encoding: String,
    received_at_ms: f64,
    redriven_at_ms: Option<f64>,
    redrive_outcome: Option<String>,
}

/// One stored piece of a quarantined body.
#[derive(Deserialize)]
struct ChunkRow {
    data: String,
}

impl Inbox {
    /// Keeps one quarantined piece unless the same (address, body) is there; true when kept.
    pub(super) fn quarantine_insert(
        &self,
        sql: &SqlStorage,
        item: &QuarantineItem,
        at_ms: i64,
    ) -> Result<bool> {
        let (encoding, data) = match (&item.raw, &item.raw_base64) {
            (Some(t), _) => ("text", t.as_str()),
            (None, Some(b)) => ("base64", b.as_str()),
            (None, None) => ("text", ""),
        };
        let rows: Vec<SeqRow> = sql
            .exec(
                "INSERT INTO quarantine(address, sha256, reason, type, size, encoding, received_at_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(address, sha256) DO NOTHING RETURNING seq",
                vec![
                    text(&item.address),
                    text(&item.sha256),
                    text(&item.reason),
                    SqlStorageValue::from(item.message_type.clone()),
                    int(item.size as i64),
                    text(encoding),
                    int(at_ms),
                ],
            )?
            .to_array()?;
        let Some(seq) = rows.first().map(|s| s.seq as i64) else {
            return Ok(false);
        };
        for (idx, piece) in inbox_rules::chunks(data, inbox_rules::CHUNK_BYTES)
            .into_iter()
            .enumerate()
        {
            sql.exec(
                "INSERT INTO quarantine_chunks(qseq, idx, data) VALUES (?, ?, ?)",
                vec![int(seq), int(idx as i64), text(piece)],
            )?;
        }
        Ok(true)
    }

    /// Items after `after`, at most `limit`, and at most a page's bytes (at least one item).
    pub(super) fn quarantine_page(&self, after: i64, limit: u32) -> Result<Response> {
        let sql = self.sql();
        let rows: Vec<QuarantineRow> = sql
            .exec(
                "SELECT seq, address, sha256, reason, type, size, encoding, received_at_ms,
                        r.redriven_at_ms, r.outcome AS redrive_outcome
                 FROM quarantine LEFT JOIN quarantine_redrive r ON r.qseq = seq
                 WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![int(after), int(i64::from(limit))],
            )?
            .to_array()?;
        let mut items = Vec::with_capacity(rows.len());
        let mut next_after = after;
        let mut bytes = 0usize;
        for q in rows {
            let chunks: Vec<ChunkRow> = sql
                .exec(
                    "SELECT data FROM quarantine_chunks WHERE qseq = ? ORDER BY idx",
                    vec![int(q.seq as i64)],
                )?
                .to_array()?;
            let data: String = chunks.into_iter().map(|c| c.data).collect();
            if !items.is_empty() && bytes + data.len() > inbox_rules::PAGE_MAX_BYTES {
                break;
            }
            bytes += data.len();
            next_after = q.seq as i64;
            let mut item = json!({
                "seq": q.seq as i64,
                "reason": q.reason,
                "received_at": format_utc_ms(q.received_at_ms as i64),
                "address": q.address,
                "size": q.size as i64,
                "sha256": q.sha256,
            });
            if let Some(t) = q.message_type {
                item["type"] = Value::String(t);
            }
            if let (Some(at), Some(outcome)) = (q.redriven_at_ms, q.redrive_outcome) {
                item["redriven_at"] = Value::String(format_utc_ms(at as i64));
                item["redrive_outcome"] = Value::String(outcome);
            }
            item[if q.encoding == "base64" {
                "raw_base64"
            } else {
                "raw"
            }] = Value::String(data);
            items.push(item);
        }
        let has_more = super::schema::scalar(
            &sql,
            "SELECT EXISTS(SELECT 1 FROM quarantine WHERE seq > ?) AS v",
            vec![int(next_after)],
        )? == 1;
        respond::json(
            200,
            json!({ "items": items, "next_after": next_after, "has_more": has_more }).to_string(),
        )
    }
}
