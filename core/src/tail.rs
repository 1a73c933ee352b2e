//! The live tail (`GET /v1/streams/{stream}/tail`, a WebSocket): how a browser authenticates
//! without a token in any URL, the frames, and the lag rule.
//!
//! Browsers cannot set headers on a WebSocket, so the page offers two subprotocols:
//! [`PROTOCOL`] and `bearer.<base64url(token)>`. The server answers with [`PROTOCOL`] only (the
//! token is never echoed). Clients that can set headers use `Authorization: Bearer` instead.

use crate::error::ApiError;
use crate::fetch_query::{self, encode, pairs};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The subprotocol the tail speaks; the handshake answer selects it.
pub const PROTOCOL: &str = "icc-tail.v1";

/// A client more than this many matching receipts behind is told to resume and is closed.
pub const MAX_LAG: i64 = 1_000;

/// The `sent_through` of a socket being closed (it is sent nothing more): the largest integer a
/// socket attachment (a JavaScript number) holds exactly.
pub const CLOSING: i64 = (1 << 53) - 1;

/// Replay sends stored receipts in pages of at most this many.
pub const REPLAY_PAGE: u32 = 100;

/// The token carried in `Sec-WebSocket-Protocol`, if any (`bearer.<base64url>`).
pub fn token_from_protocols(header: Option<&str>) -> Option<String> {
    let header = header?;
    header.split(',').map(str::trim).find_map(|p| {
        let b64 = p.strip_prefix("bearer.")?;
        let bytes = URL_SAFE_NO_PAD.decode(b64.trim_end_matches('=')).ok()?;
        String::from_utf8(bytes).ok()
    })
}

/// Whether the client offered [`PROTOCOL`] (then the answer must select it).
pub fn offers_protocol(header: Option<&str>) -> bool {
    header.is_some_and(|h| h.split(',').any(|p| p.trim() == PROTOCOL))
}

/// `{"receipt":<receipt>}`: one stored receipt, exactly as the pull API renders it.
pub fn receipt_frame(receipt: &str) -> String {
    let mut f = String::with_capacity(receipt.len() + 12);
    f.push_str(r#"{"receipt":"#);
    f.push_str(receipt);
    f.push('}');
    f
}

/// `{"lagged":true,"resume_after":n}`: the client fell behind; it reconnects with `after=n`.
pub fn lagged_frame(resume_after: i64) -> String {
    format!(r#"{{"lagged":true,"resume_after":{resume_after}}}"#)
}

/// Whether a client whose last sent seq is `sent_through` has fallen too far behind a stream
/// whose head is `head_seq`.
pub fn is_lagging(sent_through: i64, head_seq: i64) -> bool {
    head_seq.saturating_sub(sent_through) > MAX_LAG
}

/// What a tail asked for, validated at the edge: where to start (`None`: at the head, live
/// only) and which types (empty: all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailQuery {
    pub after: Option<i64>,
    pub types: Vec<String>,
}

impl TailQuery {
    /// `?after=<seq>&type=<T>[,…]`; any other parameter, a bad `after` or an unknown type is a 400.
    pub fn parse(query: &str) -> Result<TailQuery, ApiError> {
        if let Some((k, _)) = pairs(query)
            .iter()
            .find(|(k, _)| k != "after" && k != "type")
        {
            return Err(ApiError::bad(format!("unknown parameter {k:?}")));
        }
        let read = fetch_query::receipts("tail", query, 0)?;
        Ok(TailQuery {
            after: read.after,
            types: read.types,
        })
    }

    /// The query as the inbox's internal route carries it.
    pub fn to_query(&self) -> String {
        let after = self.after.map(|a| a.to_string());
        let types = self.types.join(",");
        let mut p: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &after {
            p.push(("after", a));
        }
        if !types.is_empty() {
            p.push(("type", &types));
        }
        encode(&p)
    }
}

/// One socket's state, kept in its attachment so it survives hibernation: the last seq it was
/// sent (or skipped by its filter) and its type filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailState {
    pub sent_through: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
}

impl TailState {
    /// Whether a receipt of `message_type` goes to this socket.
    pub fn wants(&self, message_type: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == message_type)
    }
}

/// The close code to answer a client's close with: its own, unless it is one that must not be
/// sent on the wire (1005, 1006, 1015, or outside the ranges a peer may use), then 1000.
pub fn close_reply_code(code: usize) -> u16 {
    match code {
        1000..=1003 | 1007..=1014 | 3000..=4999 => code as u16,
        _ => 1000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_state() {
        let q = TailQuery::parse("after=5&type=LlmSmartCallReport").unwrap();
        assert_eq!(q.after, Some(5));
        assert_eq!(q.types, vec!["LlmSmartCallReport"]);
        assert_eq!(TailQuery::parse(&q.to_query()).unwrap(), q);
        let all = TailQuery::parse("").unwrap();
        assert_eq!(all.after, None);
        assert!(all.types.is_empty());
        assert_eq!(all.to_query(), "");
        assert!(TailQuery::parse("limit=5").is_err());
        assert!(TailQuery::parse("after=-1").is_err());
        assert!(TailQuery::parse("type=Nope").is_err());
        let s = TailState {
            sent_through: 3,
            types: vec!["A".into()],
        };
        assert!(s.wants("A") && !s.wants("B"));
        assert!(TailState {
            sent_through: 0,
            types: vec![]
        }
        .wants("B"));
        assert_eq!(close_reply_code(1000), 1000);
        assert_eq!(close_reply_code(4001), 4001);
        assert_eq!(close_reply_code(1005), 1000);
        assert_eq!(close_reply_code(1006), 1000);
        assert_eq!(close_reply_code(0), 1000);
    }

    #[test]
    fn token_travels_as_a_subprotocol() {
        let token = "fetch+TOKEN/with=odd chars_0123456789abcdef";
        let b64 = URL_SAFE_NO_PAD.encode(token);
        let header = format!("{PROTOCOL}, bearer.{b64}");
        assert_eq!(token_from_protocols(Some(&header)).as_deref(), Some(token));
        assert!(offers_protocol(Some(&header)));
        assert_eq!(token_from_protocols(Some(PROTOCOL)), None);
        assert_eq!(token_from_protocols(None), None);
        assert_eq!(token_from_protocols(Some("bearer.%%%")), None);
        assert!(!offers_protocol(Some("other")));
        assert!(!offers_protocol(None));
        // Subprotocol values must be HTTP tokens: base64url without padding is.
        assert!(b64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn frames_and_lag() {
        assert_eq!(receipt_frame(r#"{"seq":1}"#), r#"{"receipt":{"seq":1}}"#);
        let v: serde_json::Value = serde_json::from_str(&lagged_frame(42)).unwrap();
        assert_eq!(v["lagged"], true);
        assert_eq!(v["resume_after"], 42);
        assert!(!is_lagging(0, MAX_LAG));
        assert!(is_lagging(0, MAX_LAG + 1));
        assert!(!is_lagging(5_000, 5_000));
    }
}
