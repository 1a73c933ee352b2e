//! Forwarding stored receipts to the Cloudflare Queue: the inbox is the outbox. It sends the
//! receipts after `forwarded_through` in seq order, in `send_batch` calls that respect the
//! queue's limits, and moves `forwarded_through` only after a send succeeded.

use std::ops::Range;

/// Messages in one `send_batch` call (Cloudflare's limit).
pub const MAX_BATCH_MESSAGES: usize = 100;
/// Bytes in one `send_batch` call (Cloudflare's limit is 256 KB; the margin covers the
/// per-message overhead the runtime adds).
pub const MAX_BATCH_BYTES: usize = 240 * 1024;
/// A single queue message holds at most this many bytes (Cloudflare's limit is 128 KB).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// The first retry of a failed send waits this long; each further one doubles it.
pub const FIRST_BACKOFF_MS: u64 = 1_000;
/// The longest wait between two send attempts.
pub const MAX_BACKOFF_MS: u64 = 300_000;

/// Cuts messages of the given sizes, in order, into consecutive batches within both limits.
/// Every message is in exactly one batch; a message over the byte limit is alone in its batch.
pub fn batches(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, &s) in sizes.iter().enumerate() {
        if i > start && (i - start >= MAX_BATCH_MESSAGES || bytes + s > MAX_BATCH_BYTES) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += s;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// Wait before the next send after `failures` consecutive failed sends (1-based).
pub fn backoff_ms(failures: u32) -> u64 {
    crate::schedule::doubling_backoff(FIRST_BACKOFF_MS, MAX_BACKOFF_MS, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_both_limits_and_keep_order() {
        assert!(batches(&[]).is_empty());
        assert_eq!(batches(&[10; 250]), vec![0..100, 100..200, 200..250]);
        let big = MAX_BATCH_BYTES / 3 + 1;
        assert_eq!(batches(&[big; 5]), vec![0..2, 2..4, 4..5]);
        assert_eq!(
            batches(&[1, MAX_BATCH_BYTES * 2, 1]),
            vec![0..1, 1..2, 2..3]
        );
        let sizes: Vec<usize> = (0..1_000).map(|i| 100 + (i * 7919) % 5_000).collect();
        let b = batches(&sizes);
        let mut next = 0;
        for r in &b {
            assert_eq!(r.start, next);
            next = r.end;
            assert!(r.len() <= MAX_BATCH_MESSAGES);
            assert!(sizes[r.clone()].iter().sum::<usize>() <= MAX_BATCH_BYTES);
        }
        assert_eq!(next, sizes.len());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(50), MAX_BACKOFF_MS);
    }
}
