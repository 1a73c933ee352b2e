//! Push bodies: a JSON array of message objects, a bare object, or `[]`. Each element becomes a
//! message (with its exact raw text) or a quarantined piece with its reason. Nothing is dropped.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Why something was quarantined instead of stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    NotJson,
    NotObject,
    UnknownShape,
    ConflictingDuplicate,
    TooLarge,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotJson => "not_json",
            Reason::NotObject => "not_object",
            Reason::UnknownShape => "unknown_shape",
            Reason::ConflictingDuplicate => "conflicting_duplicate",
            Reason::TooLarge => "too_large",
        }
    }
}

/// One message of a body: its raw text exactly as pushed and its parsed object.
#[derive(Debug)]
pub struct Message<'a> {
    pub raw: &'a str,
    pub object: Map<String, Value>,
}

/// One piece of a body.
#[derive(Debug)]
pub enum Element<'a> {
    Message(Message<'a>),
    Bad { reason: Reason, raw: &'a [u8] },
}

/// Messages larger than this are quarantined as `too_large` rather than stored (a stored row
/// must stay well under SQLite's per-row limit in a Durable Object).
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits a push body into elements. A body that is not JSON is one `not_json` element holding
/// every byte as received; a JSON scalar is one `not_object` element.
pub fn parse(body: &[u8]) -> Vec<Element<'_>> {
    let unbommed = body.strip_prefix(BOM).unwrap_or(body);
    let whole_bad = |reason| vec![Element::Bad { reason, raw: body }];
    let Ok(text) = std::str::from_utf8(unbommed) else {
        return whole_bad(Reason::NotJson);
    };
    let Ok(top) = serde_json::from_str::<&RawValue>(text) else {
        return whole_bad(Reason::NotJson);
    };
    let top = top.get();
    match top.as_bytes().first() {
        Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(top) {
            Ok(items) => items.into_iter().map(|r| element(r.get())).collect(),
            Err(_) => whole_bad(Reason::NotJson),
        },
        Some(b'{') => vec![element(top)],
        _ => whole_bad(Reason::NotObject),
    }
}

fn element(raw: &str) -> Element<'_> {
    if !raw.starts_with('{') {
        return Element::Bad {
            reason: Reason::NotObject,
            raw: raw.as_bytes(),
        };
    }
    if raw.len() > MAX_MESSAGE_BYTES {
        return Element::Bad {
            reason: Reason::TooLarge,
            raw: raw.as_bytes(),
        };
    }
    match serde_json::from_str::<Map<String, Value>>(raw) {
        Ok(object) => Element::Message(Message { raw, object }),
        Err(_) => Element::Bad {
            reason: Reason::NotJson,
            raw: raw.as_bytes(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(body: &[u8]) -> Vec<Option<Reason>> {
        parse(body)
            .iter()
            .map(|e| match e {
                Element::Message(_) => None,
                Element::Bad { reason, .. } => Some(*reason),
            })
            .collect()
    }

    #[test]
    fn arrays_objects_and_empty() {
        assert_eq!(reasons(b"[]"), vec![]);
        assert_eq!(reasons(b" [ ] "), vec![]);
        assert_eq!(reasons(br#"{"a":1}"#), vec![None]);
        assert_eq!(reasons(br#"[{"a":1},{"b":2}]"#), vec![None, None]);
    }

    #[test]
    fn raw_text_is_exact() {
        let body = "[ {\"b\" : 2,\n \"a\":\"\\u00e9\"} , {\"c\":3}]";
        let els = parse(body.as_bytes());
        match els.first() {
            Some(Element::Message(m)) => assert_eq!(m.raw, "{\"b\" : 2,\n \"a\":\"\\u00e9\"}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bom_is_ignored_for_parsing_but_kept_when_quarantined() {
        assert_eq!(reasons(b"\xEF\xBB\xBF[{\"a\":1}]"), vec![None]);
        let bad = b"\xEF\xBB\xBFnot json";
        match parse(bad).first() {
            Some(Element::Bad { raw, .. }) => assert_eq!(*raw, &bad[..]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_bodies() {
        assert_eq!(reasons(b""), vec![Some(Reason::NotJson)]);
        assert_eq!(reasons(b"   "), vec![Some(Reason::NotJson)]);
        assert_eq!(reasons(b"[{\"a\":1}"), vec![Some(Reason::NotJson)]);
        assert_eq!(
            reasons(b"[{\"a\":1}] trailing"),
            vec![Some(Reason::NotJson)]
        );
        assert_eq!(reasons(b"\xff\xfe[]"), vec![Some(Reason::NotJson)]);
        assert_eq!(reasons(b"[\"\xff\"]"), vec![Some(Reason::NotJson)]);
        assert_eq!(reasons(b"42"), vec![Some(Reason::NotObject)]);
        assert_eq!(reasons(b"\"text\""), vec![Some(Reason::NotObject)]);
        assert_eq!(reasons(b"null"), vec![Some(Reason::NotObject)]);
        assert_eq!(
            reasons(br#"[1,{"a":1},"x",null,[]]"#),
            vec![
                Some(Reason::NotObject),
                None,
                Some(Reason::NotObject),
                Some(Reason::NotObject),
                Some(Reason::NotObject)
            ]
        );
    }

    #[test]
    fn deep_nesting_is_rejected_without_overflow() {
        let depth = 10_000;
        // Valid JSON, but its one element is an array: not an object.
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(reasons(body.as_bytes()), vec![Some(Reason::NotObject)]);
        // An object nested too deep to parse safely is kept as not_json.
        let obj = format!("[{}1{}]", "{\"a\":".repeat(depth), "}".repeat(depth));
        assert_eq!(reasons(obj.as_bytes()), vec![Some(Reason::NotJson)]);
    }

    #[test]
    fn oversized_message_is_too_large() {
        let big = format!(
            "[{{\"call_id\":\"1\",\"x\":\"{}\"}},{{\"a\":1}}]",
            "y".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(reasons(big.as_bytes()), vec![Some(Reason::TooLarge), None]);
    }
}
