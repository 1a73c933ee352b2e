//! A push, planned: body bytes in, the rows to commit and the pieces to quarantine out. This is
//! everything the push path does before it talks to the inbox, and it is pure.

use crate::body::{self, Element, Reason};
use crate::identity::{self, RawFields};
use crate::inbox_protocol::{CommitRequest, QuarantineItem, Row};
use crate::message_type::{MessageType, Product, TypePin};
use crate::normalize::{self, Context, Source};
use serde_json::{Map, Value};
use time::UtcOffset;

/// Version of parsing and normalization; part of the KV fast-path key so that a new version never
/// answers from an old version's memory.
pub const PARSER_VERSION: u32 = 2;

/// Where and when a body arrived.
#[derive(Debug, Clone)]
pub struct Arrival<'a> {
    pub product: Product,
    pub pin: TypePin,
    pub stream: &'a str,
    /// The address path, e.g. `/icc/llm/shop` (never the query: it holds the token).
    pub address: &'a str,
    pub received_at_ms: i64,
    pub offset: UtcOffset,
    pub source: Source,
    pub mns_message_id: Option<&'a str>,
}

/// One message, ready to commit.
pub fn row_for(
    t: MessageType,
    raw: &str,
    object: Map<String, Value>,
    a: &Arrival,
    received_at: &str,
) -> Row {
    let value = Value::Object(object);
    let empty = Map::new();
    let object = value.as_object().unwrap_or(&empty);
    let fields = RawFields::parse(raw);
    let components = match &fields {
        Some(fields) => identity::components(t, fields, raw),
        None => vec![identity::canonical_raw(raw)],
    };
    let id = identity::receipt_id(t, &components);
    let cx = Context {
        stream: a.stream,
        product: a.product,
        source: a.source,
        offset: a.offset,
        received_at,
        mns_message_id: a.mns_message_id,
        raw_fields: fields.as_ref(),
    };
    let n = normalize::normalize(t, id.clone(), object, &cx);
    Row {
        id,
        message_type: t.as_str().to_owned(),
        call_id: n.call_id.clone(),
        // `raw` parsed into `object` above: valid JSON.
        hash: identity::content_hash_parsed(raw),
        norm: serde_json::to_string(&n).unwrap_or_default(),
        raw: raw.to_owned(),
    }
}

/// Plans a whole push body.
pub fn plan(body: &[u8], a: &Arrival) -> CommitRequest {
    let received_at = crate::vendor_time::format_utc_ms(a.received_at_ms);
    let mut req = CommitRequest::new(a.stream, a.address, a.received_at_ms);
    for el in body::parse(body) {
        match el {
            Element::Message(m) => match a.pin.type_of(a.product, &m.object) {
                Some(t) => req.rows.push(row_for(t, m.raw, m.object, a, &received_at)),
                None => req.quarantine.push(QuarantineItem::new(
                    Reason::UnknownShape,
                    a.address,
                    None,
                    m.raw.as_bytes(),
                )),
            },
            Element::Bad { reason, raw } => req
                .quarantine
                .push(QuarantineItem::new(reason, a.address, None, raw)),
        }
    }
    req
}

/// The stub quarantined for a body over `MAX_BODY_BYTES`: its declared or read size, its first
/// 64 KiB and their SHA-256.
pub fn too_large_stub(a: &Arrival, size: u64, head: &[u8]) -> CommitRequest {
    let mut req = CommitRequest::new(a.stream, a.address, a.received_at_ms);
    let mut item = QuarantineItem::new(Reason::TooLarge, a.address, None, head);
    item.size = size;
    req.quarantine.push(item);
    req
}

/// A push body read with a limit: the whole body, or what is kept of one over the limit.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRead {
    Whole(Vec<u8>),
    /// `size` is the declared `Content-Length` or the bytes read before reading stopped;
    /// `head` the first [`TOO_LARGE_HEAD_BYTES`].
    TooLarge {
        size: u64,
        head: Vec<u8>,
    },
}

/// Reads a body chunk by chunk and stops at the limit, so a body over `MAX_BODY_BYTES` is never
/// held whole. A `Content-Length` over the limit is refused before reading more than the head.
#[derive(Debug)]
pub struct BodyReader {
    max: usize,
    declared: Option<u64>,
    declared_over: Option<u64>,
    buf: Vec<u8>,
    read: u64,
}

impl BodyReader {
    /// `content_length` is the request's header, when it has one.
    pub fn new(max: usize, content_length: Option<&str>) -> BodyReader {
        let declared = content_length.and_then(|v| v.trim().parse::<u64>().ok());
        let declared_over = declared.filter(|&n| n > max as u64);
        let capacity = match (declared_over, declared) {
            (Some(_), _) => TOO_LARGE_HEAD_BYTES,
            (None, Some(n)) => n as usize,
            (None, None) => 0,
        };
        BodyReader {
            max,
            declared,
            declared_over,
            buf: Vec::with_capacity(capacity),
            read: 0,
        }
    }

    /// Whether the request declared a `Content-Length` within the limit.
    pub fn declared_within_limit(&self) -> bool {
        self.declared.is_some() && self.declared_over.is_none()
    }

    /// Whether another chunk is wanted: false once the body is known to be over the limit and
    /// its head is kept.
    pub fn wants_more(&self) -> bool {
        match self.declared_over {
            Some(_) => self.buf.len() < TOO_LARGE_HEAD_BYTES,
            None => self.read <= self.max as u64,
        }
    }

