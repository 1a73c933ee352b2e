//! Receipt identity (`id`) and content hash, as SPEC.md defines them.
//!
//! `id` = `<type>:` + the first 32 hex characters of SHA-256 over the compact JSON array of the
//! identity components, as strings. Scalars are compared as their literal text, so `1` and `"1"`
//! are the same component and a number never passes through a float.

use crate::message_type::MessageType;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// The top-level fields of one message object as raw JSON text, last duplicate key winning.
#[derive(Debug)]
pub struct RawFields<'a>(Vec<(String, &'a RawValue)>);

impl<'a> RawFields<'a> {
    pub fn parse(json: &'a str) -> Option<RawFields<'a>> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, &'de RawValue)> = Vec::new();
                // Past a few dozen keys, duplicates are found through an index: a linear search
                // per key would make an object of 50,000 keys take seconds.
                let mut index: Option<std::collections::HashMap<String, usize>> = None;
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    if index.is_none() && out.len() >= 32 {
                        index = Some(
                            out.iter()
                                .enumerate()
                                .map(|(i, (key, _))| (key.clone(), i))
                                .collect(),
                        );
                    }
                    let found = match &index {
                        Some(ix) => ix.get(&k).copied(),
                        None => out.iter().position(|(key, _)| *key == k),
                    };
                    match found.and_then(|i| out.get_mut(i)) {
                        Some(slot) => slot.1 = v,
                        None => {
                            if let Some(ix) = index.as_mut() {
                                ix.insert(k.clone(), out.len());
                            }
                            out.push((k, v));
                        }
                    }
                }
                Ok(RawFields(out))
            }
        }
        let mut de = serde_json::Deserializer::from_str(json);
        de.deserialize_map(V).ok()
    }

    /// The fields in order of first appearance, each with its last value.
    pub fn into_entries(self) -> Vec<(String, &'a RawValue)> {
        self.0
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A field as text: strings unescaped, numbers and booleans by their literal text, `null`
    /// as `""`, objects and arrays as their canonical JSON (so two different nested values
    /// never collide, and the same one always matches).
    pub fn text(&self, key: &str) -> String {
        match self.get(key) {
            None => String::new(),
            Some(raw) => scalar_text(raw),
        }
    }
}

fn scalar_text(raw: &RawValue) -> String {
    let t = raw.get().trim();
    if t.starts_with('"') {
        serde_json::from_str::<String>(t).unwrap_or_else(|_| t.to_owned())
    } else if t == "null" {
        String::new()
    } else if t.starts_with('{') || t.starts_with('[') {
        // A nested value compares by its canonical form, never by its whitespace or key order.
        serde_json::from_str::<Value>(t)
            .map(|v| canonical_json(&v))
            .unwrap_or_else(|_| t.to_owned())
    } else {
        t.to_owned()
    }
}

/// Canonical JSON of a parsed value (see [`crate::canonical_json`]). Prefer
/// [`canonical_raw`] when the raw text is at hand: a parsed value has already lost the digits of
/// integers beyond 2^53.
pub fn canonical_json(value: &Value) -> String {
    crate::canonical_json::canonicalize(&value.to_string()).unwrap_or_else(|| value.to_string())
}

/// Canonical JSON of a message from its raw text, integers exact.
pub fn canonical_raw(raw: &str) -> String {
    crate::canonical_json::canonicalize(raw).unwrap_or_else(|| raw.to_owned())
}

fn sha256_hex32(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = hex::encode(digest);
    s.truncate(32);
    s
}

/// The identity components of a message of type `t` whose raw text is `raw`.
pub fn components(t: MessageType, fields: &RawFields, raw: &str) -> Vec<String> {
    let mut call_id = fields.text("call_id");
    if call_id.is_empty() {
        call_id = fields.text("callId");
    }
    if call_id.is_empty() {
        return vec![canonical_raw(raw)];
    }
    let mut c = vec![call_id];
    match t {
        MessageType::VoiceCallReportAiccs => {
            c.push(fields.text("status_code"));
            c.push(fields.text("status_time"));
            c.push(fields.text("dtmf"));
        }
        MessageType::AlicomAgentCallNote => c.push(fields.text("call_times")),
        MessageType::RobotCallReportAiccs => c.push(fields.text("type")),
        _ => {}
    }
    c
}

/// `id` of a message: `<type>:<32 hex>`.
pub fn receipt_id(t: MessageType, components: &[String]) -> String {
    let array = serde_json::to_string(components).unwrap_or_default();
    format!("{}:{}", t.as_str(), sha256_hex32(array.as_bytes()))
}

/// Hash of the message's canonical content (from its raw text): equal for the same content
/// whatever its key order or whitespace; used to tell a duplicate from a conflicting duplicate.
pub fn content_hash(raw: &str) -> String {
    sha256_hex32(canonical_raw(raw).as_bytes())
}

/// [`content_hash`] of a message `serde_json` has already parsed (its raw text is valid JSON):
/// the same hash, without validating the text again.
pub fn content_hash_parsed(raw: &str) -> String {
    let mut canonical = String::with_capacity(raw.len());
    match crate::canonical_json::canonicalize_valid(raw, &mut canonical) {
        Some(()) => sha256_hex32(canonical.as_bytes()),
        None => content_hash(raw),
    }
}

