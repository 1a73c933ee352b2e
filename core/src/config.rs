//! Configuration from `wrangler.toml` vars and secrets, read through a lookup function so the
//! rules are testable without a Workers environment. Invalid values are problems: the routes
//! they concern fail closed and `/healthz` lists them (never echoing a secret).

use crate::address::is_app;
use crate::auth::TokenSet;
use crate::mns::{parse_mns_queues, MnsEndpoints, QueueBinding};
use crate::vendor_time::parse_offset;
use time::UtcOffset;

#[derive(Debug, Clone)]
pub struct Config {
    pub push_tokens: Result<TokenSet, String>,
    pub fetch_tokens: Result<TokenSet, String>,
    pub ack_deadline_ms: u64,
    pub max_body_bytes: usize,
    pub retention_ms: u64,
    pub max_wait_s: u64,
    pub kv_budget_ms: u64,
    pub kv_fast_path: bool,
    pub vendor_offset: UtcOffset,
    pub apps: Option<Vec<String>>,
    pub location_hint: String,
    /// Problems with vars (secrets report theirs through the token results).
    pub var_problems: Vec<String>,
    /// MNS mode; its problems are reported without closing the push or fetch routes.
    pub mns: MnsConfig,
    /// Queue forwarding and the webhook; its problems do not close the push or fetch routes.
    pub delivery: crate::delivery::DeliveryConfig,
    /// Bodies over this many bytes are spooled (`SPOOL_THRESHOLD_BYTES`).
    pub spool_threshold_bytes: usize,
}

/// MNS consumption mode: off when `MNS_QUEUES` is empty.
#[derive(Debug, Clone, Default)]
pub struct MnsConfig {
    pub queues: Vec<QueueBinding>,
    pub endpoints: MnsEndpoints,
    pub access_key_id: Option<String>,
    pub access_key_secret: Option<String>,
    /// Long-poll seconds of one BatchReceiveMessage (0–30).
    pub wait_s: u32,
    pub problems: Vec<String>,
}

pub const DEFAULT_MNS_WAIT_S: u32 = 10;

