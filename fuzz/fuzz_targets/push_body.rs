//! Fuzz target: push body parsing, type inference, normalization, identity and the commit wire.
//!
//! Input: one selector byte, then the body bytes exactly as ICC would POST them.
//! The selector picks the product (llm / agent / bot), the type pin (inference, `LlmSmartCall`,
//! or each exact type of the product) and the vendor UTC offset.
//!
//! `icc_core::push::plan` must never panic, and what it returns must satisfy every invariant
//! below; a violated invariant panics so that libFuzzer records the input as a crash.
//! Every crash found so far is a native test in core/tests/fuzz_regressions.rs.

#![no_main]

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use icc_core::body::MAX_MESSAGE_BYTES;
use icc_core::inbox_protocol::{
    CommitRequest, DecodedCommit, QuarantineItem, Row, RowKey, WIRE_CHUNK_BYTES,
};
use icc_core::message_type::{MessageType, Product, TypePin};
use icc_core::normalize::Source;
use icc_core::push::{plan, Arrival};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

const BOM: &[u8] = b"\xEF\xBB\xBF";
const STREAM: &str = "default";
/// 2026-01-01T00:00:00.123Z
const RECEIVED_AT_MS: i64 = 1_767_225_600_123;
const RECEIVED_AT: &str = "2026-01-01T00:00:00.123Z";

/// Vendor offsets a deployment may configure (`VENDOR_UTC_OFFSET`), including the extremes.
const OFFSETS: [(i8, i8); 8] = [
    (8, 0),
    (0, 0),
    (-5, -30),
    (14, 0),
    (-12, 0),
    (5, 45),
    (23, 59),
    (-23, -59),
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let (product, pin, offset) = select(sel);
    let address = format!("/icc/{}", product.as_str());
    let arrival = Arrival {
        product,
        pin,
        stream: STREAM,
        address: &address,
        received_at_ms: RECEIVED_AT_MS,
        offset,
        source: Source::Push,
        mns_message_id: None,
    };
    check(body, &arrival);
});

/// Selector byte → (product, pin, offset). Pins are built through `TypePin::parse`, the way the
/// handler builds them from `?type=`.
fn select(sel: u8) -> (Product, TypePin, UtcOffset) {
    let product = Product::ALL[usize::from(sel % 3)];
    let mut names: Vec<Option<&str>> = vec![None];
    if product == Product::Llm {
        names.push(Some("LlmSmartCall"));
    }
    names.extend(product.types().iter().map(|t| Some(t.as_str())));
    let name = names.get(usize::from(sel / 3 % 5)).copied().unwrap_or(None);
    let pin = TypePin::parse(product, name).expect("a product's own type is a valid pin");
    let (h, m) = OFFSETS[usize::from(sel / 15) % OFFSETS.len()];
    let offset = UtcOffset::from_hms(h, m, 0).expect("valid offset");
    (product, pin, offset)
}

/// What one element of the body must become.
#[derive(Debug)]
enum Expect<'a> {
    /// A row of this type whose `raw` is exactly this text.
    Row(MessageType, &'a str),
    /// A quarantined item with this reason holding exactly these bytes.
    Bad(&'static str, &'a [u8]),
}

/// The documented parsing contract, restated independently of `body::parse`:
/// UTF-8 (after an optional BOM) holding one JSON value; an array is split into its elements, an
/// object is one element, anything else is one item holding the whole body.
fn expected<'a>(body: &'a [u8], a: &Arrival) -> Vec<Expect<'a>> {
    let unbommed = body.strip_prefix(BOM).unwrap_or(body);
    let whole = |reason| vec![Expect::Bad(reason, body)];
    let Ok(text) = std::str::from_utf8(unbommed) else {
        return whole("not_json");
    };
    if serde_json::from_str::<IgnoredAny>(text).is_err() {
        return whole("not_json");
    }
    match text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .as_bytes()
        .first()
    {
        Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => items.into_iter().map(|r| element(r.get(), a)).collect(),
            Err(_) => whole("not_json"),
        },
        Some(b'{') => {
            let top: &RawValue = serde_json::from_str(text).expect("parsed above");
            vec![element(top.get(), a)]
        }
        _ => whole("not_object"),
    }
}

