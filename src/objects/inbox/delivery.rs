//! Delivery, the object side: the inbox is the outbox of the receipts queue (`forward`, run by
//! the alarm), keeps the webhook consumer's running totals and the dead letters, and
//! re-enqueues dead letters on request. Rules: `icc_core::forward`, `icc_core::delivery`.

use super::schema::{int, scalar, sql_err, text};
use super::Inbox;
use crate::{env_config, respond};
use icc_core::delivery::{Attempted, DeadLetter, Report};
use icc_core::error::ApiError;
use icc_core::forward;
use icc_core::inbox_protocol::Row;
use icc_core::schedule::Work;
use icc_core::vendor_time::format_utc_ms;
use serde::Deserialize;
use serde_json::{json, value::RawValue, Value};
use wasm_bindgen::JsValue;
use worker::{
    BatchMessageBuilder, Date, QueueContentType, RawMessageBuilder, Response, Result, SendMessage,
};

/// The queue binding receipts are forwarded to.
pub const QUEUE_BINDING: &str = "RECEIPTS_QUEUE";
/// Highest seq sent to the queue.
const FORWARDED_THROUGH: &str = "forwarded_through";
/// Consecutive failed sends (backoff); reset by a successful one.
const FORWARD_FAILURES: &str = "forward_failures";
/// Failed sends, running total.
const FORWARD_ERRORS: &str = "forward_errors";
const WEBHOOK_DELIVERED: &str = "webhook_delivered";
const WEBHOOK_RETRIED: &str = "webhook_retried";
/// Receipts read per page while forwarding; pages per alarm run.
const PAGE: i64 = 200;
const PAGES_PER_RUN: usize = 10;

#[derive(Deserialize)]
struct ReceiptRow {
    seq: f64,
    norm: String,
    raw: String,
}

#[derive(Deserialize)]
struct DeadRow {
    seq: f64,
    id: String,
    #[serde(rename = "type")]
    message_type: String,
    attempts: f64,
    last_status: Option<f64>,
    last_error: Option<String>,
    first_attempt_at_ms: f64,
    last_attempt_at_ms: f64,
}

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

fn text_message(s: String) -> SendMessage<JsValue> {
    RawMessageBuilder::new(JsValue::from_str(&s)).build_with_content_type(QueueContentType::Text)
}

impl Inbox {
    /// After a commit stored something: forwarding runs from the alarm, never on the answer's
    /// path. Failing to arm it is logged; the next commit or stats read arms it again.
    pub(super) async fn arm_forward(&self) {
        if !env_config::load(&self.env).delivery.forward_queue {
            return;
        }
        if let Err(e) = self.schedule_once(Work::Forward, now_ms()).await {
            worker::console_error!("inbox could not schedule forwarding: {}", e);
        }
    }

    /// Sends what is stored after `forwarded_through`, in seq order, and moves it after each
    /// successful send. When it is due again: at once while more is left, after a backoff when a
    /// send failed, never (until the next commit) when everything is forwarded.
    pub(super) async fn forward(&self) -> Result<Option<i64>> {
        if !env_config::load(&self.env).delivery.forward_queue {
            return Ok(None);
        }
        let meta = self.meta();
        let queue = self.env.queue(QUEUE_BINDING);
        for _ in 0..PAGES_PER_RUN {
            let through = meta.int(FORWARDED_THROUGH)?;
            let rows: Vec<ReceiptRow> = self
                .sql()
                .exec(
                    "SELECT seq, norm, raw FROM receipts WHERE seq > ? ORDER BY seq LIMIT ?",
                    vec![int(through), int(PAGE)],
                )?
                .to_array()?;
            if rows.is_empty() {
                return Ok(None);
            }
            let items: Vec<(i64, String)> = rows
                .iter()
                .map(|r| (r.seq as i64, Row::assemble(&r.norm, r.seq as i64, &r.raw)))
                .collect();
            let sizes: Vec<usize> = items.iter().map(|(_, s)| s.len()).collect();
            for range in forward::batches(&sizes) {
                let last = items[range.end - 1].0;
                let batch = BatchMessageBuilder::new()
                    .messages(items[range].iter().map(|(_, s)| text_message(s.clone())))
                    .build();
                let sent = match &queue {
                    Ok(q) => q.send_raw_batch(batch).await,
                    Err(e) => Err(worker::Error::RustError(e.to_string())),
                };
                if let Err(e) = sent {
                    worker::console_error!("forwarding to the receipts queue failed: {}", e);
                    meta.add(FORWARD_ERRORS, 1)?;
                    meta.add(FORWARD_FAILURES, 1)?;
                    let failures = meta.int(FORWARD_FAILURES)?;
                    let wait = forward::backoff_ms(failures as u32) as i64;
                    return Ok(Some(now_ms() + wait));
                }
                meta.set_int(FORWARDED_THROUGH, last)?;
                meta.set_int(FORWARD_FAILURES, 0)?;
            }
        }
        Ok(Some(now_ms()))
    }

    /// `POST /delivery/report`: the webhook consumer's tallies; successful redeliveries leave
    /// the dead letters.
    pub(super) fn delivery_report(&self, body: &str) -> Result<Response> {
        let Ok(r) = serde_json::from_str::<Report>(body) else {
            return respond::error(&ApiError::bad("report does not parse"));
        };
        let meta = self.meta();
        meta.add(WEBHOOK_DELIVERED, i64::from(r.delivered))?;
        meta.add(WEBHOOK_RETRIED, i64::from(r.retried))?;
        if !r.redelivered.is_empty() {
            let seqs = serde_json::to_string(&r.redelivered).map_err(sql_err)?;
            self.sql().exec(
                "DELETE FROM dead_letters WHERE seq IN (SELECT value FROM json_each(?))",
                vec![text(&seqs)],
            )?;
        }
        respond::json(200, "{}".to_owned())
    }

