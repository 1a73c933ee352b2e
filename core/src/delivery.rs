//! Delivery configuration (queue forwarding and the webhook) and the shape of a webhook retry
//! message. The queue carries each receipt as text, exactly as the pull API renders it; a
//! retry of a webhook delivery is re-sent to the same queue wrapped with its attempt count
//! (Workers queues do not expose one), and what is given up goes to the dead-letter queue in
//! the same wrapper.

use crate::webhook::Secret;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Default `WEBHOOK_TIMEOUT_MS`.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 10_000;
/// Default `WEBHOOK_MAX_RETRIES` (as the consumer's `max_retries` in wrangler.toml).
pub const DEFAULT_WEBHOOK_MAX_RETRIES: u32 = 5;

/// `FORWARD_QUEUE`, `WEBHOOK_URL`, `WEBHOOK_SECRET`, `WEBHOOK_TIMEOUT_MS`,
/// `WEBHOOK_MAX_RETRIES`, `WEBHOOK_FIRST_BACKOFF_S`.
#[derive(Debug, Clone, Default)]
pub struct DeliveryConfig {
    pub forward_queue: bool,
    /// The destination; `None` when `WEBHOOK_URL` is empty.
    pub webhook_url: Option<String>,
    /// The signing key; `None` when missing or weak (a problem is listed then).
    pub secret: Option<Secret>,
    pub timeout_ms: u64,
    pub max_retries: u32,
    /// Overrides the first backoff (tests use 1 s); later waits double it.
    pub first_backoff_s: Option<u32>,
    pub problems: Vec<String>,
}

impl DeliveryConfig {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> DeliveryConfig {
        let mut problems = Vec::new();
        let val = |k: &str| {
            get(k)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let forward_queue = match val("FORWARD_QUEUE").map(|s| s.to_ascii_lowercase()) {
            None => false,
            Some(s) if s == "true" || s == "1" => true,
            Some(s) if s == "false" || s == "0" => false,
            Some(s) => {
                problems.push(format!("FORWARD_QUEUE is not true or false: {s:?}"));
                false
            }
        };
        let webhook_url = val("WEBHOOK_URL");
        if let Some(u) = &webhook_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                problems.push("WEBHOOK_URL is not an http(s) URL".to_owned());
            }
        }
        let secret = match (&webhook_url, val("WEBHOOK_SECRET")) {
            (None, _) => None,
            (Some(_), None) => {
                problems.push("WEBHOOK_URL is set but WEBHOOK_SECRET is not".to_owned());
                None
            }
            (Some(_), Some(s)) => match Secret::parse(&s) {
                Ok(k) => Some(k),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        };
        let mut num = |k: &str, default: u64, max: u64| match val(k) {
            None => default,
            Some(s) => match s.parse::<u64>() {
                Ok(v) if (1..=max).contains(&v) => v,
                _ => {
                    problems.push(format!("{k} is not a valid value: {s:?}"));
                    default
                }
            },
        };
        let timeout_ms = num("WEBHOOK_TIMEOUT_MS", DEFAULT_WEBHOOK_TIMEOUT_MS, 300_000);
        let max_retries = num(
            "WEBHOOK_MAX_RETRIES",
            u64::from(DEFAULT_WEBHOOK_MAX_RETRIES),
            100,
        ) as u32;
        let first_backoff_s = val("WEBHOOK_FIRST_BACKOFF_S").map(|_| {
            num(
                "WEBHOOK_FIRST_BACKOFF_S",
                u64::from(crate::webhook::FIRST_BACKOFF_S),
                10,
            ) as u32
        });
        DeliveryConfig {
            forward_queue,
            webhook_url,
            secret,
            timeout_ms,
            max_retries,
            first_backoff_s,
            problems,
        }
    }

    /// The webhook is delivered only with a destination and a usable secret.
    pub fn webhook(&self) -> Option<(&str, &Secret)> {
        Some((self.webhook_url.as_deref()?, self.secret.as_ref()?))
    }

    /// Wait before the next attempt after `attempts` failed ones.
    pub fn backoff_s(&self, attempts: u32) -> u32 {
        match self.first_backoff_s {
            None => crate::webhook::backoff_s(attempts),
            Some(first) => {
                let d = attempts.saturating_sub(1).min(16);
                first
                    .saturating_mul(1 << d)
                    .min(crate::webhook::MAX_BACKOFF_S)
            }
        }
    }
}

