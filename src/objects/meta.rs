//! The small key/value table an object keeps beside its data (`k TEXT PRIMARY KEY, v`): the
//! inbox's head, counters and stream name, the MNS puller's queue name and token expiry. Every
//! read reports a storage error as an error: a value that cannot be read is never taken for 0.

use serde::Deserialize;
use worker::{Error, Result, SqlStorage, SqlStorageValue};

/// One object's key/value table.
pub struct Meta {
    sql: SqlStorage,
    table: &'static str,
}

/// A value as text (integers in their decimal form).
#[derive(Deserialize)]
struct TextRow {
    v: String,
}

impl Meta {
    /// The table `table` of `sql` (created by the object's schema).
    pub fn new(sql: SqlStorage, table: &'static str) -> Meta {
        Meta { sql, table }
    }

    fn get(&self, k: &str) -> Result<Option<String>> {
        let rows: Vec<TextRow> = self
            .sql
            .exec(
                &format!(
                    "SELECT CAST(v AS TEXT) AS v FROM {} WHERE k = ?",
                    self.table
                ),
                vec![SqlStorageValue::from(k)],
            )?
            .to_array()?;
        Ok(rows.into_iter().next().map(|r| r.v))
    }

    /// The integer under `k`; 0 when absent. A value that is not an integer is an error.
    pub fn int(&self, k: &str) -> Result<i64> {
        match self.get(k)? {
            None => Ok(0),
            Some(v) => v
                .parse()
                .map_err(|_| Error::RustError(format!("{}.{k} is not an integer", self.table))),
        }
    }

    /// The text under `k`, if any (a number is given as its decimal text).
    pub fn text(&self, k: &str) -> Result<Option<String>> {
        self.get(k)
    }

    pub fn set_int(&self, k: &str, v: i64) -> Result<()> {
        self.set(k, SqlStorageValue::from(v))
    }

    pub fn set_text(&self, k: &str, v: &str) -> Result<()> {
        self.set(k, SqlStorageValue::from(v))
    }

    fn set(&self, k: &str, v: SqlStorageValue) -> Result<()> {
        self.sql.exec(
            &format!(
                "INSERT INTO {}(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                self.table
            ),
            vec![SqlStorageValue::from(k), v],
        )?;
        Ok(())
    }

    /// Adds `n` to the integer under `k` (absent counts as 0).
    pub fn add(&self, k: &str, n: i64) -> Result<()> {
        self.sql.exec(
            &format!(
                "INSERT INTO {}(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = v + excluded.v",
                self.table
            ),
            vec![SqlStorageValue::from(k), SqlStorageValue::from(n)],
        )?;
        Ok(())
    }
}
