//! Consumers: named, stored read cursors (`/consumers/{name}`). The name is checked by the
//! route; reading with a consumer never moves it.

use super::schema::{int, scalar, text};
use super::Inbox;
use crate::respond;
use icc_core::error::ApiError;
use icc_core::inbox_answers::{consumer_cursor, consumer_deleted};
use icc_core::inbox_rules;
use serde::Deserialize;
use worker::{Date, Response, Result};

/// The body of `PUT /consumers/{name}`.
#[derive(Deserialize)]
struct PutBody {
    after: i64,
}

/// A consumer's cursor.
#[derive(Deserialize)]
struct AfterRow {
    after: f64,
}

impl Inbox {
    /// The cursor of `name`, if the consumer exists.
    pub(super) fn consumer_after(&self, name: &str) -> Result<Option<i64>> {
        let rows: Vec<AfterRow> = self
            .sql()
            .exec(
                "SELECT after FROM consumers WHERE name = ?",
                vec![text(name)],
            )?
            .to_array()?;
        Ok(rows.first().map(|a| a.after as i64))
    }

    pub(super) fn consumer_get(&self, name: &str) -> Result<Response> {
        let head = self.head_seq()?;
        let after = self.consumer_after(name)?.unwrap_or(0);
        respond::json(200, consumer_cursor(after, head))
    }

    pub(super) async fn consumer_put(&self, name: &str, body: &str) -> Result<Response> {
        let Ok(p) = serde_json::from_str::<PutBody>(body) else {
            return respond::error(&ApiError::bad("body must be {\"after\": <seq>}"));
        };
        if p.after < 0 {
            return respond::error(&ApiError::bad("after must be >= 0"));
        }
        let head = self.head_seq()?;
        if p.after > head {
            return respond::error(&ApiError::CursorAhead {
                after: p.after,
                head_seq: head,
            });
        }
        let exists = self.consumer_after(name)?.is_some();
        let n = scalar(&self.sql(), "SELECT COUNT(*) AS v FROM consumers", vec![])?;
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
        self.after_write().await?;
        respond::json(200, consumer_cursor(p.after, head))
    }

    pub(super) fn consumer_delete(&self, name: &str) -> Result<Response> {
        let existed = self.consumer_after(name)?.is_some();
        self.sql()
            .exec("DELETE FROM consumers WHERE name = ?", vec![text(name)])?;
        respond::json(200, consumer_deleted(existed))
    }
}
