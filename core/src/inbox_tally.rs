//! The counting rules of one commit: what each row and each quarantined piece adds to the
//! per-type counters (`received`, `stored`, `duplicate`, `quarantined`, `conflict`) and to the
//! answer the Worker gets. The inbox feeds it what happened and writes out the sums.
//!
//! Invariant per type, over all commits: `received = stored + duplicate + quarantined + conflict`
//! (a conflict is received once, as its row; its quarantine copy is not counted again).

use crate::inbox_protocol::{CommitResult, QuarantineItem};
use crate::inbox_rules::Outcome;
use std::collections::BTreeMap;

/// The type under which a quarantined piece without a message type is counted.
pub const UNKNOWN_TYPE: &str = "unknown";

/// Counter increments for one message type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeCounts {
    pub received: i64,
    pub stored: i64,
    pub duplicate: i64,
    pub quarantined: i64,
    pub conflict: i64,
}

/// The running counts of one commit.
#[derive(Debug, Default)]
pub struct Tally {
    types: BTreeMap<String, TypeCounts>,
    result: CommitResult,
}

impl Tally {
    fn of(&mut self, message_type: &str) -> &mut TypeCounts {
        self.types.entry(message_type.to_owned()).or_default()
    }

    /// A row of the commit, classified against what the inbox holds.
    pub fn row(&mut self, message_type: &str, outcome: Outcome) {
        let c = self.of(message_type);
        c.received += 1;
        match outcome {
            // Counted as stored only once the insert reports it (see `inserted`).
            Outcome::Store => {}
            Outcome::Duplicate => {
                c.duplicate += 1;
                self.result.duplicate += 1;
            }
            Outcome::Conflict => {
                c.conflict += 1;
                self.result.conflict += 1;
            }
        }
    }

    /// A row the insert reported as new (it got a `seq`).
    pub fn inserted(&mut self, message_type: &str) {
        self.of(message_type).stored += 1;
        self.result.stored += 1;
    }

    /// A quarantined piece; `kept` is false when the same piece (address and body) was already
    /// there. A conflict's copy only counts in the answer: its row was counted already.
    pub fn quarantined(&mut self, item: &QuarantineItem, kept: bool) {
        let conflict_copy = item.is_conflict();
        let c = self.of(item.message_type.as_deref().unwrap_or(UNKNOWN_TYPE));
        if !conflict_copy {
            c.received += 1;
            if kept {
                c.quarantined += 1;
            } else {
                c.duplicate += 1;
            }
        }
        if kept {
            self.result.quarantined += 1;
        }
    }

    /// The per-type increments (every type touched, even with zero counts: its
    /// `last_received_at` moves) and the answer, with the new head.
    pub fn finish(self, head_seq: i64) -> (BTreeMap<String, TypeCounts>, CommitResult) {
        let mut result = self.result;
        result.head_seq = head_seq;
        (self.types, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Reason;

    fn item(reason: Reason, ty: Option<&str>) -> QuarantineItem {
        QuarantineItem::new(reason, "/icc/bot", ty, b"x")
    }

    #[test]
    fn rows_count_received_and_their_outcome() {
        let mut t = Tally::default();
        t.row("A", Outcome::Store);
        t.row("A", Outcome::Duplicate);
        t.row("B", Outcome::Conflict);
        t.row("A", Outcome::Store);
        t.inserted("A");
        // The second Store lost a race inside the insert (ON CONFLICT DO NOTHING): not stored.
        let (types, result) = t.finish(9);
        assert_eq!(
            types["A"],
            TypeCounts {
                received: 3,
                stored: 1,
                duplicate: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            types["B"],
            TypeCounts {
                received: 1,
                conflict: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            (
                result.stored,
                result.duplicate,
                result.conflict,
                result.quarantined,
                result.head_seq
            ),
            (1, 1, 1, 0, 9)
        );
    }

    #[test]
    fn quarantine_counts_received_once() {
        let mut t = Tally::default();
        t.quarantined(&item(Reason::NotJson, None), true);
        t.quarantined(&item(Reason::UnknownShape, Some("X")), false);
        t.row("C", Outcome::Conflict);
        t.quarantined(&item(Reason::ConflictingDuplicate, Some("C")), true);
        let (types, result) = t.finish(0);
        assert_eq!(
            types[UNKNOWN_TYPE],
            TypeCounts {
                received: 1,
                quarantined: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            types["X"],
            TypeCounts {
                received: 1,
                duplicate: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            types["C"],
            TypeCounts {
                received: 1,
                conflict: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            (result.quarantined, result.conflict, result.duplicate),
            (2, 1, 0)
        );
        for c in types.values() {
            assert_eq!(
                c.received,
                c.stored + c.duplicate + c.quarantined + c.conflict
            );
        }
    }

    #[test]
    fn a_touched_type_is_listed_even_without_counts() {
        let mut t = Tally::default();
        t.quarantined(&item(Reason::ConflictingDuplicate, Some("C")), false);
        let (types, result) = t.finish(3);
        assert_eq!(types["C"], TypeCounts::default());
        assert_eq!(result.quarantined, 0);
    }
}