/// A webhook delivery being retried or given up: the receipt (verbatim) and its history.
#[derive(Debug, Serialize, Deserialize)]
pub struct Attempted<'a> {
    #[serde(borrow)]
    pub receipt: &'a RawValue,
    pub attempts: u32,
    pub first_attempt_at_ms: i64,
    pub last_attempt_at_ms: i64,
    #[serde(default)]
    pub last_status: Option<u16>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Set on a redelivery of a dead letter: the inbox is told when it succeeds.
    #[serde(default)]
    pub redelivery: bool,
}

/// The fields of a receipt delivery needs.
#[derive(Debug, Deserialize)]
pub struct ReceiptKeys {
    pub stream: String,
    pub seq: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub message_type: String,
    pub received_at: String,
}

/// A queue message: a receipt as rendered, or a wrapped retry.
pub enum Incoming<'a> {
    Fresh(&'a str),
    Retry(Attempted<'a>),
}

/// Reads a queue message's text.
pub fn incoming(text: &str) -> Option<Incoming<'_>> {
    if text.starts_with(r#"{"receipt":"#) {
        serde_json::from_str(text).ok().map(Incoming::Retry)
    } else {
        Some(Incoming::Fresh(text))
    }
}

/// One dead letter as the inbox records it (the DLQ consumer's call).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeadLetter {
    pub seq: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub message_type: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub first_attempt_at_ms: i64,
    pub last_attempt_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> DeliveryConfig {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        DeliveryConfig::from_lookup(&move |k| m.get(k).cloned())
    }

    #[test]
    fn off_by_default_and_secret_required() {
        let c = cfg(&[]);
        assert!(!c.forward_queue);
        assert!(c.webhook().is_none());
        assert!(c.problems.is_empty());
        assert_eq!(c.timeout_ms, 10_000);
        let no_secret = cfg(&[("WEBHOOK_URL", "https://x.example/h")]);
        assert!(no_secret.webhook().is_none());
        assert!(no_secret.problems[0].contains("WEBHOOK_SECRET"));
        let weak = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([1u8; 8])
        );
        let w = cfg(&[
            ("WEBHOOK_URL", "https://x.example/h"),
            ("WEBHOOK_SECRET", &weak),
        ]);
        assert!(w.problems[0].contains("weak"));
        assert!(!w.problems[0].contains(&weak));
        let good = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode([1u8; 32])
        );
        let g = cfg(&[
            ("WEBHOOK_URL", "http://127.0.0.1:1/h"),
            ("WEBHOOK_SECRET", &good),
            ("FORWARD_QUEUE", "true"),
            ("WEBHOOK_FIRST_BACKOFF_S", "1"),
        ]);
        assert!(g.problems.is_empty(), "{:?}", g.problems);
        assert!(g.forward_queue && g.webhook().is_some());
        assert_eq!((g.backoff_s(1), g.backoff_s(3)), (1, 4));
        assert_eq!(cfg(&[]).backoff_s(1), crate::webhook::backoff_s(1));
        assert!(!cfg(&[("FORWARD_QUEUE", "maybe")]).problems.is_empty());
    }

    #[test]
    fn messages_fresh_or_retry() {
        assert!(matches!(
            incoming(r#"{"schema":1}"#),
            Some(Incoming::Fresh(_))
        ));
        let r = r#"{"receipt":{"a":[1, 2]},"attempts":2,"first_attempt_at_ms":1,"last_attempt_at_ms":2,"last_status":500}"#;
        match incoming(r) {
            Some(Incoming::Retry(a)) => {
                assert_eq!(a.receipt.get(), r#"{"a":[1, 2]}"#);
                assert_eq!(a.attempts, 2);
                assert!(!a.redelivery);
            }
            _ => panic!("not a retry"),
        }
    }
}

/// The webhook consumer's tallies for one stream, sent after a batch.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub delivered: u32,
    pub retried: u32,
    /// Seqs of dead letters whose redelivery succeeded (they leave the list).
    pub redelivered: Vec<i64>,
}
