//! `POST /read`: a page of receipts after a cursor, filtered by type or call id; an empty read
//! with `wait_ms` is held until a commit stores something (then read again) or the time passes.
//! Waiting reads are bounded per stream; who gets a slot is a core rule (`icc_core::waiters`).

use super::schema::{self, int, scalar, sql_err, text};
use super::Inbox;
use crate::objects::waiters::Wake;
use crate::respond;
use futures::future::{select, Either};
use icc_core::error::ApiError;
use icc_core::inbox_answers::receipts_page;
use icc_core::inbox_protocol::{ReadRequest, Row};
use icc_core::inbox_rules;
use serde::Deserialize;
use std::time::Duration;
use worker::{Date, Delay, Response, Result};

/// One stored receipt, as read.
#[derive(Deserialize)]
struct ReceiptRow {
    seq: f64,
    id: String,
    norm: String,
    raw: String,
}

/// A page of receipts as JSON text, the last seq in it, and whether it is full.
struct Page {
    receipts: String,
    last: i64,
    full: bool,
}

impl Inbox {
    pub(super) fn wake_waiters(&self) {
        self.waiters.wake_all();
    }

    pub(super) fn oldest_seq(&self) -> Result<i64> {
        scalar(&self.sql(), "SELECT MIN(seq) AS v FROM receipts", vec![])
    }

    /// One page; `None` when nothing matched.
    fn page(&self, req: &ReadRequest, after: i64) -> Result<Option<Page>> {
        let mut q = String::from("SELECT seq, id, norm, raw FROM receipts WHERE seq > ?1");
        let mut binds = vec![int(after)];
        if !req.types.is_empty() {
            q.push_str(" AND type IN (SELECT value FROM json_each(?2))");
            binds.push(text(&serde_json::to_string(&req.types).map_err(sql_err)?));
        }
        if let Some(c) = &req.call_id {
            q.push_str(&format!(" AND call_id = ?{}", binds.len() + 1));
            binds.push(text(c));
        }
        q.push_str(&format!(" ORDER BY seq LIMIT ?{}", binds.len() + 1));
        binds.push(int(i64::from(req.limit)));
        let rows: Vec<ReceiptRow> = self.sql().exec(&q, binds)?.to_array()?;
        if rows.is_empty() {
            return Ok(None);
        }
        let recordings =
            self.recordings_of(&rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())?;
        let mut out = String::from("[");
        let mut last = after;
        let mut cut = false;
        for (n, r) in rows.iter().enumerate() {
            let mut item = Row::assemble(&r.norm, r.seq as i64, &r.raw);
            if let Some(rec) = recordings.get(&r.id) {
                item = icc_core::recording_archive::with_recording(&item, rec);
            }
            if n > 0 && out.len() + item.len() > inbox_rules::PAGE_MAX_BYTES {
                cut = true;
                break;
            }
            if n > 0 {
                out.push(',');
            }
            out.push_str(&item);
            last = r.seq as i64;
        }
        out.push(']');
        Ok(Some(Page {
            receipts: out,
            last,
            full: cut || rows.len() as u32 >= req.limit,
        }))
    }

    pub(super) async fn read(&self, body: String) -> Result<Response> {
        let Ok(req) = serde_json::from_str::<ReadRequest>(&body) else {
            return respond::error(&ApiError::bad("read request does not parse"));
        };
        let after = match (&req.consumer, req.after) {
            (Some(name), _) => self.consumer_after(name)?.unwrap_or(0),
            (None, a) => a.unwrap_or(0),
        };
        let deadline = Date::now().as_millis() + req.wait_ms;
        loop {
            let meta = self.meta();
            let head = meta.int(schema::HEAD_SEQ)?;
            let removed_through = meta.int(schema::REMOVED_THROUGH)?;
            if let Err(e) = inbox_rules::check_cursor(after, head, removed_through) {
                return respond::error(&e);
            }
            let page = self.page(&req, after)?;
            let now = Date::now().as_millis();
            let (receipts, next_after, has_more) = match page {
                Some(p) => (
                    p.receipts,
                    if p.full { p.last } else { head },
                    p.full && p.last < head,
                ),
                None if now < deadline => {
                    let Some(rx) = self
                        .waiters
                        .join(req.consumer.as_deref(), inbox_rules::MAX_WAITERS)
                    else {
                        return respond::error(&ApiError::TooManyWaiters);
                    };
                    let delay = Delay::from(Duration::from_millis(deadline - now));
                    match select(rx, delay).await {
                        Either::Left((Ok(Wake::Released), _)) => ("[]".to_owned(), head, false),
                        Either::Left(_) | Either::Right(_) => continue,
                    }
                }
                None => ("[]".to_owned(), head, false),
            };
            let body = receipts_page(&receipts, next_after, head, self.oldest_seq()?, has_more);
            return respond::json(200, body);
        }
    }
}
