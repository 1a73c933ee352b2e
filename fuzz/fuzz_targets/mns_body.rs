//! Fuzz target: MNS consumption-mode parsing. Arbitrary bytes go through `MessageBody` decoding,
//! every MNS XML reader, the QueryTokenForMnsQueue response reader, and (for bodies that decode
//! to JSON) the push planner in MNS mode. None of it may panic; a few invariants are checked.

#![no_main]

use base64::Engine as _;
use icc_core::message_type::{Product, TypePin};
use icc_core::mns::{
    batch_delete_body, decode_message_body, parse_batch_delete_error_body,
    parse_batch_delete_errors, parse_china_time_ms, parse_error, parse_messages,
    parse_query_token_response, BodyEncoding, DecodedBody, XmlError,
};
use icc_core::normalize::Source;
use icc_core::push::{plan, Arrival};
use libfuzzer_sys::fuzz_target;
use serde::de::IgnoredAny;
use time::UtcOffset;

const BOM: &[u8] = b"\xEF\xBB\xBF";

fuzz_target!(|data: &[u8]| {
    check_body(data, "fuzz-message-id");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(messages) = parse_messages(text) {
        for m in &messages {
            assert!(!m.message_id.is_empty() && m.message_id.trim() == m.message_id);
            assert!(!m.receipt_handle.is_empty() && m.receipt_handle.trim() == m.receipt_handle);
            check_body(m.message_body.as_bytes(), &m.message_id);
        }
        // Every received handle can be sent back in a well-formed BatchDeleteMessage body.
        let handles: Vec<&str> = messages.iter().map(|m| m.receipt_handle.as_str()).collect();
        let body = batch_delete_body(&handles).expect("received handles are non-empty");
        assert_eq!(
            parse_messages(&body),
            Err(XmlError::UnexpectedRoot("ReceiptHandles".into())),
            "BatchDelete body is not well-formed XML: {body:?}"
        );
    }
    if let Ok(e) = parse_error(text) {
        assert!(!e.code.trim().is_empty());
        let _ = (e.kind(), e.to_string());
    }
    if let Ok(failures) = parse_batch_delete_errors(text) {
        for f in &failures {
            assert!(!f.error_code.is_empty() && !f.receipt_handle.is_empty());
            let _ = f.kind();
        }
    }
    let _ = parse_batch_delete_error_body(text);

    if let Ok(r) = parse_query_token_response(text) {
        let _ = (
            r.token.refresh_due_ms(),
            r.token.is_fresh(0),
            r.token.is_fresh(i64::MAX),
        );
        let _ = format!("{:?}", r.token);
    }
    let _ = parse_china_time_ms(text);
});

/// A `MessageBody`: decoding keeps what it says it keeps, and the JSON it yields is planned like
/// a push body without panicking.
fn check_body(body: &[u8], message_id: &str) {
    let decoded = decode_message_body(body);
    let _ = decoded.kind();
    match &decoded {
        DecodedBody::Json { encoding, json } => {
            assert!(!json.as_bytes().starts_with(BOM), "JSON text keeps a BOM");
            assert!(
                serde_json::from_str::<IgnoredAny>(json).is_ok(),
                "decoded JSON does not parse: {json:?}"
            );
            if *encoding == BodyEncoding::Raw {
                let unbommed = body.strip_prefix(BOM).unwrap_or(body);
                assert_eq!(json.as_bytes(), unbommed, "raw JSON is not the body text");
            }
            for product in Product::ALL {
                let address = format!("/mns/{}", product.as_str());
                let a = Arrival {
                    product,
                    pin: TypePin::Infer,
                    stream: "default",
                    address: &address,
                    received_at_ms: 1_767_225_600_000,
                    offset: UtcOffset::from_hms(8, 0, 0).expect("offset"),
                    source: Source::Mns,
                    mns_message_id: Some(message_id),
                };
                let req = plan(json.as_bytes(), &a);
                for row in &req.rows {
                    let norm: serde_json::Value =
                        serde_json::from_str(&row.norm).expect("norm parses");
                    assert_eq!(norm["source"], "mns");
                    assert_eq!(norm["mns_message_id"], message_id);
                }
                let _ = req.to_wire();
            }
        }
        DecodedBody::NotJson {
            original,
            base64_decoded,
        } => {
            assert_eq!(original.as_slice(), body, "not_json does not keep the body");
            if let Some(bytes) = base64_decoded {
                // What was decoded re-encodes to the body's base64 characters (modulo padding).
                let again = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
                let compact: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
                    .collect();
                assert_eq!(again.len(), compact.len(), "base64 length");
            }
        }
    }
}
