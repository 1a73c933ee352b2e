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
    /// The inbox's copy of a row whose identity is stored with other content.
    pub fn is_conflict(&self) -> bool {
        self.reason == Reason::ConflictingDuplicate.as_str()
    }

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

/// Bytes of text (raw messages and normalized receipts) of one chunk on the wire: the inbox binds
/// each chunk's text as one SQL value, which must stay well under SQLite's per-value limit.
pub const WIRE_CHUNK_BYTES: usize = 512 * 1024;

/// The commit as sent: one JSON header line, `\n`, then the text section. The header lists the
/// rows (identity, type, hash) with the byte ranges of their normalized receipt and raw message
/// in the text section, grouped in chunks; the text is every `norm` and `raw` concatenated as is,
/// so nothing is escaped at the edge or unescaped in the inbox.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireHeader<'a> {
    pub stream: String,
    pub address: String,
    pub received_at_ms: i64,
    #[serde(borrow)]
    pub chunks: Vec<WireChunk<'a>>,
    pub quarantine: Vec<QuarantineItem>,
}

/// Rows whose text lies in `[start, start + len)` of the text section. `rows` is a JSON array
/// of [`RowKey`] the inbox binds as is; offsets in it are relative to `start`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireChunk<'a> {
    pub start: usize,
    pub len: usize,
    #[serde(borrow)]
    pub rows: &'a serde_json::value::RawValue,
}

/// One row in a chunk: what the inbox decides with, and where its text is.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct RowKey<'a> {
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub message_type: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    pub call_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    pub hash: std::borrow::Cow<'a, str>,
    /// Offset and length of `norm` in the chunk's text.
    pub norm_at: usize,
    pub norm_len: usize,
    /// Offset and length of `raw` in the chunk's text.
    pub raw_at: usize,
    pub raw_len: usize,
}

impl RowKey<'_> {
    /// This row's normalized receipt within its chunk's text.
    pub fn norm_in<'t>(&self, chunk_text: &'t [u8]) -> Option<&'t [u8]> {
        chunk_text.get(self.norm_at..self.norm_at.checked_add(self.norm_len)?)
    }

    /// This row's raw message within its chunk's text.
    pub fn raw_in<'t>(&self, chunk_text: &'t [u8]) -> Option<&'t [u8]> {
        chunk_text.get(self.raw_at..self.raw_at.checked_add(self.raw_len)?)
    }
}

/// A commit read back from its wire form.
#[derive(Debug)]
pub struct DecodedCommit<'a> {
    pub header: WireHeader<'a>,
    pub text: &'a [u8],
}

impl<'a> DecodedCommit<'a> {
    /// Splits and parses a wire body; `None` when it is not a commit.
    pub fn decode(wire: &'a [u8]) -> Option<DecodedCommit<'a>> {
        let nl = wire.iter().position(|b| *b == b'\n')?;
        let header = serde_json::from_slice(wire.get(..nl)?).ok()?;
        Some(DecodedCommit {
            header,
            text: wire.get(nl + 1..)?,
        })
    }

    /// The text of one chunk.
    pub fn chunk_text(&self, chunk: &WireChunk) -> Option<&'a [u8]> {
        self.text
            .get(chunk.start..chunk.start.checked_add(chunk.len)?)
    }

    /// The rows of a chunk with their text, as they were planned.
    pub fn rows(&self, chunk: &WireChunk) -> Option<Vec<Row>> {
        let text = self.chunk_text(chunk)?;
        let keys: Vec<RowKey> = serde_json::from_str(chunk.rows.get()).ok()?;
        let piece = |bytes: Option<&[u8]>| String::from_utf8(bytes?.to_vec()).ok();
        keys.into_iter()
            .map(|k| {
                let (norm, raw) = (piece(k.norm_in(text))?, piece(k.raw_in(text))?);
                Some(Row {
                    id: k.id.into_owned(),
                    message_type: k.message_type.into_owned(),
                    call_id: k.call_id.map(|c| c.into_owned()),
                    hash: k.hash.into_owned(),
                    norm,
                    raw,
                })
            })
            .collect()
    }
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

