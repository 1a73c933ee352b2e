//! The one alarm of an object, shared by several kinds of work. Each kind has at most one due
//! time (kept in a table by the object); the alarm is armed at the earliest; when it fires, every
//! kind that is due runs once and says when it wants to run again. Work must be idempotent: an
//! alarm can fire twice, late, or be retried after a failure.
//!
//! Adding a kind of work: one variant here (with its name), one handler in the object.

/// A kind of scheduled work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Work {
    /// Remove receipts and quarantine older than the retention window.
    Retention,
    /// Send stored receipts after `forwarded_through` to the receipts queue.
    Forward,
    /// Drain spooled bodies in bounded chunks.
    Spool,
    /// Download pending recordings into R2 (`recording_archive`).
    Archive,
}

/// Exponential backoff shared by every retried kind of work: `first` after the first failure,
/// doubling with each further one, never more than `cap`. `failures` counts from 1.
pub fn doubling_backoff(first: u64, cap: u64, failures: u32) -> u64 {
    let doublings = failures.saturating_sub(1).min(32);
    first.saturating_mul(1u64 << doublings).min(cap)
}

impl Work {
    pub const ALL: [Work; 4] = [Work::Retention, Work::Forward, Work::Spool, Work::Archive];

    /// The name kept in the schedule table.
    pub fn as_str(self) -> &'static str {
        match self {
            Work::Retention => "retention",
            Work::Forward => "forward",
            Work::Spool => "spool",
            Work::Archive => "archive",
        }
    }

    pub fn parse(s: &str) -> Option<Work> {
        Work::ALL.into_iter().find(|w| w.as_str() == s)
    }
}

/// A kind of work that failed runs again after this long.
pub const RETRY_MS: i64 = 5_000;

/// One row of the schedule table: a kind (by name, as stored) and when it is due (unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub kind: String,
    pub at_ms: i64,
}

/// Known kinds and their due times; rows of unknown kinds (left by another version) are inert.
fn known(table: &[Due]) -> impl Iterator<Item = (Work, i64)> + '_ {
    table
        .iter()
        .filter_map(|d| Work::parse(&d.kind).map(|w| (w, d.at_ms)))
}

/// When the alarm should fire: the earliest due time of a known kind, if any.
pub fn earliest(table: &[Due]) -> Option<i64> {
    known(table).map(|(_, at)| at).min()
}

/// The kinds due at `now_ms`, earliest first (each kind once).
pub fn due_now(table: &[Due], now_ms: i64) -> Vec<Work> {
    let mut due: Vec<(i64, Work)> = known(table)
        .filter(|(_, at)| *at <= now_ms)
        .map(|(w, at)| (at, w))
        .collect();
    due.sort();
    due.dedup_by_key(|(_, w)| *w);
    due.into_iter().map(|(_, w)| w).collect()
}

/// Whether `work` has a due time in the table.
pub fn is_scheduled(table: &[Due], work: Work) -> bool {
    known(table).any(|(w, _)| w == work)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(kind: &str, at_ms: i64) -> Due {
        Due {
            kind: kind.into(),
            at_ms,
        }
    }

    #[test]
    fn names_round_trip() {
        for w in Work::ALL {
            assert_eq!(Work::parse(w.as_str()), Some(w));
        }
        assert_eq!(Work::parse("someday"), None);
    }

    #[test]
    fn earliest_of_known_kinds() {
        assert_eq!(earliest(&[]), None);
        assert_eq!(earliest(&[due("retention", 50)]), Some(50));
        // A kind this version does not know never arms the alarm (it would never be cleared).
        assert_eq!(
            earliest(&[due("someday", 10), due("retention", 50)]),
            Some(50)
        );
        assert_eq!(earliest(&[due("someday", 10)]), None);
    }

    #[test]
    fn what_is_due() {
        let table = [due("retention", 100), due("someday", 0)];
        assert!(due_now(&table, 99).is_empty());
        assert_eq!(due_now(&table, 100), vec![Work::Retention]);
        assert_eq!(due_now(&table, 1_000), vec![Work::Retention]);
        assert!(is_scheduled(&table, Work::Retention));
        assert!(!is_scheduled(&[due("someday", 0)], Work::Retention));
    }
}
