//! Counters: per-type tallies added by each commit, the Worker's counters (`/count`), and
//! `GET /stats`, which gathers them with the head, consumers and size.

use super::schema::{self, int, scalar, text};
use super::Inbox;
use crate::respond;
use icc_core::inbox_tally::TypeCounts;
use icc_core::object_route::Counter;
use icc_core::vendor_time::format_utc_ms;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use worker::{Response, Result, SqlStorage};

/// One row of the `stats` table.
#[derive(Deserialize)]
struct TypeStatsRow {
    #[serde(rename = "type")]
    message_type: String,
    received: f64,
    stored: f64,
    duplicate: f64,
    quarantined: f64,
    conflict: f64,
    last_received_at_ms: Option<f64>,
}

/// A consumer's cursor.
#[derive(Deserialize)]
struct ConsumerRow {
    name: String,
    after: f64,
}

impl Inbox {
    /// Adds one commit's per-type counts; every type listed gets `last_received_at = at_ms`.
    pub(super) fn add_type_counts(
        &self,
        sql: &SqlStorage,
        types: &BTreeMap<String, TypeCounts>,
        at_ms: i64,
    ) -> Result<()> {
        for (ty, c) in types {
            sql.exec(
                "INSERT INTO stats(type, received, stored, duplicate, quarantined, conflict, last_received_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(type) DO UPDATE SET received = received + excluded.received,
                   stored = stored + excluded.stored, duplicate = duplicate + excluded.duplicate,
                   quarantined = quarantined + excluded.quarantined, conflict = conflict + excluded.conflict,
                   last_received_at_ms = excluded.last_received_at_ms",
                vec![
                    text(ty),
                    int(c.received),
                    int(c.stored),
                    int(c.duplicate),
                    int(c.quarantined),
                    int(c.conflict),
                    int(at_ms),
                ],
            )?;
        }
        Ok(())
    }

    pub(super) fn count(&self, counter: Counter) -> Result<Response> {
        self.meta().add(counter.as_str(), 1)?;
        respond::json(200, "{}".to_owned())
    }

    pub(super) async fn stats(&self) -> Result<Response> {
        let sql = self.sql();
        let rows: Vec<TypeStatsRow> = sql
            .exec("SELECT * FROM stats ORDER BY type", None)?
            .to_array()?;
        let mut types = serde_json::Map::new();
        for s in rows {
            let mut t = json!({
                "received": s.received as i64, "stored": s.stored as i64, "duplicate": s.duplicate as i64,
                "quarantined": s.quarantined as i64, "conflict": s.conflict as i64,
            });
            if let Some(ms) = s.last_received_at_ms {
                t["last_received_at"] = Value::String(format_utc_ms(ms as i64));
            }
            types.insert(s.message_type, t);
        }
        let meta = self.meta();
        let head = meta.int(schema::HEAD_SEQ)?;
        let consumers: serde_json::Map<String, Value> = sql
            .exec("SELECT name, after FROM consumers ORDER BY name", None)?
            .to_array::<ConsumerRow>()?
            .into_iter()
            .map(|c| {
                (
                    c.name,
                    json!({ "after": c.after as i64, "lag": (head - c.after as i64).max(0) }),
                )
            })
            .collect();
        let (spool_pending, spool_bytes) = self.spool_stats()?;
        let mut body = json!({
            "types": types,
            "kv_answered": meta.int(Counter::KvAnswered.as_str())?,
            "kv_write_failed": meta.int(Counter::KvWriteFailed.as_str())?,
            "head_seq": head,
            "oldest_seq": self.oldest_seq()?,
            "removed_through": meta.int(schema::REMOVED_THROUGH)?,
            "quarantine_count": scalar(&sql, "SELECT COUNT(*) AS v FROM quarantine", vec![])?,
            "db_bytes": sql.database_size(),
            "consumers": consumers,
            "waiters": self.waiters.waiting(),
            "spool_pending": spool_pending,
            "spool_bytes": spool_bytes,
        });
        if let (Some(b), Value::Object(r)) = (body.as_object_mut(), self.recording_stats()?) {
            b.extend(r);
        }
        if let (Some(b), Value::Object(d)) = (body.as_object_mut(), self.delivery_stats(head)?) {
            b.extend(d);
        }
        if meta.int("forwarded_through")? < head {
            self.arm_forward().await;
        }
        respond::json(200, body.to_string())
    }
}
