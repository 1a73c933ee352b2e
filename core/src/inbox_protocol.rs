//! What the Worker and the inbox Durable Object say to each other: JSON bodies of internal
//! requests. The rows are built once at the edge and bound by the object as they are.

use crate::body::Reason;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// One receipt to commit. `norm` is the normalized receipt's JSON without `seq` and `raw`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub id: String,
    #[serde(rename = "type")]
    pub message_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    pub hash: String,
    pub norm: String,
    pub raw: String,
}

impl Row {
    /// The stored receipt: `norm` plus `seq` and `raw`, without parsing either.
    pub fn assemble(norm: &str, seq: i64, raw: &str) -> String {
        let head = norm.strip_suffix('}').unwrap_or(norm);
        let mut out = String::with_capacity(head.len() + raw.len() + 32);
        out.push_str(head);
        out.push_str(",\"seq\":");
        out.push_str(&seq.to_string());
        out.push_str(",\"raw\":");
        out.push_str(raw);
        out.push('}');
        out
    }
}

/// One piece kept aside with its reason. The body is text when it is UTF-8, else base64.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QuarantineItem {
    pub reason: String,
    pub address: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
}

impl QuarantineItem {
    pub fn new(reason: Reason, address: &str, message_type: Option<&str>, body: &[u8]) -> Self {
        let (raw, raw_base64) = match std::str::from_utf8(body) {
            Ok(s) => (Some(s.to_owned()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(body)),
            ),
        };
        QuarantineItem {
            reason: reason.as_str().to_owned(),
            address: address.to_owned(),
            message_type: message_type.map(str::to_owned),
            sha256: crate::identity::sha256_hex(body),
            size: body.len() as u64,
            raw,
            raw_base64,
        }
    }
}

/// One push (or one MNS batch), committed in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitRequest {
    pub stream: String,
    /// The address path the body came to (for conflicts put aside by the inbox).
    pub address: String,
    pub received_at_ms: i64,
    pub rows: Vec<Row>,
    pub quarantine: Vec<QuarantineItem>,
}

/// Bytes of one chunk of rows on the wire: the inbox binds each chunk as one SQL parameter,
/// which must stay well under SQLite's per-value limit.
pub const WIRE_CHUNK_BYTES: usize = 512 * 1024;

/// The commit as sent: rows grouped in JSON-array chunks that the inbox binds as they are.
#[derive(Debug, Serialize, Deserialize)]
pub struct CommitWire<'a> {
    pub stream: String,
    pub address: String,
    pub received_at_ms: i64,
    #[serde(borrow)]
    pub chunks: Vec<&'a serde_json::value::RawValue>,
    pub quarantine: Vec<QuarantineItem>,
}

/// The fields of a row the inbox decides with (the rest is bound from the chunk text).
#[derive(Debug, Deserialize)]
pub struct RowKey<'a> {
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub message_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub hash: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub raw: &'a serde_json::value::RawValue,
}

impl CommitRequest {
    pub fn new(stream: &str, address: &str, received_at_ms: i64) -> Self {
        CommitRequest {
            stream: stream.to_owned(),
            address: address.to_owned(),
            received_at_ms,
            rows: Vec::new(),
            quarantine: Vec::new(),
        }
    }

    /// The JSON body of `POST /commit`.
    pub fn to_wire(&self) -> String {
        let mut chunks: Vec<String> = Vec::new();
        let mut cur = String::from("[");
        for row in &self.rows {
            let text = serde_json::to_string(row).unwrap_or_default();
            if cur.len() > 1 && cur.len() + text.len() > WIRE_CHUNK_BYTES {
                cur.push(']');
                chunks.push(std::mem::replace(&mut cur, String::from("[")));
            }
            if cur.len() > 1 {
                cur.push(',');
            }
            cur.push_str(&text);
        }
        if cur.len() > 1 {
            cur.push(']');
            chunks.push(cur);
        }
        let mut out = String::with_capacity(chunks.iter().map(String::len).sum::<usize>() + 256);
        out.push_str("{\"stream\":");
        out.push_str(&serde_json::to_string(&self.stream).unwrap_or_default());
        out.push_str(",\"address\":");
        out.push_str(&serde_json::to_string(&self.address).unwrap_or_default());
        out.push_str(",\"received_at_ms\":");
        out.push_str(&self.received_at_ms.to_string());
        out.push_str(",\"chunks\":[");
        out.push_str(&chunks.join(","));
        out.push_str("],\"quarantine\":");
        out.push_str(&serde_json::to_string(&self.quarantine).unwrap_or_else(|_| "[]".into()));
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize, raw_len: usize) -> Row {
        Row {
            id: format!("T:{i}"),
            message_type: "T".into(),
            call_id: Some(i.to_string()),
            hash: "h".into(),
            norm: "{\"schema\":1}".into(),
            raw: format!("{{\"x\":\"{}\"}}", "y".repeat(raw_len)),
        }
    }

    #[test]
    fn wire_chunks_stay_bounded_and_round_trip() {
        let mut req = CommitRequest::new("s", "/icc/llm", 5);
        req.rows = (0..40).map(|i| row(i, 60_000)).collect();
        let wire = req.to_wire();
        let parsed: CommitWire = serde_json::from_str(&wire).expect("wire parses");
        assert!(parsed.chunks.len() > 1);
        let mut ids = Vec::new();
        for c in &parsed.chunks {
            assert!(c.get().len() <= WIRE_CHUNK_BYTES + 70_000);
            let rows: Vec<Row> = serde_json::from_str(c.get()).expect("chunk parses");
            let keys: Vec<RowKey> = serde_json::from_str(c.get()).expect("keys parse");
            assert_eq!(rows.len(), keys.len());
            ids.extend(rows.into_iter().map(|r| r.id));
        }
        assert_eq!(ids, (0..40).map(|i| format!("T:{i}")).collect::<Vec<_>>());
        let empty = CommitRequest::new("s", "/icc/llm", 5).to_wire();
        let parsed: CommitWire = serde_json::from_str(&empty).expect("empty parses");
        assert!(parsed.chunks.is_empty());
    }

    #[test]
    fn assemble_adds_seq_and_raw() {
        let s = Row::assemble("{\"schema\":1,\"id\":\"x\"}", 7, "{ \"a\" : 1 }");
        assert_eq!(
            s,
            "{\"schema\":1,\"id\":\"x\",\"seq\":7,\"raw\":{ \"a\" : 1 }}"
        );
    }
}

/// What the inbox did with a commit, per row in order (`stored`, `duplicate`, `conflict`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CommitResult {
    pub stored: u32,
    pub duplicate: u32,
    pub conflict: u32,
    pub quarantined: u32,
    pub head_seq: i64,
    /// Per row of the request, in order.
    pub outcomes: Vec<String>,
}

/// `POST /read`: one page of receipts (the query validated by the edge).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ReadRequest {
    pub stream: String,
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub consumer: Option<String>,
    pub limit: u32,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub wait_ms: u64,
}