    /// The body of `POST /commit` (see [`WireHeader`]).
    pub fn to_wire(&self) -> Vec<u8> {
        let text_len: usize = self.rows.iter().map(|r| r.norm.len() + r.raw.len()).sum();
        let mut text: Vec<u8> = Vec::with_capacity(text_len);
        let mut chunks: Vec<(usize, usize, Vec<RowKey>)> = Vec::new();
        for r in &self.rows {
            let size = r.norm.len() + r.raw.len();
            let start_new = match chunks.last() {
                None => true,
                Some((start, _, keys)) => {
                    !keys.is_empty() && text.len() - start + size > WIRE_CHUNK_BYTES
                }
            };
            if start_new {
                chunks.push((text.len(), 0, Vec::new()));
            }
            let Some((start, len, keys)) = chunks.last_mut() else {
                continue;
            };
            let base = text.len() - *start;
            text.extend_from_slice(r.norm.as_bytes());
            text.extend_from_slice(r.raw.as_bytes());
            keys.push(RowKey {
                id: r.id.as_str().into(),
                message_type: r.message_type.as_str().into(),
                call_id: r.call_id.as_deref().map(Into::into),
                hash: r.hash.as_str().into(),
                norm_at: base,
                norm_len: r.norm.len(),
                raw_at: base + r.norm.len(),
                raw_len: r.raw.len(),
            });
            *len += size;
        }
        let mut out = Vec::with_capacity(text.len() + 256 + self.rows.len() * 160);
        let chunk_json: Vec<String> = chunks
            .iter()
            .map(|(start, len, keys)| {
                format!(
                    "{{\"start\":{start},\"len\":{len},\"rows\":{}}}",
                    serde_json::to_string(keys).unwrap_or_else(|_| "[]".into())
                )
            })
            .collect();
        out.extend_from_slice(b"{\"stream\":");
        out.extend_from_slice(
            serde_json::to_string(&self.stream)
                .unwrap_or_default()
                .as_bytes(),
        );
        out.extend_from_slice(b",\"address\":");
        out.extend_from_slice(
            serde_json::to_string(&self.address)
                .unwrap_or_default()
                .as_bytes(),
        );
        out.extend_from_slice(
            format!(",\"received_at_ms\":{},\"chunks\":[", self.received_at_ms).as_bytes(),
        );
        out.extend_from_slice(chunk_json.join(",").as_bytes());
        out.extend_from_slice(b"],\"quarantine\":");
        out.extend_from_slice(
            serde_json::to_string(&self.quarantine)
                .unwrap_or_else(|_| "[]".into())
                .as_bytes(),
        );
        out.extend_from_slice(b"}\n");
        out.extend_from_slice(&text);
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
            call_id: Some(format!("c\n{i}")),
            hash: "h".into(),
            norm: "{\"schema\":1,\"s\":\"é\\n\"}".into(),
            raw: format!("{{\"x\":\"{}\",\n \"q\":\"\\\"é\"}}", "y".repeat(raw_len)),
        }
    }

    #[test]
    fn wire_round_trips_in_bounded_chunks() {
        let mut req = CommitRequest::new("s", "/icc/llm", 5);
        req.rows = (0..40).map(|i| row(i, 60_000)).collect();
        req.quarantine.push(QuarantineItem::new(
            crate::body::Reason::NotJson,
            "/icc/llm",
            None,
            b"\xff\n",
        ));
        let wire = req.to_wire();
        let d = DecodedCommit::decode(&wire).expect("decodes");
        assert_eq!(d.header.stream, "s");
        assert_eq!(d.header.quarantine, req.quarantine);
        assert!(d.header.chunks.len() > 1);
        let mut rows = Vec::new();
        for c in &d.header.chunks {
            assert!(c.len <= WIRE_CHUNK_BYTES);
            rows.extend(d.rows(c).expect("rows"));
        }
        assert_eq!(rows, req.rows);
        let empty = CommitRequest::new("s", "/icc/llm", 5).to_wire();
        let d = DecodedCommit::decode(&empty).expect("empty decodes");
        assert!(d.header.chunks.is_empty());
        assert!(d.text.is_empty());
    }

    #[test]
    fn oversized_row_gets_a_chunk_of_its_own() {
        let mut req = CommitRequest::new("s", "/a", 0);
        req.rows = vec![row(0, 10), row(1, WIRE_CHUNK_BYTES + 10), row(2, 10)];
        let wire = req.to_wire();
        let d = DecodedCommit::decode(&wire).expect("decodes");
        assert_eq!(d.header.chunks.len(), 3);
        let rows: Vec<Row> = d
            .header
            .chunks
            .iter()
            .flat_map(|c| d.rows(c).expect("rows"))
            .collect();
        assert_eq!(rows, req.rows);
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

/// What the inbox did with a commit: how many rows it stored, knew (same content) or found in
/// conflict, how many pieces it newly quarantined, and the head after it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CommitResult {
    pub stored: u32,
    pub duplicate: u32,
    pub conflict: u32,
    pub quarantined: u32,
    pub head_seq: i64,
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