/// Full SHA-256 hex of bytes (quarantine dedup, KV keys).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(t: MessageType, json: &str) -> String {
        let fields = RawFields::parse(json).expect("object");
        receipt_id(t, &components(t, &fields, json))
    }

    #[test]
    fn id_is_type_prefixed_32_hex() {
        let id = id_of(MessageType::LlmSmartCallReport, r#"{"call_id":"1^2"}"#);
        let (prefix, hash) = id.split_once(':').expect("colon");
        assert_eq!(prefix, "LlmSmartCallReport");
        assert_eq!(hash.len(), 32);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        // The documented algorithm, computed independently: sha256('["1^2"]')[..32].
        assert_eq!(hash, &sha256_hex(br#"["1^2"]"#)[..32]);
    }

    #[test]
    fn id_ignores_key_order_whitespace_and_other_fields() {
        let a = id_of(
            MessageType::VoiceCallReportAiccs,
            r#"{"call_id":"9^9","status_code":"200101","status_time":"2021-04-28 09:55:02"}"#,
        );
        let b = id_of(
            MessageType::VoiceCallReportAiccs,
            "{ \"status_time\" : \"2021-04-28 09:55:02\",\n \"status_code\":\"200101\", \"call_id\":\"9^9\", \"out_id\":\"x\" }",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn numbers_compare_as_text_never_through_float() {
        let a = id_of(
            MessageType::AlicomAgentCallNote,
            r#"{"callId":"1","call_times":1}"#,
        );
        let b = id_of(
            MessageType::AlicomAgentCallNote,
            r#"{"callId":"1","call_times":"1"}"#,
        );
        let c = id_of(
            MessageType::AlicomAgentCallNote,
            r#"{"callId":"1","call_times":2}"#,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        // 2^53 + 1 differs from 2^53 as text although both round to the same float.
        let big1 = id_of(
            MessageType::LlmSmartCallReport,
            r#"{"call_id":9007199254740993}"#,
        );
        let big2 = id_of(
            MessageType::LlmSmartCallReport,
            r#"{"call_id":9007199254740992}"#,
        );
        assert_ne!(big1, big2);
    }

    #[test]
    fn extras_per_type() {
        let ev = |code: &str| {
            id_of(
                MessageType::VoiceCallReportAiccs,
                &format!(r#"{{"call_id":"1","status_code":"{code}","status_time":"t"}}"#),
            )
        };
        assert_ne!(ev("200101"), ev("200201"));
        // Missing extra counts as "".
        assert_eq!(
            id_of(
                MessageType::VoiceCallReportAiccs,
                r#"{"call_id":"1","status_code":"2"}"#
            ),
            id_of(
                MessageType::VoiceCallReportAiccs,
                r#"{"call_id":"1","status_code":"2","status_time":"","dtmf":""}"#
            )
        );
        let robot = |ty: &str| {
            id_of(
                MessageType::RobotCallReportAiccs,
                &format!(r#"{{"callId":"1","type":"{ty}"}}"#),
            )
        };
        assert_ne!(robot("finish"), robot("start"));
        // Reports ignore status fields: a resent final record is the same receipt.
        assert_eq!(
            id_of(
                MessageType::LlmSmartCallReport,
                r#"{"call_id":"1","duration":1}"#
            ),
            id_of(
                MessageType::LlmSmartCallReport,
                r#"{"call_id":"1","duration":2}"#
            )
        );
        // The type is part of the id.
        assert_ne!(
            id_of(MessageType::LlmSmartCallReport, r#"{"call_id":"1"}"#),
            id_of(MessageType::LlmSmartCallRecord, r#"{"call_id":"1"}"#)
        );
    }

    #[test]
    fn missing_call_id_uses_canonical_content() {
        let a = id_of(
            MessageType::LlmSmartCallReport,
            r#"{"caller":"1","callee":"2"}"#,
        );
        let b = id_of(
            MessageType::LlmSmartCallReport,
            r#"{ "callee":"2", "caller":"1" }"#,
        );
        let c = id_of(
            MessageType::LlmSmartCallReport,
            r#"{"caller":"1","callee":"3"}"#,
        );
        let d = id_of(
            MessageType::LlmSmartCallReport,
            r#"{"call_id":"","caller":"1","callee":"3"}"#,
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(c, d);
    }

    #[test]
    fn many_keys_with_duplicates_last_wins() {
        let n = 50_000;
        let mut json = String::from("{");
        for i in 0..n {
            json.push_str(&format!("\"k{i}\":{i},"));
        }
        json.push_str("\"k7\":\"last\",\"call_id\":\"x\"}");
        let f = RawFields::parse(&json).expect("object");
        assert_eq!(f.text("k7"), "last");
        assert_eq!(f.text("k49999"), "49999");
        assert_eq!(f.into_entries().len(), n + 1);
    }

    #[test]
    fn duplicate_keys_last_wins_like_the_value() {
        let f = RawFields::parse(r#"{"call_id":"a","call_id":"b"}"#).expect("object");
        assert_eq!(f.text("call_id"), "b");
        let v: Value = serde_json::from_str(r#"{"call_id":"a","call_id":"b"}"#).expect("json");
        assert_eq!(v["call_id"], "b");
    }

    #[test]
    fn content_hash_is_canonical() {
        let a = r#"{"a":1,"b":[1,2,{"c":"é"}]}"#;
        let b = "{\"b\" : [1, 2, {\"c\":\"\\u00e9\"}], \"a\" : 1}";
        let c = r#"{"a":1,"b":[2,1,{"c":"é"}]}"#;
        assert_eq!(content_hash(a), content_hash(b));
        for raw in [a, b, c] {
            assert_eq!(content_hash_parsed(raw), content_hash(raw));
        }
        assert_ne!(content_hash(a), content_hash(c));
        // Integers beyond 2^53 are content too.
        assert_ne!(
            content_hash(r#"{"n":9007199254740993}"#),
            content_hash(r#"{"n":9007199254740992}"#)
        );
    }
}
