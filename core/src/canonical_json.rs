//! Canonical JSON (RFC 8785, JCS) computed from a message's raw text, with one deliberate
//! difference: integers keep all their digits. RFC 8785 renders every number through an IEEE
//! double, so 9007199254740993 and 9007199254740992 would canonicalize alike and two different
//! receipts would look like one. Integers within ±2^53 (all real ICC values) render exactly as
//! RFC 8785 renders them; only larger ones differ, and they differ by being exact.

use crate::identity::RawFields;
use serde_json::value::RawValue;

/// Canonical text of one JSON value given as raw text; `None` if it is not JSON.
pub fn canonicalize(raw: &str) -> Option<String> {
    let value: &RawValue = serde_json::from_str(raw).ok()?;
    let mut out = String::with_capacity(raw.len());
    write(value, &mut out)?;
    Some(out)
}

fn write(value: &RawValue, out: &mut String) -> Option<()> {
    let t = value.get().trim();
    match t.as_bytes().first()? {
        b'{' => {
            // Duplicate keys: the last one wins, as when the message is parsed.
            let mut members = RawFields::parse(t)?.into_entries();
            // RFC 8785: keys sorted by their UTF-16 code units.
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).ok()?);
                out.push(':');
                write(v, out)?;
            }
            out.push('}');
        }
        b'[' => {
            let items: Vec<&RawValue> = serde_json::from_str(t).ok()?;
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, out)?;
            }
            out.push(']');
        }
        b'"' if !t.contains('\\') => out.push_str(t), // nothing to unescape: already canonical
        b'"' => {
            let s: String = serde_json::from_str(t).ok()?;
            out.push_str(&serde_json::to_string(&s).ok()?);
        }
        b't' | b'f' | b'n' => out.push_str(t),
        _ => out.push_str(&number(t)?),
    }
    Some(())
}

/// Integers: their digits (`-0` is `0`). Other numbers: the RFC 8785 (ECMAScript) form.
fn number(t: &str) -> Option<String> {
    let digits = t.strip_prefix('-').unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(if digits.bytes().all(|b| b == b'0') {
            "0".to_owned()
        } else {
            t.to_owned()
        });
    }
    let f: f64 = t.parse().ok()?;
    serde_json_canonicalizer::to_string(&f).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        canonicalize(s).unwrap_or_default()
    }

    #[test]
    fn rfc8785_examples() {
        // Key order, whitespace, escapes and number forms as RFC 8785 section 3.2.
        assert_eq!(
            c(r#"{ "b": [ 1.0 , 2e1, -0 ], "a": "\u00e9\n" }"#),
            "{\"a\":\"é\\n\",\"b\":[1,20,0]}"
        );
        assert_eq!(
            c(r#"[1E30, 4.50, 0.000001, 1e-7, true, null, false]"#),
            "[1e+30,4.5,0.000001,1e-7,true,null,false]"
        );
        // RFC 8785 section 3.2.3: sorted by UTF-16 code units (U+1F600 before U+FB33, unlike UTF-8).
        let rfc = r#"{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh",
            "1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}"#;
        let want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(c(rfc), want);
    }

    #[test]
    fn big_integers_keep_their_digits() {
        assert_ne!(c("9007199254740993"), c("9007199254740992"));
        assert_eq!(c("123456789012345678901"), "123456789012345678901");
        assert_eq!(c("[-0, 0, 7]"), "[0,0,7]");
    }

    #[test]
    fn duplicate_keys_last_wins() {
        assert_eq!(c(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn not_json_is_none() {
        assert_eq!(canonicalize("{"), None);
        assert_eq!(canonicalize(""), None);
    }
}