fn element<'a>(raw: &'a str, a: &Arrival) -> Expect<'a> {
    if !raw.starts_with('{') {
        return Expect::Bad("not_object", raw.as_bytes());
    }
    if raw.len() > MAX_MESSAGE_BYTES {
        return Expect::Bad("too_large", raw.as_bytes());
    }
    let Ok(object) = serde_json::from_str::<Map<String, Value>>(raw) else {
        return Expect::Bad("not_json", raw.as_bytes());
    };
    match a.pin.type_of(a.product, &object) {
        None => Expect::Bad("unknown_shape", raw.as_bytes()),
        Some(t) => {
            match a.pin {
                TypePin::Infer => {
                    assert_eq!(t.product(), a.product, "inferred type of another product")
                }
                TypePin::Exact(p) => assert_eq!(t, p, "pinned type not used"),
                TypePin::LlmSmartCall => assert_eq!(t.product(), Product::Llm),
            }
            Expect::Row(t, raw)
        }
    }
}

fn check(body: &[u8], a: &Arrival) {
    let req = plan(body, a);
    assert_eq!(req.stream, a.stream);
    assert_eq!(req.address, a.address);
    assert_eq!(req.received_at_ms, a.received_at_ms);

    // Every element is accounted for, exactly once, in order, with its exact bytes.
    let expect = expected(body, a);
    assert_eq!(
        req.rows.len() + req.quarantine.len(),
        expect.len(),
        "rows {} + quarantine {} != elements {}",
        req.rows.len(),
        req.quarantine.len(),
        expect.len()
    );
    let (mut rows, mut quarantine) = (req.rows.iter(), req.quarantine.iter());
    for (i, e) in expect.iter().enumerate() {
        match *e {
            Expect::Row(t, raw) => {
                let row = rows
                    .next()
                    .unwrap_or_else(|| panic!("element {i}: no row for {e:?}"));
                assert_eq!(
                    row.raw, raw,
                    "element {i}: row raw is not the element's exact text"
                );
                assert_eq!(row.message_type, t.as_str(), "element {i}: row type");
                check_row(row, t, a);
            }
            Expect::Bad(reason, bytes) => {
                let q = quarantine
                    .next()
                    .unwrap_or_else(|| panic!("element {i}: no quarantine item for {e:?}"));
                assert_eq!(q.reason, reason, "element {i}: quarantine reason");
                check_quarantine(q, bytes, a);
            }
        }
    }
    assert!(rows.next().is_none() && quarantine.next().is_none());

    check_wire(&req);

    // Identity and content hash ignore whitespace and key order ("the same content, whatever
    // key order or whitespace, is a duplicate").
    for row in &req.rows {
        let compact = minify(&row.raw);
        same_identity(row, &compact, a, "compact re-serialization");
        if let Some(reordered) = reverse_top_level_keys(&row.raw) {
            same_identity(row, &reordered, a, "top-level keys reversed");
        }
    }
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

const TIME_FIELDS: [&str; 5] = [
    "originated_at",
    "rang_at",
    "started_at",
    "ended_at",
    "status_at",
];
const TEXT_FIELDS: [&str; 13] = [
    "call_id",
    "out_id",
    "task_id",
    "batch_id",
    "detail_id",
    "status_code",
    "status",
    "status_msg",
    "caller",
    "callee",
    "recording_url",
    "intent",
    "transcript",
];

fn check_row(row: &Row, t: MessageType, a: &Arrival) {
    // id = `<type>:<32 hex>`, hash = 32 hex.
    let (prefix, hex) = row.id.split_once(':').expect("id has a colon");
    assert_eq!(prefix, t.as_str(), "id prefix");
    assert!(is_hex32(hex), "id hash part {hex:?}");
    assert!(is_hex32(&row.hash), "content hash {:?}", row.hash);

    // norm: a JSON object, schema 1, the row's id and type, no `seq`/`raw` (assemble adds them).
    let norm: Map<String, Value> = match serde_json::from_str(&row.norm) {
        Ok(m) => m,
        Err(e) => panic!("norm is not a JSON object ({e}): {:?}", row.norm),
    };
    assert_eq!(norm.get("schema"), Some(&Value::from(1)), "schema");
    assert_eq!(
        norm.get("id").and_then(Value::as_str),
        Some(row.id.as_str()),
        "norm id"
    );
    assert_eq!(
        norm.get("type").and_then(Value::as_str),
        Some(t.as_str()),
        "norm type"
    );
    assert_eq!(norm.get("stream").and_then(Value::as_str), Some(a.stream));
    assert_eq!(
        norm.get("product").and_then(Value::as_str),
        Some(a.product.as_str())
    );
    assert_eq!(norm.get("source").and_then(Value::as_str), Some("push"));
    assert_eq!(
        norm.get("received_at").and_then(Value::as_str),
        Some(RECEIVED_AT)
    );
    assert!(
        !norm.contains_key("seq") && !norm.contains_key("raw"),
        "norm has seq/raw"
    );
    assert!(
        !norm.contains_key("mns_message_id"),
        "mns_message_id on a push"
    );
    assert_eq!(
        norm.get("call_id").and_then(Value::as_str),
        row.call_id.as_deref(),
        "row call_id differs from norm call_id"
    );

    // Absent values are omitted, never null or empty; text fields are text.
    for (k, v) in &norm {
        assert!(!v.is_null(), "norm.{k} is null");
    }
    for k in TEXT_FIELDS {
        if let Some(v) = norm.get(k) {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("norm.{k} is not a string: {v}"));
            assert!(!s.is_empty(), "norm.{k} is empty");
        }
    }
    // Times are RFC 3339 in the vendor offset.
    for k in TIME_FIELDS {
        if let Some(v) = norm.get(k) {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("norm.{k} is not a string"));
            let odt = OffsetDateTime::parse(s, &Rfc3339)
                .unwrap_or_else(|e| panic!("norm.{k} = {s:?} is not RFC 3339: {e}"));
            assert_eq!(
                odt.offset(),
                a.offset,
                "norm.{k} = {s:?} not in the vendor offset"
            );
        }
    }
    if let Some(v) = norm.get("duration_s") {
        assert!(v.is_u64(), "duration_s {v}");
    }
    if let Some(v) = norm.get("hangup_by") {
        assert!(v == "user" || v == "machine", "hangup_by {v}");
    }
    if let Some(v) = norm.get("intents") {
        let list = v.as_array().expect("intents is a list");
        assert!(list.iter().all(Value::is_string), "intents {v}");
    }
    if let Some(v) = norm.get("tags") {
        let tags = v.as_object().expect("tags is an object");
        for tv in tags.values() {
            let ok = tv.is_string()
                || tv
                    .as_array()
                    .is_some_and(|l| l.iter().all(Value::is_string));
            assert!(ok, "tag value {tv}");
        }
    }

    // call_id keeps the literal text of a top-level number (never through a float).
    assert_eq!(
        row.call_id,
        expected_call_id(&row.raw),
        "call_id literal text"
    );

    check_assembled(row, &norm);
}

