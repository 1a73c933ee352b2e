//! Decoding an MNS `MessageBody` into receipt JSON.
//!
//! Alicom queues carry base64-encoded JSON (the dybaseapi Python queue base64-decodes by
//! default; the Java SDK's `getMessageBodyAsString()` base64-decodes). A tolerant consumer tries
//! base64 first, then the raw text as JSON, and otherwise keeps the original bytes so the
//! message can still be recorded.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

/// Standard alphabet; padding optional; non-zero trailing bits tolerated (as Python's
/// `b64decode` does).
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// How a JSON body was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// base64 of the JSON bytes (the normal alicom case).
    Base64,
    /// The JSON text itself.
    Raw,
}

/// The result of decoding a `MessageBody`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedBody {
    /// The body is JSON (validated), as UTF-8 text without a BOM.
    Json {
        /// How it was carried.
        encoding: BodyEncoding,
        /// The JSON text.
        json: String,
    },
    /// Neither base64-of-JSON nor JSON.
    NotJson {
        /// The body exactly as received.
        original: Vec<u8>,
        /// The base64-decoded bytes, when the body was valid base64 (of something not JSON).
        base64_decoded: Option<Vec<u8>>,
    },
}

impl DecodedBody {
    /// A short label for logs and metrics: `base64_json`, `raw_json` or `not_json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Json {
                encoding: BodyEncoding::Base64,
                ..
            } => "base64_json",
            Self::Json {
                encoding: BodyEncoding::Raw,
                ..
            } => "raw_json",
            Self::NotJson { .. } => "not_json",
        }
    }

    /// The JSON text, if any.
    pub fn json(&self) -> Option<&str> {
        match self {
            Self::Json { json, .. } => Some(json),
            Self::NotJson { .. } => None,
        }
    }
}

/// Returns the bytes as a string if they are (BOM-stripped) UTF-8 holding one JSON value.
fn as_json(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).ok()?;
    if text.trim().is_empty() {
        return None;
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    Some(text.to_string())
}

/// base64-decodes after trimming surrounding ASCII whitespace and removing interior line
/// breaks (MIME-style wrapping). Interior spaces or tabs make it not base64.
fn lenient_base64(body: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = body
        .trim_ascii()
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n'))
        .collect();
    if compact.is_empty() {
        return None;
    }
    LENIENT_STANDARD.decode(&compact).ok()
}

