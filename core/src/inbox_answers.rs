//! The JSON answers of the inbox's read routes, built in one place: by the inbox, and by the
//! Worker for a stream that was never written. Such a stream has no inbox, and reading it must
//! not create one: its answers are those of an empty inbox, or 404 when `APPS` lists the streams
//! that may exist and it is not one of them.

use crate::address::DEFAULT_STREAM;
use crate::error::ApiError;
use crate::inbox_rules::check_cursor;

/// `GET /receipts`: a page; `receipts` is the JSON array text of the receipts.
pub fn receipts_page(
    receipts: &str,
    next_after: i64,
    head_seq: i64,
    oldest_seq: i64,
    has_more: bool,
) -> String {
    format!(
        "{{\"receipts\":{receipts},\"next_after\":{next_after},\"head_seq\":{head_seq},\"oldest_seq\":{oldest_seq},\"has_more\":{has_more}}}"
    )
}

/// `GET /consumers/{name}` (and the answer to a `PUT`).
pub fn consumer_cursor(after: i64, head_seq: i64) -> String {
    format!(
        "{{\"after\":{after},\"lag\":{}}}",
        (head_seq - after).max(0)
    )
}

/// `DELETE /consumers/{name}`.
pub fn consumer_deleted(existed: bool) -> String {
    format!("{{\"deleted\":{existed}}}")
}

/// Whether a stream that was never written may be read as empty (else 404): always without
/// `APPS`; with it, `default` and the listed apps.
pub fn unwritten_visible(stream: &str, apps: Option<&[String]>) -> bool {
    stream == DEFAULT_STREAM || apps.is_none_or(|list| list.iter().any(|a| a == stream))
}

/// A never-written stream's page of receipts after `after`: empty, or the cursor error an empty
/// inbox gives (409 above head 0).
pub fn unwritten_receipts(after: i64) -> Result<String, ApiError> {
    check_cursor(after, 0, 0)?;
    Ok(receipts_page("[]", 0, 0, 0, false))
}

/// A never-written stream's quarantine page.
pub fn unwritten_quarantine(after: i64) -> String {
    format!("{{\"items\":[],\"next_after\":{after},\"has_more\":false}}")
}

/// A never-written stream's stats.
pub fn unwritten_stats() -> String {
    r#"{"types":{},"kv_answered":0,"kv_write_failed":0,"head_seq":0,"oldest_seq":0,"removed_through":0,"quarantine_count":0,"db_bytes":0,"consumers":{},"waiters":0}"#.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).expect("JSON")
    }

    #[test]
    fn pages_are_json() {
        assert_eq!(
            parse(&receipts_page("[{\"seq\":3}]", 3, 5, 1, true)),
            json!({"receipts":[{"seq":3}],"next_after":3,"head_seq":5,"oldest_seq":1,"has_more":true})
        );
        assert_eq!(parse(&consumer_cursor(2, 5)), json!({"after":2,"lag":3}));
        assert_eq!(parse(&consumer_cursor(7, 5)), json!({"after":7,"lag":0}));
        assert_eq!(parse(&consumer_deleted(true)), json!({"deleted":true}));
    }

    #[test]
    fn unwritten_streams_read_as_empty() {
        assert_eq!(
            parse(&unwritten_receipts(0).expect("page")),
            json!({"receipts":[],"next_after":0,"head_seq":0,"oldest_seq":0,"has_more":false})
        );
        assert_eq!(unwritten_receipts(1).map_err(|e| e.status()), Err(409));
        assert_eq!(
            parse(&unwritten_quarantine(4)),
            json!({"items":[],"next_after":4,"has_more":false})
        );
        let stats = parse(&unwritten_stats());
        assert_eq!(stats["head_seq"], 0);
        assert_eq!(stats["consumers"], json!({}));
    }

    #[test]
    fn visibility_follows_apps() {
        let apps = vec!["shop1".to_owned()];
        assert!(unwritten_visible("anything", None));
        assert!(unwritten_visible("default", Some(&apps)));
        assert!(unwritten_visible("shop1", Some(&apps)));
        assert!(!unwritten_visible("typo", Some(&apps)));
    }
}