/// `call_id` as documented: the first of `call_id`, `callId` with a usable value; a number by its
/// literal text, a non-empty string unescaped, a boolean as `true`/`false`.
fn expected_call_id(raw: &str) -> Option<String> {
    let fields = raw_fields(raw).expect("a row's raw is an object");
    ["call_id", "callId"].iter().find_map(|k| {
        let v = fields.iter().rev().find(|(key, _)| key == k)?.1;
        let text = v.get();
        match text.as_bytes().first()? {
            b'"' => Some(serde_json::from_str::<String>(text).ok()?).filter(|s| !s.is_empty()),
            b'-' | b'0'..=b'9' | b't' | b'f' => Some(text.to_owned()),
            _ => None,
        }
    })
}

/// The stored receipt (`norm` + `seq` + `raw`) is one JSON object whose `raw` is the message.
fn check_assembled(row: &Row, norm: &Map<String, Value>) {
    let stored = Row::assemble(&row.norm, 1, &row.raw);
    let message: Value = serde_json::from_str(&row.raw).expect("row raw parses");
    // Structural check without depth limit: keys are norm's plus seq and raw, none repeated.
    let fields = raw_fields(&stored)
        .unwrap_or_else(|| panic!("assembled receipt is not a JSON object: {stored:?}"));
    assert_eq!(
        fields.len(),
        norm.len() + 2,
        "assembled keys repeat or are missing"
    );
    let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| *v);
    assert_eq!(get("seq").map(RawValue::get), Some("1"));
    let raw = get("raw").expect("assembled has raw").get();
    assert_eq!(raw, row.raw, "assembled raw is not the message text");
    match serde_json::from_str::<Value>(&stored) {
        Ok(v) => {
            assert_eq!(v.get("raw"), Some(&message), "assembled raw != message");
            let mut rest = v.as_object().cloned().expect("object");
            rest.remove("seq");
            rest.remove("raw");
            assert_eq!(&rest, norm, "assembled receipt minus seq/raw != norm");
        }
        // One level deeper than the message itself: only the depth limit may refuse it.
        Err(e) => assert!(
            e.to_string().contains("recursion limit exceeded"),
            "assembled receipt does not parse: {e}"
        ),
    }
}

