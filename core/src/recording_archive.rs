//! The recording archive's rules: its configuration (`ARCHIVE_RECORDINGS`, `RECORDING_HOSTS`,
//! `ARCHIVE_CONCURRENCY`, `ARCHIVE_RETRY_HOURS`, `RECORDING_RETENTION_DAYS`), job statuses, the
//! `recording` object added to a receipt, the hash kept while a file streams through, and the
//! `Range` header of the download route. The object side is `src/objects/inbox/archive.rs`.

use crate::recording_url::{self, HostPolicy};
use sha2::{Digest, Sha256};

pub const DEFAULT_CONCURRENCY: u32 = 4;
pub const DEFAULT_RETRY_HOURS: f64 = 72.0;
/// One download (fetch and upload together) may take at most this long before it is retried.
pub const DEFAULT_TIMEOUT_S: u32 = 600;

/// The archive's settings.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    pub enabled: bool,
    pub hosts: Result<HostPolicy, String>,
    pub concurrency: u32,
    pub retry_ms: i64,
    /// How long an archived file outlives its receipt (`None`: removed with it).
    pub recording_retention_ms: Option<i64>,
    /// `ARCHIVE_BACKOFF_S`: the first retry's wait (doubling, capped at an hour). Default 30.
    pub first_backoff_s: u32,
    pub timeout_s: u32,
    pub problems: Vec<String>,
}

fn positive_f64(v: &str) -> Option<f64> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x >= 0.0)
}

impl ArchiveConfig {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> ArchiveConfig {
        let mut problems = Vec::new();
        let enabled = get("ARCHIVE_RECORDINGS")
            .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
            .unwrap_or(false);
        let hosts = HostPolicy::parse(
            &get("RECORDING_HOSTS").unwrap_or_else(|| recording_url::DEFAULT_HOSTS.to_owned()),
        );
        if let Err(e) = &hosts {
            problems.push(e.clone());
        }
        let mut num = |name: &str, default: f64| -> f64 {
            match get(name) {
                None => default,
                Some(v) if v.trim().is_empty() => default,
                Some(v) => positive_f64(&v).unwrap_or_else(|| {
                    problems.push(format!("{name} is not a valid value: {v:?}"));
                    default
                }),
            }
        };
        let concurrency =
            num("ARCHIVE_CONCURRENCY", f64::from(DEFAULT_CONCURRENCY)).clamp(1.0, 32.0) as u32;
        let retry_ms = (num("ARCHIVE_RETRY_HOURS", DEFAULT_RETRY_HOURS) * 3_600_000.0) as i64;
        let first_backoff_s = num(
            "ARCHIVE_BACKOFF_S",
            f64::from(recording_url::FIRST_BACKOFF_S),
        )
        .clamp(0.0, 3_600.0) as u32;
        let timeout_s =
            num("ARCHIVE_TIMEOUT_S", f64::from(DEFAULT_TIMEOUT_S)).clamp(1.0, 900.0) as u32;
        let recording_retention_ms = get("RECORDING_RETENTION_DAYS")
            .filter(|v| !v.trim().is_empty())
            .map(|_| (num("RECORDING_RETENTION_DAYS", 0.0) * 86_400_000.0) as i64);
        ArchiveConfig {
            enabled,
            hosts,
            concurrency,
            retry_ms,
            recording_retention_ms,
            first_backoff_s,
            timeout_s,
            problems,
        }
    }

    /// Problems for `/healthz` (only when the archive is on).
    pub fn health_problems(&self, bucket_bound: bool) -> Vec<String> {
        if !self.enabled {
            return Vec::new();
        }
        let mut p = self.problems.clone();
        if !bucket_bound {
            p.push("ARCHIVE_RECORDINGS is on but no R2 bucket is bound as RECORDINGS".to_owned());
        }
        p
    }

    /// Wait before the next attempt after `attempts` failed ones: `ARCHIVE_BACKOFF_S` doubling,
    /// capped at an hour.
    pub fn backoff_ms(&self, attempts: u32) -> i64 {
        let base = i64::from(recording_url::backoff_s(attempts));
        let scaled =
            base * i64::from(self.first_backoff_s) / i64::from(recording_url::FIRST_BACKOFF_S);
        scaled.min(i64::from(recording_url::MAX_BACKOFF_S)) * 1_000
    }
}

/// A job's status, as stored and as shown in `recording.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Archived,
    Failed,
    Gone,
    Refused,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Archived,
        Status::Failed,
        Status::Gone,
        Status::Refused,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Archived => "archived",
            Status::Failed => "failed",
            Status::Gone => "gone",
            Status::Refused => "refused",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// After a failed attempt: retry at `now + backoff`, or `failed` when that is past the window.
pub fn after_failure(
    cfg: &ArchiveConfig,
    created_at_ms: i64,
    attempts: u32,
    now_ms: i64,
) -> Option<i64> {
    let next = now_ms + cfg.backoff_ms(attempts);
    (now_ms < created_at_ms + cfg.retry_ms)
        .then_some(next.min((created_at_ms + cfg.retry_ms).max(now_ms)))
}

