//! The spool: a body too big to plan and commit inside the ack deadline is stored as received and
//! drained later in bounded chunks. This module decides which bodies are spooled and cuts a
//! spooled body into chunks whose planning gives exactly what planning the whole body would:
//! each chunk is a JSON array of the body's own elements, byte for byte.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::ops::Range;

/// Bodies larger than this are spooled instead of planned on the push path (see the README,
/// "Big bodies", for how it was chosen).
pub const DEFAULT_THRESHOLD_BYTES: usize = 128 * 1024;

/// A drain step plans at most this many messages …
pub const CHUNK_MESSAGES: usize = 1_000;
/// … or this many bytes of elements, whichever comes first (always at least one element).
pub const CHUNK_BYTES: usize = 256 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How a spooled body is drained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// A JSON array: its elements' byte ranges in the body, in order.
    Elements(Vec<Range<usize>>),
    /// Anything else (a bare object, a scalar, not JSON): planned whole in one step, which is
    /// cheap because it is at most one message or one quarantined item.
    Whole,
}

/// Finds the elements of a spooled body without building any value.
pub fn split(body: &[u8]) -> Split {
    let start = if body.starts_with(BOM) { BOM.len() } else { 0 };
    let Some(rest) = body.get(start..) else {
        return Split::Whole;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return Split::Whole;
    };
    if !text.trim_start().starts_with('[') {
        return Split::Whole;
    }
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) else {
        return Split::Whole;
    };
    let base = text.as_ptr() as usize;
    Split::Elements(
        items
            .iter()
            .map(|r| {
                let s = r.get().as_ptr() as usize - base + start;
                s..s + r.get().len()
            })
            .collect(),
    )
}

/// The next chunk starting at element `from`: the element range to plan. Empty when done.
pub fn next_chunk(elements: &[Range<usize>], from: usize) -> Range<usize> {
    let mut end = from;
    let mut bytes = 0usize;
    while let Some(r) = elements.get(end) {
        if end > from && (end - from >= CHUNK_MESSAGES || bytes + r.len() > CHUNK_BYTES) {
            break;
        }
        bytes += r.len();
        end += 1;
    }
    from.min(end)..end
}

/// The JSON array `[e_from,…,e_to]` of the body's own element bytes.
pub fn chunk_body(body: &[u8], elements: &[Range<usize>], which: Range<usize>) -> Vec<u8> {
    let picked = elements.get(which).unwrap_or(&[]);
    let len: usize = picked.iter().map(|r| r.len() + 1).sum();
    let mut out = Vec::with_capacity(len + 2);
    out.push(b'[');
    for (i, r) in picked.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(body.get(r.clone()).unwrap_or(&[]));
    }
    out.push(b']');
    out
}

/// Spooled bodies are stored in pieces of at most this many bytes (a SQLite value in a Durable
/// Object must stay under 2 MB).
pub const PIECE_BYTES: usize = 1024 * 1024;

/// What the inbox keeps with a spooled body to plan it later exactly as the push path would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolHeader {
    /// The stream the body was pushed to.
    pub stream: String,
    /// The address path (`/icc/llm/shop`), never the query.
    pub address: String,
    /// The product (`llm`, `agent`, `bot`).
    pub product: String,
    /// The `type=` of the push, if any.
    #[serde(default)]
    pub pin: Option<String>,
    pub received_at_ms: i64,
    /// The vendor offset in seconds east of UTC at arrival.
    pub offset_s: i32,
    /// SHA-256 (hex) of the body as received.
    pub sha256: String,
}

impl SpoolHeader {
    /// The vendor offset the body arrived with.
    pub fn offset(&self) -> time::UtcOffset {
        time::UtcOffset::from_whole_seconds(self.offset_s).unwrap_or(time::UtcOffset::UTC)
    }
}

/// SHA-256 of a body, hex.
pub fn body_sha256(body: &[u8]) -> String {
    body_sha256_from_digest(&Sha256::digest(body))
}

/// The same text from a SHA-256 digest taken elsewhere (the runtime's native digest).
pub fn body_sha256_from_digest(digest: &[u8]) -> String {
    hex::encode(digest)
}