    /// `POST /dead-letters`: records given-up deliveries (a later one of the same seq replaces
    /// the earlier, keeping its first attempt time).
    pub(super) fn dead_letter_add(&self, body: &str) -> Result<Response> {
        let Ok(items) = serde_json::from_str::<Vec<DeadLetter>>(body) else {
            return respond::error(&ApiError::bad("dead letters do not parse"));
        };
        for d in items {
            self.sql().exec(
                "INSERT INTO dead_letters(seq, id, type, attempts, last_status, last_error,
                   first_attempt_at_ms, last_attempt_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(seq) DO UPDATE SET attempts = attempts + excluded.attempts,
                   last_status = excluded.last_status, last_error = excluded.last_error,
                   last_attempt_at_ms = excluded.last_attempt_at_ms",
                vec![
                    int(d.seq),
                    text(&d.id),
                    text(&d.message_type),
                    int(i64::from(d.attempts)),
                    d.last_status
                        .map_or(worker::SqlStorageValue::Null, |s| int(i64::from(s))),
                    d.last_error
                        .as_deref()
                        .map_or(worker::SqlStorageValue::Null, text),
                    int(d.first_attempt_at_ms),
                    int(d.last_attempt_at_ms),
                ],
            )?;
        }
        respond::json(200, "{}".to_owned())
    }

    /// `GET /dead-letters?after&limit`: a page ordered by seq.
    pub(super) fn dead_letters_page(&self, after: i64, limit: u32) -> Result<Response> {
        let rows: Vec<DeadRow> = self
            .sql()
            .exec(
                "SELECT * FROM dead_letters WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![int(after), int(i64::from(limit) + 1)],
            )?
            .to_array()?;
        let has_more = rows.len() > limit as usize;
        let items: Vec<Value> = rows
            .iter()
            .take(limit as usize)
            .map(|d| {
                json!({
                    "seq": d.seq as i64, "id": d.id, "type": d.message_type,
                    "attempts": d.attempts as i64,
                    "last_status": d.last_status.map(|s| s as i64),
                    "last_error": d.last_error,
                    "first_attempt_at": format_utc_ms(d.first_attempt_at_ms as i64),
                    "last_attempt_at": format_utc_ms(d.last_attempt_at_ms as i64),
                })
            })
            .collect();
        let next_after = items
            .last()
            .and_then(|v| v["seq"].as_i64())
            .unwrap_or(after);
        let body = json!({ "items": items, "next_after": next_after, "has_more": has_more });
        respond::json(200, body.to_string())
    }

    /// `POST /dead-letters/redeliver[?seq]`: re-enqueues the dead letters (all, or one) whose
    /// receipts are still kept. They stay listed until the consumer reports success.
    pub(super) async fn redeliver(&self, seq: Option<i64>) -> Result<Response> {
        let rows: Vec<ReceiptRow> = self
            .sql()
            .exec(
                "SELECT r.seq, r.norm, r.raw FROM dead_letters d JOIN receipts r ON r.seq = d.seq
                 WHERE ?1 IS NULL OR d.seq = ?1 ORDER BY d.seq",
                vec![seq.map_or(worker::SqlStorageValue::Null, int)],
            )?
            .to_array()?;
        let now = now_ms();
        let messages: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                let receipt = Row::assemble(&r.norm, r.seq as i64, &r.raw);
                let raw = RawValue::from_string(receipt).ok()?;
                serde_json::to_string(&Attempted {
                    receipt: &raw,
                    attempts: 0,
                    first_attempt_at_ms: now,
                    last_attempt_at_ms: now,
                    last_status: None,
                    last_error: None,
                    redelivery: true,
                })
                .ok()
            })
            .collect();
        let sizes: Vec<usize> = messages.iter().map(String::len).collect();
        let queue = self.env.queue(QUEUE_BINDING);
        for range in forward::batches(&sizes) {
            let batch = BatchMessageBuilder::new()
                .messages(messages[range].iter().map(|s| text_message(s.clone())))
                .build();
            let sent = match &queue {
                Ok(q) => q.send_raw_batch(batch).await,
                Err(e) => Err(worker::Error::RustError(e.to_string())),
            };
            if let Err(e) = sent {
                worker::console_error!("redelivery to the receipts queue failed: {}", e);
                return respond::error(&ApiError::Unavailable);
            }
        }
        respond::json(200, json!({ "redelivered": messages.len() }).to_string())
    }

    /// The delivery part of `GET /stats`.
    pub(super) fn delivery_stats(&self, head: i64) -> Result<Value> {
        let meta = self.meta();
        let through = meta.int(FORWARDED_THROUGH)?;
        Ok(json!({
            "forwarded_through": through,
            "forward_lag": (head - through).max(0),
            "forward_errors": meta.int(FORWARD_ERRORS)?,
            "webhook_delivered": meta.int(WEBHOOK_DELIVERED)?,
            "webhook_retried": meta.int(WEBHOOK_RETRIED)?,
            "dead_letters": scalar(&self.sql(), "SELECT COUNT(*) AS v FROM dead_letters", vec![])?,
        }))
    }
}