/// Decodes a `MessageBody`: base64 whose bytes are JSON → [`BodyEncoding::Base64`]; else the
/// raw text if it is JSON → [`BodyEncoding::Raw`]; else [`DecodedBody::NotJson`] with the
/// original bytes.
pub fn decode_message_body(body: impl AsRef<[u8]>) -> DecodedBody {
    let body = body.as_ref();
    let base64_decoded = lenient_base64(body);
    if let Some(json) = base64_decoded.as_deref().and_then(as_json) {
        return DecodedBody::Json {
            encoding: BodyEncoding::Base64,
            json,
        };
    }
    if let Some(json) = as_json(body) {
        return DecodedBody::Json {
            encoding: BodyEncoding::Raw,
            json,
        };
    }
    DecodedBody::NotJson {
        original: body.to_vec(),
        base64_decoded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    // A payload in the shape of the documented VoiceReportAiccs receipt (reference §3.6).
    const RECEIPT: &str = r#"{"call_id":"116012854210^102814279****","status_code":"200000","status_msg":"用户接听","duration":"9"}"#;

    #[test]
    fn base64_json_is_decoded() {
        let d = decode_message_body(b64(RECEIPT));
        assert_eq!(
            d,
            DecodedBody::Json {
                encoding: BodyEncoding::Base64,
                json: RECEIPT.to_string()
            }
        );
        assert_eq!(d.kind(), "base64_json");
        assert_eq!(d.json(), Some(RECEIPT));
    }

    #[test]
    fn base64_tolerates_missing_padding_and_whitespace() {
        let full = b64("{\"a\":1}"); // eyJhIjoxfQ==
        assert!(full.ends_with("=="));
        let unpadded = full.trim_end_matches('=').to_string();
        for input in [
            unpadded.clone(),
            format!("  {full}\n"),
            format!("\t{unpadded}\r\n"),
            format!("{}\n{}", &full[..4], &full[4..]),
            format!("{}\r\n{}", &full[..4], &full[4..]),
        ] {
            assert_eq!(
                decode_message_body(&input),
                DecodedBody::Json {
                    encoding: BodyEncoding::Base64,
                    json: "{\"a\":1}".into()
                },
                "input {input:?}"
            );
        }
    }

    #[test]
    fn interior_spaces_are_not_base64() {
        let full = b64("{\"a\":1}");
        let spaced = format!("{} {}", &full[..4], &full[4..]);
        assert_eq!(decode_message_body(spaced).kind(), "not_json");
    }

    #[test]
    fn base64_of_bom_prefixed_json() {
        let mut bytes = UTF8_BOM.to_vec();
        bytes.extend_from_slice(b"[1,2]");
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(decode_message_body(encoded).json(), Some("[1,2]"));
    }

    #[test]
    fn raw_json_is_accepted() {
        let d = decode_message_body(RECEIPT);
        assert_eq!(
            d,
            DecodedBody::Json {
                encoding: BodyEncoding::Raw,
                json: RECEIPT.to_string()
            }
        );
        assert_eq!(d.kind(), "raw_json");
        // A raw JSON array with surrounding whitespace.
        assert_eq!(decode_message_body(" [ {\"x\":1} ] ").kind(), "raw_json");
    }

    #[test]
    fn base64_of_non_json_is_not_json() {
        let body = b64("This is a test message");
        let d = decode_message_body(&body);
        assert_eq!(
            d,
            DecodedBody::NotJson {
                original: body.clone().into_bytes(),
                base64_decoded: Some(b"This is a test message".to_vec())
            }
        );
        assert_eq!(d.kind(), "not_json");
        assert_eq!(d.json(), None);
    }

    #[test]
    fn plain_text_is_not_json_and_kept() {
        // The MNS doc's sample body.
        let d = decode_message_body("This is a test message");
        assert_eq!(
            d,
            DecodedBody::NotJson {
                original: b"This is a test message".to_vec(),
                base64_decoded: None
            }
        );
    }

    #[test]
    fn broken_json_and_invalid_utf8() {
        assert_eq!(decode_message_body("{\"a\":").kind(), "not_json");
        assert_eq!(decode_message_body(b64("{\"a\":")).kind(), "not_json");
        let bad = [0xffu8, 0xfe, b'{', b'}'];
        assert_eq!(
            decode_message_body(bad),
            DecodedBody::NotJson {
                original: bad.to_vec(),
                base64_decoded: None
            }
        );
        // base64 of invalid UTF-8
        let enc = base64::engine::general_purpose::STANDARD.encode([0xffu8, 0xfe]);
        assert_eq!(decode_message_body(enc).kind(), "not_json");
    }

    #[test]
    fn empty_body_is_not_json() {
        assert_eq!(
            decode_message_body(""),
            DecodedBody::NotJson {
                original: vec![],
                base64_decoded: None
            }
        );
        assert_eq!(decode_message_body("  \n").kind(), "not_json");
        // base64 of an empty string / whitespace
        assert_eq!(decode_message_body(b64("   ")).kind(), "not_json");
    }

    #[test]
    fn url_safe_alphabet_is_not_standard() {
        // "{\"k\":\"??>\"}" has '+'/'/' in standard base64; the URL-safe variant is rejected
        // as base64 and, not being JSON either, reported as not_json.
        let json = "{\"k\":\"??>\"}";
        let std = b64(json);
        assert!(std.contains('/') || std.contains('+'));
        assert_eq!(decode_message_body(&std).json(), Some(json));
        let url = std.replace('+', "-").replace('/', "_");
        assert_eq!(decode_message_body(url).kind(), "not_json");
    }
}