/// The `/spool` wire: the header as one JSON line, a newline, then the body as received.
pub fn to_wire(header: &SpoolHeader, body: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// The header and body of a `/spool` wire; `None` if it does not parse.
pub fn from_wire(wire: &[u8]) -> Option<(SpoolHeader, &[u8])> {
    let nl = wire.iter().position(|b| *b == b'\n')?;
    let header = serde_json::from_slice(wire.get(..nl)?).ok()?;
    Some((header, wire.get(nl + 1..)?))
}

/// Whether a body of `len` bytes is spooled rather than planned on the push path.
pub fn should_spool(len: usize, threshold: usize) -> bool {
    len > threshold
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{self, Element};

    fn raws(body: &[u8]) -> Vec<(Option<String>, Vec<u8>)> {
        body::parse(body)
            .into_iter()
            .map(|e| match e {
                Element::Message(m) => (None, m.raw.as_bytes().to_vec()),
                Element::Bad { reason, raw } => (Some(reason.as_str().to_owned()), raw.to_vec()),
            })
            .collect()
    }

    /// Planning chunk by chunk sees exactly the elements planning the whole body sees.
    fn chunks_equal_whole(body: &[u8]) {
        let whole = raws(body);
        match split(body) {
            Split::Whole => panic!("expected elements"),
            Split::Elements(els) => {
                let mut got = Vec::new();
                let mut from = 0;
                loop {
                    let c = next_chunk(&els, from);
                    if c.is_empty() {
                        break;
                    }
                    assert!(c.len() <= CHUNK_MESSAGES);
                    from = c.end;
                    got.extend(raws(&chunk_body(body, &els, c)));
                }
                assert_eq!(got, whole);
            }
        }
    }

    #[test]
    fn chunks_are_the_body_s_own_elements() {
        chunks_equal_whole(b"[]");
        chunks_equal_whole(b" [ {\"a\" : 1} , 2, \"x\", [3], {\"b\":\n[1,{}]} ] ");
        chunks_equal_whole(b"\xEF\xBB\xBF[{\"call_id\":\"1\"},{\"call_id\":\"2\"}]");
        let mut big = b"[".to_vec();
        for i in 0..5_000 {
            if i > 0 {
                big.push(b',');
            }
            big.extend_from_slice(format!("{{\"call_id\":\"r{i}\",\"caller\":\"1\"}}").as_bytes());
        }
        big.push(b']');
        chunks_equal_whole(&big);
        let Split::Elements(els) = split(&big) else {
            panic!()
        };
        assert_eq!(els.len(), 5_000);
        assert_eq!(next_chunk(&els, 0), 0..CHUNK_MESSAGES);
        assert_eq!(next_chunk(&els, 4_500), 4_500..5_000);
        assert!(next_chunk(&els, 5_000).is_empty());
    }

    #[test]
    fn byte_bound_keeps_at_least_one_element() {
        let huge = format!(
            "[{{\"a\":\"{}\"}},{{\"b\":1}}]",
            "x".repeat(CHUNK_BYTES * 2)
        );
        let Split::Elements(els) = split(huge.as_bytes()) else {
            panic!()
        };
        assert_eq!(next_chunk(&els, 0), 0..1);
        assert_eq!(next_chunk(&els, 1), 1..2);
        let medium = format!(
            "[{{\"a\":\"{}\"}},{{\"a\":\"{}\"}}]",
            "x".repeat(CHUNK_BYTES / 2 + 10),
            "y".repeat(CHUNK_BYTES / 2 + 10)
        );
        let Split::Elements(els) = split(medium.as_bytes()) else {
            panic!()
        };
        assert_eq!(next_chunk(&els, 0), 0..1);
    }

    #[test]
    fn anything_but_an_array_is_planned_whole() {
        for b in [
            &b"{\"call_id\":\"1\"}"[..],
            b"12",
            b"not json",
            b"[1,2",
            b"[\xff]",
            b"",
        ] {
            assert_eq!(split(b), Split::Whole, "{:?}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn wire_round_trips() {
        let h = SpoolHeader {
            stream: "t".into(),
            address: "/icc/llm/t".into(),
            product: "llm".into(),
            pin: None,
            received_at_ms: 5,
            offset_s: 28_800,
            sha256: body_sha256(b"[1]"),
        };
        let w = to_wire(&h, b"[1,\n2]");
        assert_eq!(from_wire(&w), Some((h, &b"[1,\n2]"[..])));
        assert_eq!(from_wire(b"no newline"), None);
        assert!(should_spool(
            DEFAULT_THRESHOLD_BYTES + 1,
            DEFAULT_THRESHOLD_BYTES
        ));
        assert!(!should_spool(
            DEFAULT_THRESHOLD_BYTES,
            DEFAULT_THRESHOLD_BYTES
        ));
    }
}