impl MnsConfig {
    fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> MnsConfig {
        let mut problems = Vec::new();
        let queues = match parse_mns_queues(&get("MNS_QUEUES").unwrap_or_default()) {
            Ok(q) => q,
            Err(e) => {
                problems.push(format!("MNS_QUEUES: {e}"));
                Vec::new()
            }
        };
        let endpoints = MnsEndpoints::with_overrides(
            get("MNS_ENDPOINT").as_deref(),
            get("DYBASEAPI_ENDPOINT").as_deref(),
        )
        .unwrap_or_else(|e| {
            problems.push(e.to_string());
            MnsEndpoints::default()
        });
        let secret = |name: &str| {
            get(name)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let access_key_id = secret("ALIBABA_ACCESS_KEY_ID");
        let access_key_secret = secret("ALIBABA_ACCESS_KEY_SECRET");
        if !queues.is_empty() && (access_key_id.is_none() || access_key_secret.is_none()) {
            problems.push(
                "MNS_QUEUES is set but ALIBABA_ACCESS_KEY_ID / ALIBABA_ACCESS_KEY_SECRET are not"
                    .to_owned(),
            );
        }
        let wait_s = num(
            get,
            "MNS_WAIT_S",
            DEFAULT_MNS_WAIT_S,
            |v| *v <= 30,
            &mut problems,
        );
        MnsConfig {
            queues,
            endpoints,
            access_key_id,
            access_key_secret,
            wait_s,
            problems,
        }
    }

    /// True when queues are configured with credentials.
    pub fn enabled(&self) -> bool {
        !self.queues.is_empty() && self.access_key_id.is_some() && self.access_key_secret.is_some()
    }
}

pub const DEFAULT_ACK_DEADLINE_MS: u64 = 500;
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub const DEFAULT_RETENTION_DAYS: f64 = 7.0;
pub const DEFAULT_MAX_WAIT_S: u64 = 20;
pub const DEFAULT_KV_BUDGET_MS: u64 = 25;
const DAY_MS: f64 = 86_400_000.0;

fn num<T: std::str::FromStr>(
    get: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    ok: impl Fn(&T) -> bool,
    problems: &mut Vec<String>,
) -> T {
    match get(name)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    {
        None => default,
        Some(s) => match s.parse::<T>() {
            Ok(v) if ok(&v) => v,
            _ => {
                problems.push(format!("{name} is not a valid value: {s:?}"));
                default
            }
        },
    }
}

impl Config {
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Config {
        let mut p = Vec::new();
        let ack_deadline_ms = num(
            get,
            "ACK_DEADLINE_MS",
            DEFAULT_ACK_DEADLINE_MS,
            |v| (1..=650).contains(v),
            &mut p,
        );
        let max_body_bytes = num(
            get,
            "MAX_BODY_BYTES",
            DEFAULT_MAX_BODY_BYTES,
            |v| (1..=100 * 1024 * 1024).contains(v),
            &mut p,
        );
        let days = num(
            get,
            "RETENTION_DAYS",
            DEFAULT_RETENTION_DAYS,
            |v| v.is_finite() && *v > 0.0 && *v <= 3650.0,
            &mut p,
        );
        let max_wait_s = num(get, "MAX_WAIT_S", DEFAULT_MAX_WAIT_S, |v| *v <= 30, &mut p);
        let kv_budget_ms = num(
            get,
            "KV_BUDGET_MS",
            DEFAULT_KV_BUDGET_MS,
            |v| *v <= 1000,
            &mut p,
        );
        let kv_fast_path = match get("KV_FAST_PATH").map(|s| s.trim().to_ascii_lowercase()) {
            None => true,
            Some(s) if s.is_empty() || s == "true" || s == "1" => true,
            Some(s) if s == "false" || s == "0" => false,
            Some(s) => {
                p.push(format!("KV_FAST_PATH is not true or false: {s:?}"));
                true
            }
        };
        let vendor_offset = match get("VENDOR_UTC_OFFSET").filter(|s| !s.trim().is_empty()) {
            None => UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC),
            Some(s) => parse_offset(&s).unwrap_or_else(|| {
                p.push(format!(
                    "VENDOR_UTC_OFFSET is not an offset like +08:00: {s:?}"
                ));
                UtcOffset::UTC
            }),
        };
        let apps = get("APPS").filter(|s| !s.trim().is_empty()).map(|s| {
            let list: Vec<String> = s
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect();
            for a in list.iter().filter(|a| !is_app(a)) {
                p.push(format!("APPS lists an invalid app name: {a:?}"));
            }
            list
        });
        let spool_threshold_bytes = num(
            get,
            "SPOOL_THRESHOLD_BYTES",
            crate::spool::DEFAULT_THRESHOLD_BYTES,
            |v| (1..=100 * 1024 * 1024).contains(v),
            &mut p,
        );
        let location_hint = get("DO_LOCATION_HINT")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "apac".to_owned());
        Config {
            push_tokens: TokenSet::parse("PUSH_TOKEN", get("PUSH_TOKEN").as_deref()),
            fetch_tokens: TokenSet::parse("FETCH_TOKEN", get("FETCH_TOKEN").as_deref()),
            ack_deadline_ms,
            max_body_bytes,
            retention_ms: (days * DAY_MS) as u64,
            max_wait_s,
            kv_budget_ms,
            kv_fast_path,
            vendor_offset,
            apps,
            location_hint,
            var_problems: p,
            mns: MnsConfig::from_lookup(get),
            delivery: crate::delivery::DeliveryConfig::from_lookup(get),
            spool_threshold_bytes,
        }
    }

    /// Every problem, for `/healthz`.
    pub fn problems(&self) -> Vec<String> {
        let mut all = self.var_problems.clone();
        all.extend(self.mns.problems.iter().cloned());
        all.extend(self.delivery.problems.iter().cloned());
        for r in [&self.push_tokens, &self.fetch_tokens] {
            if let Err(e) = r {
                all.push(e.clone());
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(&move |k| m.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]);
        assert_eq!(c.ack_deadline_ms, 500);
        assert_eq!(c.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(c.retention_ms, 7 * 86_400_000);
        assert_eq!(c.max_wait_s, 20);
        assert!(c.kv_fast_path);
        assert_eq!(c.vendor_offset.whole_hours(), 8);
        assert_eq!(c.location_hint, "apac");
        assert_eq!(c.problems().len(), 2, "both secrets missing");
    }

    #[test]
    fn fractional_retention_and_bad_values() {
        let c = cfg(&[
            ("RETENTION_DAYS", "0.0001"),
            ("ACK_DEADLINE_MS", "abc"),
            ("KV_FAST_PATH", "false"),
        ]);
        assert_eq!(c.retention_ms, 8640);
        assert!(!c.kv_fast_path);
        assert!(c.var_problems.iter().any(|p| p.contains("ACK_DEADLINE_MS")));
        let c = cfg(&[
            ("APPS", "shop, crm ,bad name"),
            ("VENDOR_UTC_OFFSET", "+05:30"),
        ]);
        assert_eq!(c.apps.as_deref().map(<[String]>::len), Some(3));
        assert!(c.var_problems.iter().any(|p| p.contains("bad name")));
        assert_eq!(c.vendor_offset.whole_minutes(), 330);
    }

    #[test]
    fn mns_mode() {
        let off = cfg(&[]);
        assert!(!off.mns.enabled());
        assert!(off.mns.problems.is_empty());
        let no_keys = cfg(&[(
            "MNS_QUEUES",
            "VoiceReportAiccs:Alicom-Queue-1-VoiceReportAiccs:shop",
        )]);
        assert!(!no_keys.mns.enabled());
        assert!(no_keys
            .problems()
            .iter()
            .any(|p| p.contains("ALIBABA_ACCESS_KEY_ID")));
        assert!(
            no_keys.var_problems.is_empty(),
            "MNS problems never close the push route"
        );
        let on = cfg(&[
            (
                "MNS_QUEUES",
                "VoiceReportAiccs:q1:shop, LlmSmartCallReport:q2",
            ),
            ("ALIBABA_ACCESS_KEY_ID", "id"),
            ("ALIBABA_ACCESS_KEY_SECRET", "secret"),
            ("MNS_ENDPOINT", "http://127.0.0.1:9999"),
        ]);
        assert!(on.mns.enabled());
        assert_eq!(on.mns.queues.len(), 2);
        assert_eq!(on.mns.endpoints.mns, "http://127.0.0.1:9999");
        assert_eq!(on.mns.wait_s, 10);
        let bad = cfg(&[("MNS_QUEUES", "Nope:q")]);
        assert!(bad.problems().iter().any(|p| p.starts_with("MNS_QUEUES")));
    }
}