fn check_quarantine(q: &QuarantineItem, bytes: &[u8], a: &Arrival) {
    assert_eq!(q.address, a.address);
    assert_eq!(q.message_type, None);
    let decoded = match (&q.raw, &q.raw_base64) {
        (Some(raw), None) => raw.as_bytes().to_vec(),
        (None, Some(b64)) => {
            assert!(
                std::str::from_utf8(bytes).is_err(),
                "base64 used for UTF-8 bytes"
            );
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("raw_base64 decodes")
        }
        other => panic!("quarantine item holds raw and raw_base64 as {other:?}"),
    };
    assert_eq!(
        decoded, bytes,
        "quarantined bytes are not the element's bytes"
    );
    assert_eq!(q.size, bytes.len() as u64, "quarantine size");
    assert_eq!(
        q.sha256,
        hex::encode(Sha256::digest(&decoded)),
        "quarantine sha256"
    );
}

/// `to_wire()` decodes back: header fields, quarantine, and per chunk the rows in order, with
/// their `norm` and `raw` text byte-exact; chunks stay within `WIRE_CHUNK_BYTES` unless a single
/// row is larger.
fn check_wire(req: &CommitRequest) {
    let wire = req.to_wire();
    let d = DecodedCommit::decode(&wire).unwrap_or_else(|| panic!("wire does not decode"));
    assert_eq!(d.header.stream, req.stream);
    assert_eq!(d.header.address, req.address);
    assert_eq!(d.header.received_at_ms, req.received_at_ms);
    assert_eq!(d.header.quarantine, req.quarantine, "wire quarantine");
    let mut rows: Vec<Row> = Vec::new();
    // The chunks tile the text section exactly: no gap, no overlap, nothing after the last.
    let mut end = 0;
    for c in &d.header.chunks {
        assert_eq!(
            c.start, end,
            "chunk starts at {} after text up to {end}",
            c.start
        );
        end = c.start + c.len;
    }
    assert_eq!(end, d.text.len(), "text section is not exactly the chunks");
    for c in &d.header.chunks {
        let chunk = d
            .rows(c)
            .unwrap_or_else(|| panic!("wire chunk does not decode"));
        let keys: Vec<RowKey> = serde_json::from_str(c.rows.get())
            .unwrap_or_else(|e| panic!("wire chunk rows do not parse as row keys: {e}"));
        assert!(!chunk.is_empty(), "empty chunk");
        assert_eq!(keys.len(), chunk.len());
        assert!(
            c.len <= WIRE_CHUNK_BYTES || chunk.len() == 1,
            "chunk of {} rows is {} bytes",
            chunk.len(),
            c.len
        );
        rows.extend(chunk);
    }
    assert_eq!(rows, req.rows, "wire rows");
}

/// The same message, re-serialized: one row with the same id, hash and normalized receipt.
fn same_identity(row: &Row, text: &str, a: &Arrival, what: &str) {
    let again = plan(text.as_bytes(), a);
    assert!(again.quarantine.is_empty(), "{what}: quarantined: {text:?}");
    assert_eq!(again.rows.len(), 1, "{what}: {} rows", again.rows.len());
    let r = &again.rows[0];
    assert_eq!(r.message_type, row.message_type, "{what}: type differs");
    assert_eq!(
        r.id, row.id,
        "{what}: id differs\n  original: {:?}\n  again:    {text:?}",
        row.raw
    );
    assert_eq!(
        r.hash, row.hash,
        "{what}: content hash differs\n  original: {:?}\n  again:    {text:?}",
        row.raw
    );
    assert_eq!(r.call_id, row.call_id, "{what}: call_id differs");
    assert_eq!(r.norm, row.norm, "{what}: normalized receipt differs");
}

/// Removes JSON whitespace outside strings: the compact form, every literal kept as written.
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

/// The top-level members in reverse order (compact), or `None` when a key repeats (reordering
/// would change which duplicate wins).
fn reverse_top_level_keys(raw: &str) -> Option<String> {
    let fields = raw_fields(raw)?;
    let mut seen = HashMap::new();
    for (k, _) in &fields {
        if seen.insert(k.as_str(), ()).is_some() {
            return None;
        }
    }
    let members: Vec<String> = fields
        .iter()
        .rev()
        .map(|(k, v)| {
            format!(
                "{}:{}",
                serde_json::to_string(k).expect("key"),
                minify(v.get())
            )
        })
        .collect();
    Some(format!("{{{}}}", members.join(",")))
}

/// Every top-level member of a JSON object, in order, duplicates kept; no depth limit on values.
fn raw_fields(json: &str) -> Option<Vec<(String, &RawValue)>> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let fields = de.deserialize_map(V).ok()?;
    de.end().ok()?;
    Some(fields)
}