/// The `recording` object of a receipt.
pub fn recording_json(
    status: &str,
    size: Option<i64>,
    sha256: Option<&str>,
    archived_at: Option<&str>,
) -> String {
    let q = |v: &str| serde_json::Value::from(v).to_string();
    let mut out = format!("{{\"status\":{}", q(status));
    if let Some(s) = size {
        out.push_str(&format!(",\"size\":{s}"));
    }
    if let Some(h) = sha256 {
        out.push_str(&format!(",\"sha256\":{}", q(h)));
    }
    if let Some(a) = archived_at {
        out.push_str(&format!(",\"archived_at\":{}", q(a)));
    }
    out.push('}');
    out
}

/// Adds `"recording":{…}` to an assembled receipt (a JSON object's text).
pub fn with_recording(receipt: &str, recording: &str) -> String {
    match receipt.strip_suffix('}') {
        Some(head) => format!("{head},\"recording\":{recording}}}"),
        None => receipt.to_owned(),
    }
}

/// SHA-256 and size of the bytes that streamed through.
#[derive(Default)]
pub struct StreamHasher {
    hash: Sha256,
    size: u64,
}

impl StreamHasher {
    pub fn update(&mut self, chunk: &[u8]) {
        self.hash.update(chunk);
        self.size += chunk.len() as u64;
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn finish(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }
}

/// A satisfiable single range of a file of `size` bytes: first byte and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No header, or one this route does not take (several ranges, other units): the whole file.
    Whole,
    Part(ByteRange),
    /// 416.
    Unsatisfiable,
}

pub fn parse_range(header: Option<&str>, size: u64) -> RangeAsk {
    let Some(h) = header else {
        return RangeAsk::Whole;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if a.is_empty() {
        let Some(n) = num(b) else {
            return RangeAsk::Whole;
        };
        if n == 0 || size == 0 {
            return RangeAsk::Unsatisfiable;
        }
        let n = n.min(size);
        return RangeAsk::Part(ByteRange {
            offset: size - n,
            length: n,
        });
    }
    let Some(start) = num(a) else {
        return RangeAsk::Whole;
    };
    if start >= size {
        return RangeAsk::Unsatisfiable;
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        match num(b) {
            Some(e) if e >= start => e.min(size - 1),
            _ => return RangeAsk::Whole,
        }
    };
    RangeAsk::Part(ByteRange {
        offset: start,
        length: end - start + 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> ArchiveConfig {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ArchiveConfig::from_lookup(&move |n: &str| {
            pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn config_defaults_and_problems() {
        let c = cfg(&[]);
        assert!(!c.enabled);
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.retry_ms, 72 * 3_600_000);
        assert!(c.recording_retention_ms.is_none());
        assert!(c.health_problems(false).is_empty(), "off: no problems");
        let on = cfg(&[
            ("ARCHIVE_RECORDINGS", "true"),
            ("ARCHIVE_RETRY_HOURS", "0.5"),
        ]);
        assert_eq!(on.retry_ms, 1_800_000);
        assert_eq!(on.health_problems(false).len(), 1);
        assert!(on.health_problems(true).is_empty());
        let bad = cfg(&[
            ("ARCHIVE_RECORDINGS", "true"),
            ("RECORDING_HOSTS", "exa mple"),
        ]);
        assert_eq!(bad.health_problems(true).len(), 1);
        let bad = cfg(&[("ARCHIVE_CONCURRENCY", "x")]);
        assert_eq!(bad.problems.len(), 1);
    }

    #[test]
    fn backoff_and_window() {
        let c = cfg(&[("ARCHIVE_RETRY_HOURS", "1")]);
        assert_eq!(c.backoff_ms(1), 30_000);
        assert_eq!(c.backoff_ms(2), 60_000);
        assert_eq!(c.backoff_ms(20), 3_600_000);
        assert_eq!(after_failure(&c, 0, 1, 1_000), Some(31_000));
        assert_eq!(after_failure(&c, 0, 1, 3_600_000), None);
        let fast = cfg(&[("ARCHIVE_BACKOFF_S", "1")]);
        assert_eq!(fast.backoff_ms(1), 1_000);
        assert_eq!(fast.backoff_ms(3), 4_000);
    }

    #[test]
    fn recording_object() {
        let r = recording_json(
            "archived",
            Some(3),
            Some("ab"),
            Some("2026-01-01T00:00:00Z"),
        );
        assert_eq!(
            r,
            r#"{"status":"archived","size":3,"sha256":"ab","archived_at":"2026-01-01T00:00:00Z"}"#
        );
        assert_eq!(
            with_recording(r#"{"a":1}"#, r#"{"status":"pending"}"#),
            r#"{"a":1,"recording":{"status":"pending"}}"#
        );
    }

    #[test]
    fn hashing() {
        let mut h = StreamHasher::default();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.size(), 3);
        assert_eq!(
            h.finish(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeAsk::Whole);
        let part = |o, l| {
            RangeAsk::Part(ByteRange {
                offset: o,
                length: l,
            })
        };
        assert_eq!(parse_range(Some("bytes=0-3"), 10), part(0, 4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), part(5, 5));
        assert_eq!(parse_range(Some("bytes=-3"), 10), part(7, 3));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), part(8, 2));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=3-1"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeAsk::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeAsk::Whole);
    }
}
