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

/// The stub quarantined for a body over `MAX_BODY_BYTES`: its size, SHA-256 and first 64 KiB.
pub fn too_large_stub(a: &Arrival, size: usize, sha256: String, head: &[u8]) -> CommitRequest {
    let mut req = CommitRequest::new(a.stream, a.address, a.received_at_ms);
    let mut item = QuarantineItem::new(Reason::TooLarge, a.address, None, head);
    item.size = size as u64;
    item.sha256 = sha256;
    req.quarantine.push(item);
    req
}

/// KV fast-path key: SHA-256 over product, app, pinned type, parser version and body bytes.
pub fn fast_path_key(product: Product, app: Option<&str>, pin: TypePin, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        product.as_str(),
        app.unwrap_or(""),
        pin.as_str(),
        &PARSER_VERSION.to_string(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.update(body);
    format!("push:{}", hex::encode(h.finalize()))
}

/// Maximum body bytes kept by the `too_large` stub.
pub const TOO_LARGE_HEAD_BYTES: usize = 64 * 1024;
