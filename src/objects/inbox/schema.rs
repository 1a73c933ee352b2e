//! The inbox's tables, their migration, and the small helpers every part uses to bind values and
//! read single numbers.

use serde::Deserialize;
use worker::{Result, SqlStorage, SqlStorageValue};

/// The inbox's key/value table (see [`crate::objects::meta::Meta`]).
pub const META: &str = "meta";
/// Highest `seq` ever assigned (never lowered; retention keeps it).
pub const HEAD_SEQ: &str = "head_seq";
/// Highest `seq` retention removed: cursors below it are expired.
pub const REMOVED_THROUGH: &str = "removed_through";
/// The stream this object serves (from the Worker's header).
pub const STREAM_NAME: &str = "stream_name";
/// 1 once the directory recorded the stream.
pub const REGISTERED: &str = "registered";
const SCHEMA_VERSION: &str = "schema_version";

/// 2: the `schedule` table replaced the `alarm_armed` flag.
/// 3: `quarantine_redrive` records when each quarantined item was redriven and its outcome.
/// 4: the `dead_letters` table (delivery).
/// 5: the `spool` and `spool_pieces` tables.
/// 6: the `recordings` table (archive jobs).
const VERSION: i64 = 6;

const TABLES: &[&str] = &[
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
    // One due time per kind of scheduled work (icc_core::schedule).
    "CREATE TABLE IF NOT EXISTS schedule (kind TEXT PRIMARY KEY, due_at_ms INTEGER NOT NULL)",
    // From version 1: an armed retention alarm becomes a due retention run.
    "INSERT INTO schedule(kind, due_at_ms)
       SELECT 'retention', 0 FROM meta WHERE k = 'alarm_armed' AND v = 1
       ON CONFLICT(kind) DO NOTHING",
    "DELETE FROM meta WHERE k = 'alarm_armed'",
    // Version 3: the last redrive of a quarantined item and its outcome.
    "CREATE TABLE IF NOT EXISTS quarantine_redrive (
        qseq INTEGER PRIMARY KEY, redriven_at_ms INTEGER NOT NULL, outcome TEXT NOT NULL)",
    // Version 4: webhook deliveries given up, by the receipt's seq (delivery).
    "CREATE TABLE IF NOT EXISTS dead_letters (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        first_attempt_at_ms INTEGER NOT NULL,
        last_attempt_at_ms INTEGER NOT NULL)",
    // Version 5: spooled bodies (as received, in pieces) and their drain progress.
    "CREATE TABLE IF NOT EXISTS spool (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        address TEXT NOT NULL,
        pin TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        header TEXT NOT NULL,
        size INTEGER NOT NULL,
        received_at_ms INTEGER NOT NULL,
        next_idx INTEGER NOT NULL,
        done INTEGER NOT NULL,
        UNIQUE(address, pin, sha256))",
    "CREATE TABLE IF NOT EXISTS spool_pieces (
        sid INTEGER NOT NULL, idx INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (sid, idx))",
    // Version 6: one recording archive job per receipt with a recording_url (archive.rs).
    "CREATE TABLE IF NOT EXISTS recordings (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL,
        next_at_ms INTEGER NOT NULL,
        size INTEGER,
        sha256 TEXT,
        archived_at_ms INTEGER,
        last_error TEXT)",
    "CREATE INDEX IF NOT EXISTS recordings_due ON recordings(status, next_at_ms)",
];

/// Creates what is missing (every statement is idempotent) and records the version.
pub fn migrate(sql: &SqlStorage) -> std::result::Result<(), String> {
    for stmt in TABLES {
        sql.exec(stmt, None).map_err(|e| e.to_string())?;
    }
    sql.exec(
        "INSERT INTO meta(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
        vec![text(SCHEMA_VERSION), int(VERSION)],
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

pub fn int(v: i64) -> SqlStorageValue {
    SqlStorageValue::from(v)
}

pub fn text(v: &str) -> SqlStorageValue {
    SqlStorageValue::from(v)
}

pub fn sql_err(e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(e.to_string())
}

/// A query answering one number as `v` (NULL or no row: 0). Errors are errors.
pub fn scalar(sql: &SqlStorage, query: &str, binds: Vec<SqlStorageValue>) -> Result<i64> {
    #[derive(Deserialize)]
    struct One {
        v: Option<f64>,
    }
    let rows: Vec<One> = sql.exec(query, binds)?.to_array()?;
    Ok(rows.first().and_then(|r| r.v).map_or(0, |v| v as i64))
}

/// A row that is only a `seq`.
#[derive(Deserialize)]
pub struct SeqRow {
    pub seq: f64,
}
