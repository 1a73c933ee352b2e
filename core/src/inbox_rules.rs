//! The inbox's rules, apart from its storage: how a batch's rows are classified against what is
//! already stored, which cursors a reader may use, how pages and GC are bounded.

use crate::error::ApiError;
use std::collections::HashMap;

/// What happens to one row of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// New identity: stored, gets a `seq`.
    Store,
    /// Identity known with the same content: counted, not stored.
    Duplicate,
    /// Identity known with different content: quarantined as `conflicting_duplicate`.
    Conflict,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Store => "stored",
            Outcome::Duplicate => "duplicate",
            Outcome::Conflict => "conflict",
        }
    }
}

/// Classifies rows, given as `(id, content hash)` in order. `stored` maps ids already in the
/// inbox to their content hash. Inside one batch, the first occurrence of an id wins and later
/// ones compare against it.
pub fn classify(rows: &[(&str, &str)], stored: &HashMap<String, String>) -> Vec<Outcome> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    rows.iter()
        .map(|&(id, hash)| {
            let known = stored
                .get(id)
                .map(String::as_str)
                .or_else(|| seen.get(id).copied());
            match known {
                None => {
                    seen.insert(id, hash);
                    Outcome::Store
                }
                Some(h) if h == hash => Outcome::Duplicate,
                Some(_) => Outcome::Conflict,
            }
        })
        .collect()
}

/// `after` must not be above the head (409) nor below what retention removed (410). Gaps in
/// `seq` alone never cause 410: only `after < removed_through`.
pub fn check_cursor(after: i64, head_seq: i64, removed_through: i64) -> Result<(), ApiError> {
    if after > head_seq {
        return Err(ApiError::CursorAhead { after, head_seq });
    }
    if after < removed_through {
        return Err(ApiError::CursorExpired { removed_through });
    }
    Ok(())
}

/// A page stops at `limit` receipts or this many bytes, whichever comes first (but holds at
/// least one receipt when one is there).
pub const PAGE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Long-poll waiters per stream before 429.
pub const MAX_WAITERS: usize = 100;
/// Consumers per stream.
pub const MAX_CONSUMERS: usize = 100;
/// Rows deleted by one GC run.
pub const GC_BATCH: u32 = 1000;
/// Bytes of one stored quarantine chunk.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// GC runs every min(1 h, retention / 4), at least every second.
pub fn gc_interval_ms(retention_ms: u64) -> u64 {
    (retention_ms / 4).clamp(1000, 3_600_000)
}

/// When retention runs next, in ms from now: soon while a run removed a full batch (more is
/// expired), at the regular interval while anything is left to expire, never on an empty inbox
/// (the next write schedules it again).
pub fn retention_next_in_ms(full_batch: bool, remaining: i64, retention_ms: u64) -> Option<u64> {
    if full_batch {
        Some(1000)
    } else if remaining > 0 {
        Some(gc_interval_ms(retention_ms))
    } else {
        None
    }
}

/// Splits text into pieces of at most `max` bytes on character boundaries.
pub fn chunks(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(max.max(4));
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        out.push(head);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_against_store_and_batch() {
        let stored = HashMap::from([("a".to_owned(), "h1".to_owned())]);
        let rows = [
            ("a", "h1"),
            ("a", "h2"),
            ("b", "x"),
            ("b", "x"),
            ("b", "y"),
            ("c", "z"),
        ];
        let got: Vec<&str> = classify(&rows, &stored)
            .iter()
            .map(|o| o.as_str())
            .collect();
        assert_eq!(
            got,
            [
                "duplicate",
                "conflict",
                "stored",
                "duplicate",
                "conflict",
                "stored"
            ]
        );
    }

    #[test]
    fn cursors() {
        assert!(check_cursor(0, 0, 0).is_ok());
        assert!(check_cursor(5, 10, 5).is_ok());
        assert_eq!(check_cursor(11, 10, 0).map_err(|e| e.status()), Err(409));
        assert_eq!(check_cursor(4, 10, 5).map_err(|e| e.status()), Err(410));
    }

    #[test]
    fn gc_and_chunks() {
        assert_eq!(gc_interval_ms(7 * 86_400_000), 3_600_000);
        assert_eq!(gc_interval_ms(8_000), 2_000);
        assert_eq!(gc_interval_ms(10), 1_000);
        assert_eq!(retention_next_in_ms(true, 0, 8_000), Some(1000));
        assert_eq!(retention_next_in_ms(false, 5, 8_000), Some(2000));
        assert_eq!(retention_next_in_ms(false, 0, 8_000), None);
        let s = "aé".repeat(10);
        let c = chunks(&s, 4);
        assert_eq!(c.concat(), s);
        assert!(c.iter().all(|p| p.len() <= 4));
    }
}
