//! The inbox: one SQLite-backed Durable Object per stream. It is the authority on identity (a
//! unique index), assigns `seq`, keeps quarantine, consumer cursors and counters, wakes long-poll
//! readers, and removes what retention no longer keeps. Its rules live in `icc_core`; this file is
//! storage and plumbing.
//!
//! Internal routes (reachable only through a stub, never from the Internet):
//! `POST /commit`, `POST /read`, `GET /quarantine`, `GET /stats`, `GET|PUT|DELETE /consumers/{name}`,
//! `POST /count/{counter}`, `POST /gc`.

use crate::{env_config, respond, storage_tx};
use futures::channel::oneshot;
use futures::future::{select, Either};
use icc_core::body::Reason;
use icc_core::error::ApiError;
use icc_core::fetch_query;
use icc_core::inbox_protocol::{
    CommitRequest, CommitResult, DecodedCommit, QuarantineItem, ReadRequest, Row, RowKey,
};
use icc_core::inbox_rules::{self, Outcome};
use icc_core::vendor_time::format_utc_ms;
use serde::Deserialize;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{
    durable_object, Date, Delay, DurableObject, Env, Method, Request, Response, Result, SqlStorage,
    SqlStorageValue, State, Stub,
};

const BINDING: &str = "INBOX";
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS receipts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        call_id TEXT,
        hash TEXT NOT NULL,
        received_at_ms INTEGER NOT NULL,
        norm TEXT NOT NULL,
        raw TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS receipts_by_time ON receipts(received_at_ms)",
    "CREATE INDEX IF NOT EXISTS receipts_by_call ON receipts(call_id, seq)",
    "CREATE INDEX IF NOT EXISTS receipts_by_type ON receipts(type, seq)",
    "CREATE TABLE IF NOT EXISTS quarantine (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        address TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        reason TEXT NOT NULL,
        type TEXT,
        size INTEGER NOT NULL,
        encoding TEXT NOT NULL,
        received_at_ms INTEGER NOT NULL,
        UNIQUE(address, sha256))",
    "CREATE INDEX IF NOT EXISTS quarantine_by_time ON quarantine(received_at_ms)",
    "CREATE TABLE IF NOT EXISTS quarantine_chunks (
        qseq INTEGER NOT NULL, idx INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (qseq, idx))",
    "CREATE TABLE IF NOT EXISTS stats (
        type TEXT PRIMARY KEY,
        received INTEGER NOT NULL DEFAULT 0,
        stored INTEGER NOT NULL DEFAULT 0,
        duplicate INTEGER NOT NULL DEFAULT 0,
        quarantined INTEGER NOT NULL DEFAULT 0,
        conflict INTEGER NOT NULL DEFAULT 0,
        last_received_at_ms INTEGER)",
    "CREATE TABLE IF NOT EXISTS consumers (name TEXT PRIMARY KEY, after INTEGER NOT NULL, updated_at_ms INTEGER NOT NULL)",
];

/// The Worker's handle on one stream's inbox.
#[derive(Clone)]
pub struct Client {
    stub: Rc<Stub>,
    stream: String,
}

/// Why the inbox did not confirm.
#[derive(Debug)]
pub enum InboxError {
    Error,
    Full,
}

impl InboxError {
    pub fn code(&self) -> &'static str {
        match self {
            InboxError::Error => "inbox_error",
            InboxError::Full => "inbox_full",
        }
    }
}

impl Client {
    pub fn new(env: &Env, stream: &str, location_hint: &str) -> Result<Client> {
        let ns = env.durable_object(BINDING)?;
        let stub = ns.get_by_name_with_location_hint(stream, location_hint)?;
        Ok(Client {
            stub: Rc::new(stub),
            stream: stream.to_owned(),
        })
    }

    /// Sends an internal request; the answer's status and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<(u16, String)> {
        self.send(method, path, body.map(|b| JsValue::from_str(&b)))
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<JsValue>,
    ) -> Result<(u16, String)> {
        let name = Some(("x-stream", self.stream.as_str()));
        crate::object_call::call(&self.stub, "inbox", method, path, name, body).await
    }

    /// Commits a planned push. Only `Ok` means every row is durable (stored or known).
    /// Takes the plan by value: it is serialized into one JS buffer and freed before the wait,
    /// so a large push holds one copy of its data while the inbox works.
    pub async fn commit(
        &self,
        req: CommitRequest,
    ) -> std::result::Result<CommitResult, InboxError> {
        let wire = js_sys::Uint8Array::from(req.to_wire().as_slice());
        drop(req);
        match self.send(Method::Post, "/commit", Some(wire.into())).await {
            Ok((200, text)) => serde_json::from_str(&text).map_err(|_| InboxError::Error),
            Ok((507, _)) => Err(InboxError::Full),
            _ => Err(InboxError::Error),
        }
    }

    /// Adds one to a counter kept in the inbox (`kv_answered`, `kv_write_failed`).
    pub async fn count(&self, counter: &str) -> Result<()> {
        self.call(Method::Post, &format!("/count/{counter}"), None)
            .await
            .map(|_| ())
    }
}

