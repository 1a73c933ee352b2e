//! The KV fast path: a byte-identical resend to the same address is answered from KV, without a
//! Durable Object call. KV only ever says "this exact body was committed at time T"; it never
//! decides alone that a new receipt is a duplicate.

use crate::deadline;
use worker::{Date, Env};

const BINDING: &str = "DEDUP";

/// The commit time remembered for `key`, if KV answers within `budget_ms`. Slow, failed or
/// over-quota reads are a miss.
pub async fn lookup(env: &Env, key: &str, budget_ms: u64) -> Option<i64> {
    let kv = env.kv(BINDING).ok()?;
    let deadline_ms = Date::now().as_millis() as i64 + budget_ms as i64;
    let value = deadline::before(deadline_ms, kv.get(key).text())
        .await?
        .ok()??;
    value.trim().parse().ok()
}

/// Remembers that the body behind `key` was committed now. Returns false when the write failed.
pub async fn remember(env: &Env, key: &str, ttl_s: u64) -> bool {
    let Ok(kv) = env.kv(BINDING) else {
        return false;
    };
    let now = Date::now().as_millis().to_string();
    match kv.put(key, now) {
        Ok(put) => put.expiration_ttl(ttl_s).execute().await.is_ok(),
        Err(_) => false,
    }
}