    /// Takes the next chunk.
    pub fn push(&mut self, chunk: &[u8]) {
        self.read += chunk.len() as u64;
        let keep = if self.declared_over.is_some() || self.read > self.max as u64 {
            TOO_LARGE_HEAD_BYTES
        } else {
            self.max
        };
        let room = keep.saturating_sub(self.buf.len()).min(chunk.len());
        self.buf
            .extend_from_slice(chunk.get(..room).unwrap_or_default());
    }

    /// The body, or the stub's material when it was over the limit.
    pub fn finish(mut self) -> BodyRead {
        let size = match self.declared_over {
            Some(n) => n,
            None if self.read > self.max as u64 => self.read,
            None => return BodyRead::Whole(self.buf),
        };
        self.buf.truncate(TOO_LARGE_HEAD_BYTES);
        BodyRead::TooLarge {
            size,
            head: self.buf,
        }
    }
}

/// KV fast-path key: SHA-256 over product, app, pinned type, parser version and body bytes.
pub fn fast_path_key(product: Product, app: Option<&str>, pin: TypePin, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(fast_path_key_prefix(product, app, pin));
    h.update(body);
    fast_path_key_from_digest(&h.finalize())
}

/// The bytes hashed before the body in [`fast_path_key`] (each part length-prefixed), so that a
/// host with a native SHA-256 can hash `prefix ‖ body` itself and get the same key from
/// [`fast_path_key_from_digest`].
pub fn fast_path_key_prefix(product: Product, app: Option<&str>, pin: TypePin) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for part in [
        product.as_str(),
        app.unwrap_or(""),
        pin.as_str(),
        &PARSER_VERSION.to_string(),
    ] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

/// The KV key for a SHA-256 digest of `prefix ‖ body`.
pub fn fast_path_key_from_digest(digest: &[u8]) -> String {
    format!("push:{}", hex::encode(digest))
}

/// Maximum body bytes kept by the `too_large` stub.
pub const TOO_LARGE_HEAD_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_key_from_prefix_and_digest_is_the_same_key() {
        use sha2::{Digest, Sha256};
        let body = br#"[{"a":1}]"#;
        for app in [None, Some("shop")] {
            let pin = TypePin::parse(Product::Llm, None).unwrap();
            let mut h = Sha256::new();
            h.update(fast_path_key_prefix(Product::Llm, app, pin));
            h.update(body);
            assert_eq!(
                fast_path_key_from_digest(&h.finalize()),
                fast_path_key(Product::Llm, app, pin, body)
            );
        }
        let pin = TypePin::parse(Product::Llm, None).unwrap();
        assert_ne!(
            fast_path_key(Product::Llm, None, pin, body),
            fast_path_key(Product::Llm, Some(""), pin, b"[]")
        );
    }

    fn read(max: usize, content_length: Option<&str>, chunks: &[&[u8]]) -> (BodyRead, usize) {
        let mut r = BodyReader::new(max, content_length);
        let mut taken = 0;
        for c in chunks {
            if !r.wants_more() {
                break;
            }
            r.push(c);
            taken += 1;
        }
        (r.finish(), taken)
    }

    #[test]
    fn a_body_within_the_limit_is_whole() {
        let (b, _) = read(10, Some("10"), &[b"01234", b"56789"]);
        assert_eq!(b, BodyRead::Whole(b"0123456789".to_vec()));
        let (b, _) = read(10, None, &[b"0123", b"4567", b"89"]);
        assert_eq!(b, BodyRead::Whole(b"0123456789".to_vec()));
        assert_eq!(read(10, None, &[]).0, BodyRead::Whole(vec![]));
    }

    #[test]
    fn reading_stops_at_the_limit() {
        let big = vec![7u8; 70 * 1024];
        let chunks: Vec<&[u8]> = vec![&big; 100];
        // no Content-Length: the reader stops with the chunk that crosses the limit
        let (b, taken) = read(100 * 1024, None, &chunks);
        assert_eq!(taken, 2);
        assert_eq!(
            b,
            BodyRead::TooLarge {
                size: 140 * 1024,
                head: vec![7u8; TOO_LARGE_HEAD_BYTES]
            }
        );
        // one byte over
        let (b, _) = read(3, None, &[b"ab", b"cd", b"ef"]);
        assert_eq!(
            b,
            BodyRead::TooLarge {
                size: 4,
                head: b"abcd".to_vec()
            }
        );
    }

    #[test]
    fn a_declared_size_over_the_limit_reads_only_the_head() {
        let big = vec![1u8; 40 * 1024];
        let chunks: Vec<&[u8]> = vec![&big; 100];
        let (b, taken) = read(1000, Some("4096000"), &chunks);
        assert_eq!(taken, 2);
        assert_eq!(
            b,
            BodyRead::TooLarge {
                size: 4_096_000,
                head: vec![1u8; TOO_LARGE_HEAD_BYTES]
            }
        );
        // declared over the limit with a short actual body: still refused, size as declared
        let (b, _) = read(3, Some(" 5 "), &[b"ab"]);
        assert_eq!(
            b,
            BodyRead::TooLarge {
                size: 5,
                head: b"ab".to_vec()
            }
        );
        assert!(BodyReader::new(3, Some("3")).declared_within_limit());
        assert!(!BodyReader::new(3, Some("4")).declared_within_limit());
        assert!(!BodyReader::new(3, None).declared_within_limit());
        // a header that is not a number is ignored; the bytes decide
        assert!(!BodyReader::new(3, Some("x")).declared_within_limit());
        assert_eq!(
            read(3, Some("x"), &[b"abc"]).0,
            BodyRead::Whole(b"abc".to_vec())
        );
    }
}