#[durable_object]
pub struct Inbox {
    state: State,
    env: Env,
    ready: std::result::Result<(), String>,
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

fn sql_err(e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

fn int(v: i64) -> SqlStorageValue {
    SqlStorageValue::from(v)
}

fn text(v: &str) -> SqlStorageValue {
    SqlStorageValue::from(v)
}

#[derive(Deserialize)]
struct One {
    v: Option<f64>,
}

#[derive(Default)]
struct Counts {
    received: i64,
    stored: i64,
    duplicate: i64,
    quarantined: i64,
    conflict: i64,
}

impl Inbox {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    fn meta(&self, k: &str) -> i64 {
        self.scalar("SELECT v FROM meta WHERE k = ?", vec![text(k)])
    }

    fn set_meta(sql: &SqlStorage, k: &str, v: i64) -> Result<()> {
        sql.exec(
            "INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            vec![text(k), int(v)],
        )?;
        Ok(())
    }

    fn scalar(&self, query: &str, binds: Vec<SqlStorageValue>) -> i64 {
        self.sql()
            .exec(query, binds)
            .and_then(|c| c.to_array::<One>())
            .ok()
            .and_then(|rows| rows.first().and_then(|r| r.v))
            .map(|v| v as i64)
            .unwrap_or(0)
    }

    fn migrate(sql: &SqlStorage) -> std::result::Result<(), String> {
        for stmt in SCHEMA {
            sql.exec(stmt, None).map_err(|e| e.to_string())?;
        }
        Self::set_meta(sql, "schema_version", SCHEMA_VERSION).map_err(|e| e.to_string())
    }

    fn wake_waiters(&self) {
        for w in self.waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    // ---- commit -------------------------------------------------------------------------

    async fn commit(&self, body: Vec<u8>) -> Result<Response> {
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
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                let full = msg.contains("SQLITE_FULL") || msg.contains("database or disk is full");
                worker::console_error!(
                    "inbox commit failed: {}",
                    if full { "full" } else { "error" }
                );
                return respond::error(if full {
                    &ApiError::StorageFull
                } else {
                    &ApiError::Unavailable
                });
            }
        };
        if result.stored > 0 {
            self.wake_waiters();
        }
        self.after_write().await;
        respond::json(200, serde_json::to_string(&result).unwrap_or_default())
    }

    fn commit_tx(
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
            #[derive(Deserialize)]
            struct Known {
                id: String,
                hash: String,
            }
            let known: Vec<Known> = sql
                .exec(
                    "SELECT id, hash FROM receipts WHERE id IN (SELECT value FROM json_each(?))",
                    vec![text(&ids)],
                )?
                .to_array()?;
            stored_hashes.extend(known.into_iter().map(|k| (k.id, k.hash)));
        }
        let outcomes = inbox_rules::classify(&all, &stored_hashes);
        let mut counts: BTreeMap<String, Counts> = BTreeMap::new();
        let mut result = CommitResult::default();
        let mut quarantine: Vec<QuarantineItem> = Vec::new();
        let mut head = self.meta("head_seq");
        let mut i = 0usize;
        for (chunk, keys) in wire.header.chunks.iter().zip(chunks) {
            let chunk_text = wire.chunk_text(chunk).unwrap_or_default();
            let mut insert_idx: Vec<usize> = Vec::new();
            for (j, key) in keys.iter().enumerate() {
                let outcome = outcomes.get(i).copied().unwrap_or(Outcome::Duplicate);
                i += 1;
                let c = counts.entry(key.message_type.to_string()).or_default();
                c.received += 1;
                match outcome {
                    Outcome::Store => insert_idx.push(j),
                    Outcome::Duplicate => c.duplicate += 1,
                    Outcome::Conflict => {
                        c.conflict += 1;
                        let raw = key.raw_in(chunk_text).unwrap_or_default();
                        quarantine.push(QuarantineItem::new(
                            Reason::ConflictingDuplicate,
                            &wire.header.address,
                            Some(&key.message_type),
                            raw,
                        ));
                    }
                }
                result.outcomes.push(outcome.as_str().to_owned());
            }
            if insert_idx.is_empty() {
                continue;
            }
            #[derive(Deserialize)]
            struct Inserted {
                seq: f64,
                #[serde(rename = "type")]
                message_type: String,
            }
            let idx = serde_json::to_string(&insert_idx).map_err(sql_err)?;
            let inserted: Vec<Inserted> = sql
                .exec(
                    // The chunk's text is bound once as a blob; each row's norm and raw are
                    // byte ranges of it (substr on a blob counts bytes, from 1).
                    "INSERT INTO receipts(id, type, call_id, hash, received_at_ms, norm, raw)
                     SELECT value->>'id', value->>'type', value->>'call_id', value->>'hash', ?2,
                            CAST(substr(?4, (value->>'no') + 1, value->>'nl') AS TEXT),
                            CAST(substr(?4, (value->>'ro') + 1, value->>'rl') AS TEXT)
                     FROM json_each(?1) WHERE key IN (SELECT value FROM json_each(?3)) ORDER BY key
                     ON CONFLICT(id) DO NOTHING RETURNING seq, type",
                    vec![
                        text(chunk.rows.get()),
                        int(wire.header.received_at_ms),
                        text(&idx),
                        SqlStorageValue::from(chunk_text.to_vec()),
                    ],
                )?
                .to_array()?;
            for r in inserted {
                head = head.max(r.seq as i64);
                result.stored += 1;
                counts.entry(r.message_type).or_default().stored += 1;
            }
        }
        for item in wire.header.quarantine.iter().chain(quarantine.iter()) {
            let ty = item
                .message_type
                .clone()
                .unwrap_or_else(|| "unknown".to_owned());
            let c = counts.entry(ty).or_default();
            if item.reason != Reason::ConflictingDuplicate.as_str() {
                c.received += 1;
            }
            if self.quarantine_insert(sql, item, wire.header.received_at_ms)? {
                result.quarantined += 1;
                if item.reason != Reason::ConflictingDuplicate.as_str() {
                    c.quarantined += 1;
                }
            } else if item.reason != Reason::ConflictingDuplicate.as_str() {
                c.duplicate += 1;
            }
        }
        result.duplicate = outcomes
            .iter()
            .filter(|o| **o == Outcome::Duplicate)
            .count() as u32;
        result.conflict = outcomes.iter().filter(|o| **o == Outcome::Conflict).count() as u32;
        for (ty, c) in &counts {
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
                    int(wire.header.received_at_ms),
                ],
            )?;
        }
        Self::set_meta(sql, "head_seq", head)?;
        result.head_seq = head;
        Ok(result)
    }

    /// Keeps one quarantined piece (deduplicated by address and body hash), body in chunks.
    fn quarantine_insert(
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
        #[derive(Deserialize)]
        struct Seq {
            seq: f64,
        }
        let rows: Vec<Seq> = sql
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

    /// After a write: records the stream in the directory once, and makes sure the retention
    /// alarm is armed.
    async fn after_write(&self) {
        if self.meta("alarm_armed") == 0 {
            let interval = inbox_rules::gc_interval_ms(env_config::load(&self.env).retention_ms);
            if self
                .state
                .storage()
                .set_alarm(interval as i64)
                .await
                .is_ok()
            {
                let _ = Self::set_meta(&self.sql(), "alarm_armed", 1);
            }
        }
        if self.meta("registered") == 1 {
            return;
        }
        let Some(stream) = self.meta_stream() else {
            return;
        };
        if crate::directory_object::register(&self.env, &stream)
            .await
            .is_ok()
        {
            let _ = Self::set_meta(&self.sql(), "registered", 1);
        }
    }

    fn meta_stream(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct S {
            v: String,
        }
        self.sql()
            .exec(
                "SELECT CAST(v AS TEXT) AS v FROM meta WHERE k = 'stream_name'",
                None,
            )
            .and_then(|c| c.to_array::<S>())
            .ok()
            .and_then(|r| r.into_iter().next().map(|s| s.v))
    }

    // ---- read ---------------------------------------------------------------------------

    fn consumer_after(&self, name: &str) -> Option<i64> {
        #[derive(Deserialize)]
        struct A {
            after: f64,
        }
        self.sql()
            .exec(
                "SELECT after FROM consumers WHERE name = ?",
                vec![text(name)],
            )
            .and_then(|c| c.to_array::<A>())
            .ok()
            .and_then(|r| r.first().map(|a| a.after as i64))
    }

    fn oldest_seq(&self) -> i64 {
        self.scalar("SELECT MIN(seq) AS v FROM receipts", vec![])
    }

    /// One page; `None` when nothing matched.
    fn page(&self, req: &ReadRequest, after: i64) -> Result<Option<(String, i64, bool)>> {
        let mut q = String::from("SELECT seq, norm, raw FROM receipts WHERE seq > ?1");
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
        #[derive(Deserialize)]
        struct R {
            seq: f64,
            norm: String,
            raw: String,
        }
        let rows: Vec<R> = self.sql().exec(&q, binds)?.to_array()?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = String::from("[");
        let mut last = after;
        let mut cut = false;
        for (n, r) in rows.iter().enumerate() {
            let item = Row::assemble(&r.norm, r.seq as i64, &r.raw);
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
        let full = cut || rows.len() as u32 >= req.limit;
        Ok(Some((out, last, full)))
    }

    async fn read(&self, body: String) -> Result<Response> {
        let Ok(req) = serde_json::from_str::<ReadRequest>(&body) else {
            return respond::error(&ApiError::bad("read request does not parse"));
        };
        let after = match (&req.consumer, req.after) {
            (Some(name), _) => self.consumer_after(name).unwrap_or(0),
            (None, a) => a.unwrap_or(0),
        };
        let deadline = Date::now().as_millis() + req.wait_ms;
        loop {
            let head = self.meta("head_seq");
            if let Err(e) = inbox_rules::check_cursor(after, head, self.meta("removed_through")) {
                return respond::error(&e);
            }
            let page = self.page(&req, after)?;
            let now = Date::now().as_millis();
            let (receipts, next_after, has_more) = match page {
                Some((items, last, full)) => {
                    (items, if full { last } else { head }, full && last < head)
                }
                None if now < deadline => {
                    // Waits that ended by timeout leave closed senders behind: drop them first.
                    self.waiters.borrow_mut().retain(|w| !w.is_canceled());
                    if self.waiters.borrow().len() >= inbox_rules::MAX_WAITERS {
                        return respond::error(&ApiError::TooManyWaiters);
                    }
                    let (tx, rx) = oneshot::channel();
                    self.waiters.borrow_mut().push(tx);
                    let delay = Delay::from(Duration::from_millis(deadline - now));
                    match select(rx, delay).await {
                        Either::Left(_) => continue,
                        Either::Right(_) => continue,
                    }
                }
                None => ("[]".to_owned(), head, false),
            };
            let body = format!(
                "{{\"receipts\":{receipts},\"next_after\":{next_after},\"head_seq\":{head},\"oldest_seq\":{},\"has_more\":{has_more}}}",
                self.oldest_seq()
            );
            return respond::json(200, body);
        }
    }

    fn quarantine_page(&self, query: &str) -> Result<Response> {
        let (after, limit) = match fetch_query::quarantine(query) {
            Ok(v) => v,
            Err(e) => return respond::error(&e),
        };
        #[derive(Deserialize)]
        struct Q {
            seq: f64,
            address: String,
            sha256: String,
            reason: String,
            #[serde(rename = "type")]
            message_type: Option<String>,
            size: f64,
            encoding: String,
            received_at_ms: f64,
        }
        let rows: Vec<Q> = self
            .sql()
            .exec(
                "SELECT seq, address, sha256, reason, type, size, encoding, received_at_ms FROM quarantine
                 WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![int(after), int(i64::from(limit))],
            )?
            .to_array()?;
        let mut items = Vec::with_capacity(rows.len());
        let mut next_after = after;
        let mut bytes = 0usize;
        for q in rows {
            #[derive(Deserialize)]
            struct C {
                data: String,
            }
            let chunks: Vec<C> = self
                .sql()
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
            item[if q.encoding == "base64" {
                "raw_base64"
            } else {
                "raw"
            }] = Value::String(data);
            items.push(item);
        }
        let has_more = self.scalar(
            "SELECT EXISTS(SELECT 1 FROM quarantine WHERE seq > ?) AS v",
            vec![int(next_after)],
        ) == 1;
        respond::json(
            200,
            json!({ "items": items, "next_after": next_after, "has_more": has_more }).to_string(),
        )
    }

    // ---- consumers, stats, counters -----------------------------------------------------

    fn consumer(&self, method: Method, name: &str, body: &str) -> Result<Response> {
        if !icc_core::address::is_consumer(name) {
            return respond::error(&ApiError::bad("consumer names are 1-64 of [A-Za-z0-9_.-]"));
        }
        let head = self.meta("head_seq");
        match method {
            Method::Get => {
                let after = self.consumer_after(name).unwrap_or(0);
                respond::json(
                    200,
                    json!({ "after": after, "lag": (head - after).max(0) }).to_string(),
                )
            }
            Method::Put => {
                #[derive(Deserialize)]
                struct Put {
                    after: i64,
                }
                let Ok(p) = serde_json::from_str::<Put>(body) else {
                    return respond::error(&ApiError::bad("body must be {\"after\": <seq>}"));
                };
                if p.after < 0 {
                    return respond::error(&ApiError::bad("after must be >= 0"));
                }
                if p.after > head {
                    return respond::error(&ApiError::CursorAhead {
                        after: p.after,
                        head_seq: head,
                    });
                }
                let exists = self.consumer_after(name).is_some();
                let n = self.scalar("SELECT COUNT(*) AS v FROM consumers", vec![]);
                if !exists && n as usize >= inbox_rules::MAX_CONSUMERS {
                    return respond::error(&ApiError::TooManyConsumers {
                        max: inbox_rules::MAX_CONSUMERS,
                    });
                }
                self.sql().exec(
                    "INSERT INTO consumers(name, after, updated_at_ms) VALUES (?, ?, ?)
                     ON CONFLICT(name) DO UPDATE SET after = excluded.after, updated_at_ms = excluded.updated_at_ms",
                    vec![text(name), int(p.after), int(Date::now().as_millis() as i64)],
                )?;
                respond::json(
                    200,
                    json!({ "after": p.after, "lag": head - p.after }).to_string(),
                )
            }
            Method::Delete => {
                let existed = self.consumer_after(name).is_some();
                self.sql()
                    .exec("DELETE FROM consumers WHERE name = ?", vec![text(name)])?;
                respond::json(200, json!({ "deleted": existed }).to_string())
            }
            _ => respond::error(&ApiError::MethodNotAllowed {
                allow: "GET, PUT, DELETE",
            }),
        }
    }

    fn stats(&self) -> Result<Response> {
        #[derive(Deserialize)]
        struct S {
            #[serde(rename = "type")]
            message_type: String,
            received: f64,
            stored: f64,
            duplicate: f64,
            quarantined: f64,
            conflict: f64,
            last_received_at_ms: Option<f64>,
        }
        let rows: Vec<S> = self
            .sql()
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
        #[derive(Deserialize)]
        struct C {
            name: String,
            after: f64,
        }
        let head = self.meta("head_seq");
        let consumers: serde_json::Map<String, Value> = self
            .sql()
            .exec("SELECT name, after FROM consumers ORDER BY name", None)?
            .to_array::<C>()?
            .into_iter()
            .map(|c| {
                (
                    c.name,
                    json!({ "after": c.after as i64, "lag": (head - c.after as i64).max(0) }),
                )
            })
            .collect();
        let body = json!({
            "types": types,
            "kv_answered": self.meta("kv_answered"),
            "kv_write_failed": self.meta("kv_write_failed"),
            "head_seq": head,
            "oldest_seq": self.oldest_seq(),
            "removed_through": self.meta("removed_through"),
            "quarantine_count": self.scalar("SELECT COUNT(*) AS v FROM quarantine", vec![]),
            "db_bytes": self.sql().database_size(),
            "consumers": consumers,
        });
        respond::json(200, body.to_string())
    }

    fn count(&self, counter: &str) -> Result<Response> {
        if !matches!(counter, "kv_answered" | "kv_write_failed") {
            return respond::error(&ApiError::NotFound);
        }
        self.sql().exec(
            "INSERT INTO meta(k, v) VALUES (?, 1) ON CONFLICT(k) DO UPDATE SET v = v + 1",
            vec![text(counter)],
        )?;
        respond::json(200, "{}".to_owned())
    }

    // ---- retention ----------------------------------------------------------------------

    /// Removes at most `GC_BATCH` expired receipts and quarantine items; re-arms the alarm.
    async fn gc(&self) -> Result<Value> {
        let cfg = env_config::load(&self.env);
        let now = Date::now().as_millis() as i64;
        let cutoff = now - cfg.retention_ms as i64;
        let storage = self.state.storage();
        let sql = storage.sql();
        let (receipts, quarantine) = storage_tx::transaction_sync(&storage, || {
            #[derive(Deserialize)]
            struct Seq {
                seq: f64,
            }
            let removed: Vec<Seq> = sql
                .exec(
                    "DELETE FROM receipts WHERE seq IN
                       (SELECT seq FROM receipts WHERE received_at_ms < ? ORDER BY seq LIMIT ?) RETURNING seq",
                    vec![int(cutoff), int(i64::from(inbox_rules::GC_BATCH))],
                )?
                .to_array()?;
            if let Some(max) = removed.iter().map(|s| s.seq as i64).max() {
                let through = self.meta("removed_through").max(max);
                Self::set_meta(&sql, "removed_through", through)?;
            }
            let q: Vec<Seq> = sql
                .exec(
                    "DELETE FROM quarantine WHERE seq IN
                       (SELECT seq FROM quarantine WHERE received_at_ms < ? ORDER BY seq LIMIT ?) RETURNING seq",
                    vec![int(cutoff), int(i64::from(inbox_rules::GC_BATCH))],
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
            }
            Ok((removed.len(), q.len()))
        })?;
        let more =
            receipts as u32 >= inbox_rules::GC_BATCH || quarantine as u32 >= inbox_rules::GC_BATCH;
        let remaining = self.scalar(
            "SELECT (SELECT COUNT(*) FROM receipts) + (SELECT COUNT(*) FROM quarantine) AS v",
            vec![],
        );
        let next = if more {
            Some(1000)
        } else if remaining > 0 {
            Some(inbox_rules::gc_interval_ms(cfg.retention_ms) as i64)
        } else {
            None
        };
        match next {
            Some(ms) => {
                storage.set_alarm(ms).await?;
                Self::set_meta(&sql, "alarm_armed", 1)?;
            }
            None => Self::set_meta(&sql, "alarm_armed", 0)?,
        }
        if receipts + quarantine > 0 {
            worker::console_log!("gc removed receipts={} quarantine={}", receipts, quarantine);
        }
        Ok(json!({ "removed_receipts": receipts, "removed_quarantine": quarantine, "more": more }))
    }
}

impl DurableObject for Inbox {
    fn new(state: State, env: Env) -> Self {
        let ready = Self::migrate(&state.storage().sql());
        Inbox {
            state,
            env,
            ready,
            waiters: RefCell::new(Vec::new()),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.route(req).await {
            Ok(r) => Ok(r),
            Err(e) => {
                worker::console_error!("inbox request failed: {}", e);
                respond::error(&ApiError::Unavailable)
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.gc().await?;
        Response::ok("gc done")
    }
}

impl Inbox {
    async fn route(&self, mut req: Request) -> Result<Response> {
        if let Err(e) = &self.ready {
            worker::console_error!("inbox schema migration failed: {}", e);
            return respond::error(&ApiError::Unavailable);
        }
        if let Ok(Some(stream)) = req.headers().get("x-stream") {
            if self.meta_stream().as_deref() != Some(stream.as_str()) {
                self.sql().exec(
                    "INSERT INTO meta(k, v) VALUES ('stream_name', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                    vec![text(&stream)],
                )?;
            }
        }
        let path = req.path();
        let method = req.method();
        match (method.clone(), path.as_str()) {
            (Method::Post, "/commit") => {
                let body = req.bytes().await?;
                self.commit(body).await
            }
            (Method::Post, "/read") => {
                let body = req.text().await?;
                self.read(body).await
            }
            (Method::Get, "/quarantine") => {
                let query = req.url()?.query().unwrap_or("").to_owned();
                self.quarantine_page(&query)
            }
            (Method::Get, "/stats") => self.stats(),
            (Method::Post, "/gc") => respond::json(200, self.gc().await?.to_string()),
            (Method::Post, p) if p.starts_with("/count/") => {
                self.count(p.trim_start_matches("/count/"))
            }
            (m, p) if p.starts_with("/consumers/") => {
                let body = if m == Method::Put {
                    req.text().await?
                } else {
                    String::new()
                };
                self.consumer(m, p.trim_start_matches("/consumers/"), &body)
            }
            _ => respond::error(&ApiError::NotFound),
        }
    }
}
