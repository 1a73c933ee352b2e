//! The fetch API's query strings, validated at the edge into an inbox request, or a 400.

use crate::address::{is_consumer, is_stream};
use crate::error::ApiError;
use crate::inbox_protocol::ReadRequest;
use crate::message_type::MessageType;

pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad(message)
}

/// The pairs of `query`, refused when a key is not one of `known`.
fn only(query: &str, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let p = pairs(query);
    if let Some((k, _)) = p.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(bad(format!("unknown parameter {k:?}")));
    }
    Ok(p)
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

fn one<'a>(p: &'a [(String, String)], key: &str) -> Result<Option<&'a str>, ApiError> {
    let mut found = p.iter().filter(|(k, _)| k == key);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(bad(format!("{key} given more than once")));
    }
    Ok(first)
}

fn int(p: &[(String, String)], key: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    match one(p, key)? {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(bad(format!("{key} must be an integer from {min} to {max}"))),
        },
    }
}

/// `GET /v1/streams/{stream}/receipts?after&limit&type&call_id&wait&consumer`.
pub fn receipts(stream: &str, query: &str, max_wait_s: u64) -> Result<ReadRequest, ApiError> {
    let p = only(
        query,
        &["after", "limit", "type", "call_id", "wait", "consumer"],
    )?;
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
pub fn quarantine(query: &str) -> Result<(i64, u32), ApiError> {
    let p = only(query, &["after", "limit"])?;
    let after = int(&p, "after", 0, i64::MAX)?.unwrap_or(0);
    let limit = int(&p, "limit", 1, i64::from(MAX_LIMIT))?.unwrap_or(i64::from(DEFAULT_LIMIT));
    Ok((after, limit as u32))
}

/// `POST /v1/streams/{stream}/dead-letters/redeliver[?seq=<n>]` → the one seq, or all.
pub fn redeliver(query: &str) -> Result<Option<i64>, ApiError> {
    let p = only(query, &["seq"])?;
    int(&p, "seq", 1, i64::MAX)
}

/// `GET /v1/streams?after=<name>` and `GET /v1/stats?after=<name>` → the stream to list after
/// (`""` for the first page).
pub fn stream_page(query: &str) -> Result<String, ApiError> {
    let p = only(query, &["after"])?;
    match one(&p, "after")? {
        None | Some("") => Ok(String::new()),
        Some(s) if is_stream(s) => Ok(s.to_owned()),
        Some(_) => Err(bad("after must be a stream name")),
    }
}

/// Routes that take no parameters (`stats`, `consumers/{name}`): any parameter is a 400.
pub fn no_parameters(query: &str) -> Result<(), ApiError> {
    only(query, &[]).map(|_| ())
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
            assert_eq!((e.status(), e.code()), (400, "bad_request"), "{q}");
        }
        assert!(quarantine("after=1&limit=5").is_ok());
        for q in ["limit=5000", "after=1&after=2", "foo=1", "wait=1"] {
            assert_eq!(quarantine(q).map_err(|e| e.status()), Err(400), "{q}");
        }
    }

    #[test]
    fn stream_pages_and_parameterless_routes() {
        assert_eq!(stream_page(""), Ok(String::new()));
        assert_eq!(stream_page("after="), Ok(String::new()));
        assert_eq!(stream_page("after=shop1"), Ok("shop1".to_owned()));
        for q in [
            "after=a&after=b",
            "after=bad%20name",
            "limit=5",
            "after=a&x=1",
        ] {
            assert_eq!(stream_page(q).map_err(|e| e.status()), Err(400), "{q}");
        }
        assert_eq!(no_parameters(""), Ok(()));
        assert_eq!(no_parameters("?"), Ok(()));
        assert_eq!(
            no_parameters("after=1").map_err(|e| e.code()),
            Err("bad_request")
        );
    }
}
