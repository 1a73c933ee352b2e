//! The fetch API's query strings, validated at the edge into an inbox request, or a 400.

use crate::address::is_consumer;
use crate::inbox_protocol::ReadRequest;
use crate::message_type::MessageType;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// A rejected query: HTTP status, error code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn bad(message: impl Into<String>) -> QueryError {
    QueryError {
        status: 400,
        code: "bad_request",
        message: message.into(),
    }
}

/// `(key, value)` pairs of a query string, percent-decoded.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A query string from pairs, percent-encoded.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn one<'a>(p: &'a [(String, String)], key: &str) -> Result<Option<&'a str>, QueryError> {
    let mut found = p.iter().filter(|(k, _)| k == key);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(bad(format!("{key} given more than once")));
    }
    Ok(first)
}

fn int(p: &[(String, String)], key: &str, min: i64, max: i64) -> Result<Option<i64>, QueryError> {
    match one(p, key)? {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(bad(format!("{key} must be an integer from {min} to {max}"))),
        },
    }
}

/// `GET /v1/streams/{stream}/receipts?after&limit&type&call_id&wait&consumer`.
pub fn receipts(stream: &str, query: &str, max_wait_s: u64) -> Result<ReadRequest, QueryError> {
    let p = pairs(query);
    for (k, _) in &p {
        if !matches!(
            k.as_str(),
            "after" | "limit" | "type" | "call_id" | "wait" | "consumer"
        ) {
            return Err(bad(format!("unknown parameter {k:?}")));
        }
    }
    let after = int(&p, "after", 0, i64::MAX)?;
    let consumer = one(&p, "consumer")?.map(str::to_owned);
    if let Some(c) = &consumer {
        if after.is_some() {
            return Err(bad("give either after or consumer, not both"));
        }
        if !is_consumer(c) {
            return Err(bad("consumer names are 1-64 of [A-Za-z0-9_.-]"));
        }
    }
    let limit = int(&p, "limit", 1, i64::from(MAX_LIMIT))?.unwrap_or(i64::from(DEFAULT_LIMIT));
    let mut types = Vec::new();
    if let Some(list) = one(&p, "type")? {
        for t in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let mt = MessageType::from_name(t).ok_or_else(|| bad(format!("unknown type {t:?}")))?;
            types.push(mt.as_str().to_owned());
        }
    }
    let call_id = one(&p, "call_id")?
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    // wait above MAX_WAIT_S is capped rather than refused: the reader still gets its answer.
    let wait = int(&p, "wait", 0, 3600)?.unwrap_or(0) as u64;
    Ok(ReadRequest {
        stream: stream.to_owned(),
        after,
        consumer,
        limit: limit as u32,
        types,
        call_id,
        wait_ms: wait.min(max_wait_s) * 1000,
    })
}

/// `GET /v1/streams/{stream}/quarantine?after&limit` → (after, limit).
pub fn quarantine(query: &str) -> Result<(i64, u32), QueryError> {
    let p = pairs(query);
    if let Some((k, _)) = p.iter().find(|(k, _)| k != "after" && k != "limit") {
        return Err(bad(format!("unknown parameter {k:?}")));
    }
    let after = int(&p, "after", 0, i64::MAX)?.unwrap_or(0);
    let limit = int(&p, "limit", 1, i64::from(MAX_LIMIT))?.unwrap_or(i64::from(DEFAULT_LIMIT));
    Ok((after, limit as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let r = receipts("s", "", 20).expect("ok");
        assert_eq!((r.after, r.limit, r.wait_ms), (None, 100, 0));
        let r = receipts(
            "s",
            "?after=5&limit=1000&type=LlmSmartCallReport,VoiceReport&call_id=a%5Eb&wait=99",
            20,
        )
        .expect("ok");
        assert_eq!(r.after, Some(5));
        assert_eq!(r.limit, 1000);
        assert_eq!(r.types, vec!["LlmSmartCallReport", "VoiceReportAiccs"]);
        assert_eq!(r.call_id.as_deref(), Some("a^b"));
        assert_eq!(r.wait_ms, 20_000);
    }

    #[test]
    fn rejections() {
        for q in [
            "limit=0",
            "limit=1001",
            "after=-1",
            "after=x",
            "type=Nope",
            "after=1&consumer=c",
            "consumer=bad%20name",
            "after=1&after=2",
            "foo=1",
            "wait=-1",
        ] {
            let e = receipts("s", q, 20).expect_err(q);
            assert_eq!((e.status, e.code), (400, "bad_request"), "{q}");
        }
        assert!(quarantine("after=1&limit=5").is_ok());
        assert!(quarantine("limit=5000").is_err());
    }
}
