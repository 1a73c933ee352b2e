//! Who may hold a long poll on a stream. At most `max` reads wait at once. The runtime does not
//! tell an object that a waiting client went away, so abandoned waits keep their slot until
//! their `wait` runs out; what bounds them is the consumer: when the stream is full, a new wait
//! takes the slot of the oldest wait of its own consumer, or else of the consumer holding the
//! most waits (if it holds more than one). A released wait answers its (empty) page at once,
//! which a live reader takes as any other long-poll answer and polls again.

/// What to do with a new wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A slot is free.
    Admit,
    /// The stream is full: answer the wait with this id now and give its slot to the new one.
    AdmitReleasing(u64),
    /// The stream is full of waits that cannot be released: 429.
    Refuse,
}

/// Decides on a new wait for `consumer` (`None`: a read by `after`), given the current waits as
/// `(id, consumer)` oldest first.
pub fn admit(waiting: &[(u64, Option<&str>)], consumer: Option<&str>, max: usize) -> Admission {
    if waiting.len() < max {
        return Admission::Admit;
    }
    let oldest_of = |c: &str| {
        waiting
            .iter()
            .find(|(_, w)| *w == Some(c))
            .map(|(id, _)| *id)
    };
    if let Some(id) = consumer.and_then(oldest_of) {
        return Admission::AdmitReleasing(id);
    }
    let count = |c: &str| waiting.iter().filter(|(_, w)| *w == Some(c)).count();
    let busiest = waiting
        .iter()
        .filter_map(|(_, c)| *c)
        .map(|c| (count(c), c))
        .max_by_key(|(n, _)| *n);
    match busiest {
        Some((n, c)) if n > 1 => oldest_of(c).map_or(Admission::Refuse, Admission::AdmitReleasing),
        _ => Admission::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_admits() {
        assert_eq!(admit(&[], None, 2), Admission::Admit);
        assert_eq!(admit(&[(1, None)], Some("c"), 2), Admission::Admit);
    }

    #[test]
    fn full_of_anonymous_or_distinct_consumers_refuses() {
        let w = [(1, None), (2, Some("a")), (3, Some("b"))];
        assert_eq!(admit(&w, None, 3), Admission::Refuse);
        assert_eq!(admit(&w, Some("c"), 3), Admission::Refuse);
    }

    #[test]
    fn a_consumer_takes_back_its_own_slot() {
        let w = [(1, None), (2, Some("a")), (3, Some("b"))];
        assert_eq!(admit(&w, Some("b"), 3), Admission::AdmitReleasing(3));
    }

    #[test]
    fn abandoned_waits_of_one_consumer_make_room_for_anyone() {
        let w: Vec<(u64, Option<&str>)> = (1..=100).map(|i| (i, Some("gone"))).collect();
        assert_eq!(admit(&w, None, 100), Admission::AdmitReleasing(1));
        assert_eq!(admit(&w, Some("other"), 100), Admission::AdmitReleasing(1));
        let w = [
            (1, Some("a")),
            (2, Some("b")),
            (3, Some("b")),
            (4, Some("a")),
            (5, Some("b")),
        ];
        assert_eq!(admit(&w, None, 5), Admission::AdmitReleasing(2));
    }
}
