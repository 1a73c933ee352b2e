//! Webhook delivery rules (Standard Webhooks, standardwebhooks.com): the signing secret, the
//! signature of one attempt, the envelope around a receipt, which answers are retried and how
//! long to wait before the next attempt. The Worker's queue consumer only does the I/O.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shortest signing key accepted, in bytes (192 bits, what Standard Webhooks libraries
/// generate). Shorter keys are reported by `/healthz` as weak and delivery stays off.
pub const MIN_SECRET_BYTES: usize = 24;

/// At most this many webhook requests run at once per queue batch.
pub const MAX_CONCURRENT_REQUESTS: usize = 6;

/// The first retry waits this long; each further retry doubles it up to [`MAX_BACKOFF_S`].
pub const FIRST_BACKOFF_S: u32 = 5;
/// The longest wait between two attempts.
pub const MAX_BACKOFF_S: u32 = 3_600;

/// A decoded `whsec_<base64>` signing secret.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>` (the prefix is optional, as in the reference libraries). The
    /// error names the problem without echoing the secret.
    pub fn parse(text: &str) -> Result<Secret, String> {
        let b64 = text.trim().strip_prefix("whsec_").unwrap_or(text.trim());
        if b64.is_empty() {
            return Err("WEBHOOK_SECRET is empty".to_owned());
        }
        let key = STANDARD
            .decode(b64)
            .map_err(|_| "WEBHOOK_SECRET is not whsec_<base64>".to_owned())?;
        if key.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "WEBHOOK_SECRET is weak: {} bytes, at least {MIN_SECRET_BYTES} needed",
                key.len()
            ));
        }
        Ok(Secret(key))
    }

    /// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, the `webhook-signature` header.
    pub fn sign(&self, id: &str, timestamp_s: i64, body: &[u8]) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            // HMAC takes keys of any length; this branch cannot be reached.
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_s.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The request body of one delivery: `{"type":T,"timestamp":received_at,"data":<receipt>}`.
/// `receipt` is the normalized receipt's JSON exactly as the pull API returns it.
pub fn envelope(message_type: &str, received_at: &str, receipt: &str) -> String {
    let mut out = String::with_capacity(receipt.len() + message_type.len() + 64);
    out.push_str(r#"{"type":"#);
    out.push_str(&json_string(message_type));
    out.push_str(r#","timestamp":"#);
    out.push_str(&json_string(received_at));
    out.push_str(r#","data":"#);
    out.push_str(receipt);
    out.push('}');
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// What one attempt's outcome means for the receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered (2xx).
    Delivered,
    /// Try again later (408, 429, 5xx, connection error, timeout).
    Retry,
    /// Not retried (any other answer): the receipt goes to the dead letters at once.
    GiveUp,
}

/// The result of one attempt as the consumer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The destination answered with this status.
    Status(u16),
    /// No answer within `WEBHOOK_TIMEOUT_MS`.
    Timeout,
    /// The connection failed.
    ConnectionError,
}

/// Standard Webhooks' retry classes.
pub fn verdict(attempt: Attempt) -> Verdict {
    match attempt {
        Attempt::Status(s) if (200..300).contains(&s) => Verdict::Delivered,
        Attempt::Status(408 | 429) | Attempt::Timeout | Attempt::ConnectionError => Verdict::Retry,
        Attempt::Status(s) if (500..600).contains(&s) => Verdict::Retry,
        Attempt::Status(_) => Verdict::GiveUp,
    }
}

/// Seconds to wait before attempt `attempt + 1`, after `attempt` failed attempts (1-based):
/// 5, 10, 20, … capped at an hour.
pub fn backoff_s(attempt: u32) -> u32 {
    let s = crate::schedule::doubling_backoff(
        u64::from(FIRST_BACKOFF_S),
        u64::from(MAX_BACKOFF_S),
        attempt,
    );
    u32::try_from(s).unwrap_or(MAX_BACKOFF_S)
}

/// What the consumer does after a failed attempt, given how many attempts were made so far and
/// the consumer's `max_retries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Enqueue again after this many seconds.
    RetryIn(u32),
    /// Record in the dead letters.
    DeadLetter,
}

/// After `attempts` attempts (the last one failed with `verdict`), retry or give up.
pub fn next_after_failure(verdict: Verdict, attempts: u32, max_retries: u32) -> Next {
    match verdict {
        Verdict::Retry if attempts <= max_retries => Next::RetryIn(backoff_s(attempts)),
        _ => Next::DeadLetter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's own test vector (its README and every reference
    // library's tests): this key, id, timestamp and body sign to this signature.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specification_vector() {
        let s = Secret::parse(SPEC_SECRET).unwrap();
        assert_eq!(s.sign(SPEC_ID, SPEC_TS, SPEC_BODY.as_bytes()), SPEC_SIG);
        // Any change of id, time or body changes the signature.
        assert_ne!(s.sign("msg_other", SPEC_TS, SPEC_BODY.as_bytes()), SPEC_SIG);
        assert_ne!(s.sign(SPEC_ID, SPEC_TS + 1, SPEC_BODY.as_bytes()), SPEC_SIG);
        assert_ne!(s.sign(SPEC_ID, SPEC_TS, b"{}"), SPEC_SIG);
    }

    #[test]
    fn secrets_weak_or_malformed_are_refused_without_echo() {
        assert!(Secret::parse("").is_err());
        assert!(Secret::parse("whsec_").is_err());
        let e = Secret::parse("whsec_not base64!").unwrap_err();
        assert!(!e.contains("not base64!"));
        // 16 bytes: weak.
        let weak = format!("whsec_{}", STANDARD.encode([7u8; 16]));
        assert!(Secret::parse(&weak).unwrap_err().contains("weak"));
        let ok = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        assert!(Secret::parse(&ok).is_ok());
        // Without the prefix too.
        assert!(Secret::parse(&STANDARD.encode([9u8; 24])).is_ok());
        assert_eq!(format!("{:?}", Secret::parse(&ok).unwrap()), "Secret(..)");
    }

    #[test]
    fn envelope_wraps_the_receipt_verbatim() {
        let r = r#"{"schema":1,"id":"VoiceReportAiccs:ab","seq":3}"#;
        let e = envelope("VoiceReportAiccs", "2026-01-02T03:04:05Z", r);
        let v: serde_json::Value = serde_json::from_str(&e).unwrap();
        assert_eq!(v["type"], "VoiceReportAiccs");
        assert_eq!(v["timestamp"], "2026-01-02T03:04:05Z");
        assert_eq!(v["data"]["seq"], 3);
        assert!(e.ends_with(&format!("\"data\":{r}}}")));
    }

    #[test]
    fn retry_classes() {
        for s in [200, 201, 204, 299] {
            assert_eq!(verdict(Attempt::Status(s)), Verdict::Delivered, "{s}");
        }
        for s in [408, 429, 500, 502, 503, 599] {
            assert_eq!(verdict(Attempt::Status(s)), Verdict::Retry, "{s}");
        }
        for s in [301, 400, 401, 403, 404, 410, 422] {
            assert_eq!(verdict(Attempt::Status(s)), Verdict::GiveUp, "{s}");
        }
        assert_eq!(verdict(Attempt::Timeout), Verdict::Retry);
        assert_eq!(verdict(Attempt::ConnectionError), Verdict::Retry);
    }

    #[test]
    fn backoff_is_exponential_first_under_10s_capped_at_an_hour() {
        assert!(backoff_s(1) <= 10);
        assert_eq!(backoff_s(2), 2 * backoff_s(1));
        assert_eq!(backoff_s(3), 4 * backoff_s(1));
        assert_eq!(backoff_s(30), 3_600);
        assert_eq!(backoff_s(u32::MAX), 3_600);
        let mut last = 0;
        for a in 1..40 {
            assert!(backoff_s(a) >= last);
            last = backoff_s(a);
        }
    }

    #[test]
    fn retries_up_to_max_then_dead_letter() {
        assert_eq!(
            next_after_failure(Verdict::Retry, 1, 3),
            Next::RetryIn(backoff_s(1))
        );
        assert_eq!(
            next_after_failure(Verdict::Retry, 3, 3),
            Next::RetryIn(backoff_s(3))
        );
        assert_eq!(next_after_failure(Verdict::Retry, 4, 3), Next::DeadLetter);
        assert_eq!(next_after_failure(Verdict::GiveUp, 1, 3), Next::DeadLetter);
    }
}
