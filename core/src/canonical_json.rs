//! Canonical JSON (RFC 8785, JCS) computed from a message's raw text, with one deliberate
//! difference: integers keep all their digits. RFC 8785 renders every number through an IEEE
//! double, so 9007199254740993 and 9007199254740992 would canonicalize alike and two different
//! receipts would look like one. Integers within ±2^53 (all real ICC values) render exactly as
//! RFC 8785 renders them; only larger ones differ, and they differ by being exact.

use serde_json::value::RawValue;
use std::borrow::Cow;

/// Canonical text of one JSON value given as raw text; `None` if it is not JSON.
pub fn canonicalize(raw: &str) -> Option<String> {
    let value: &RawValue = serde_json::from_str(raw).ok()?;
    let mut out = String::with_capacity(raw.len());
    write(value.get().trim(), &mut out)?;
    Some(out)
}

/// [`canonicalize`] for text already known to be one valid JSON value (a message `serde_json`
/// has parsed): the same output, without validating it again.
pub(crate) fn canonicalize_valid(raw: &str, out: &mut String) -> Option<()> {
    write(raw.trim(), out)
}

// The writer below works in one pass over text that `serde_json` has already validated (above):
// it only finds where each value ends, never allocates for a member, and copies strings without
// escapes as they are (a valid JSON string without a backslash is already canonical).

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

/// End (one past the closing quote) of the string opening at `i`, and whether it has escapes.
fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        match *b.get(j)? {
            b'"' => return Some((j + 1, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
}

/// End of the value starting at `i` (no leading whitespace).
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i).map(|(e, _)| e),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?.0;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while let Some(&c) = b.get(j) {
                if is_ws(c) || matches!(c, b',' | b']' | b'}') {
                    break;
                }
                j += 1;
            }
            Some(j)
        }
    }
}

struct Member<'a> {
    /// The key unescaped (what is sorted and compared).
    key: Cow<'a, str>,
    /// The key as written, quotes included, when it needs no escaping back.
    raw_key: Option<&'a str>,
    ascii: bool,
    value: &'a str,
}

/// RFC 8785: keys sorted by their UTF-16 code units (for ASCII keys, their bytes).
fn key_order(a: &Member, b: &Member) -> std::cmp::Ordering {
    if a.ascii && b.ascii {
        a.key.as_bytes().cmp(b.key.as_bytes())
    } else {
        a.key.encode_utf16().cmp(b.key.encode_utf16())
    }
}

/// Writes the canonical form of the value `s` (no surrounding whitespace). Every offset below
/// is at an ASCII delimiter, so slicing `s` there is always on a character boundary.
fn write(s: &str, out: &mut String) -> Option<()> {
    let b = s.as_bytes();
    match *b.first()? {
        b'{' => {
            let mut members: Vec<Member> = Vec::new();
            let mut i = skip_ws(b, 1);
            if b.get(i) != Some(&b'}') {
                loop {
                    let (key_end, escaped) = string_end(b, i)?;
                    let raw_key = s.get(i..key_end)?;
                    let key: Cow<str> = if escaped {
                        Cow::Owned(serde_json::from_str::<String>(raw_key).ok()?)
                    } else {
                        Cow::Borrowed(s.get(i + 1..key_end - 1)?)
                    };
                    i = skip_ws(b, key_end);
                    if b.get(i) != Some(&b':') {
                        return None;
                    }
                    i = skip_ws(b, i + 1);
                    let end = value_end(b, i)?;
                    members.push(Member {
                        ascii: key.is_ascii(),
                        key,
                        raw_key: (!escaped).then_some(raw_key),
                        value: s.get(i..end)?,
                    });
                    i = skip_ws(b, end);
                    match b.get(i)? {
                        b',' => i = skip_ws(b, i + 1),
                        b'}' => break,
                        _ => return None,
                    }
                }
            }
            // Stable: members with the same key stay in order, and the last one wins, as when
            // the message is parsed.
            members.sort_by(key_order);
            out.push('{');
            let mut first = true;
            for (n, m) in members.iter().enumerate() {
                if members.get(n + 1).is_some_and(|next| next.key == m.key) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                match m.raw_key {
                    Some(raw) => out.push_str(raw),
                    None => out.push_str(&serde_json::to_string(&m.key).ok()?),
                }
                out.push(':');
                write(m.value, out)?;
            }
            out.push('}');
        }
        b'[' => {
            out.push('[');
            let mut i = skip_ws(b, 1);
            if b.get(i) != Some(&b']') {
                loop {
                    let end = value_end(b, i)?;
                    write(s.get(i..end)?, out)?;
                    i = skip_ws(b, end);
                    match b.get(i)? {
                        b',' => {
                            out.push(',');
                            i = skip_ws(b, i + 1);
                        }
                        b']' => break,
                        _ => return None,
                    }
                }
            }
            out.push(']');
        }
        b'"' => {
            if s.contains('\\') {
                let text: String = serde_json::from_str(s).ok()?;
                out.push_str(&serde_json::to_string(&text).ok()?);
            } else {
                out.push_str(s); // nothing to unescape: already canonical
            }
        }
        b't' | b'f' | b'n' => out.push_str(s),
        _ => out.push_str(&number(s)?),
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

    /// The previous, allocation-heavy form of the writer (members through `RawFields`), kept as
    /// the reference the one-pass writer must match byte for byte.
    fn reference(raw: &str) -> Option<String> {
        fn w(value: &RawValue, out: &mut String) -> Option<()> {
            let t = value.get().trim();
            match t.as_bytes().first()? {
                b'{' => {
                    let mut members = crate::identity::RawFields::parse(t)?.into_entries();
                    members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                    out.push('{');
                    for (i, (k, v)) in members.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&serde_json::to_string(k).ok()?);
                        out.push(':');
                        w(v, out)?;
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
                        w(v, out)?;
                    }
                    out.push(']');
                }
                b'"' => {
                    let s: String = serde_json::from_str(t).ok()?;
                    out.push_str(&serde_json::to_string(&s).ok()?);
                }
                b't' | b'f' | b'n' => out.push_str(t),
                _ => out.push_str(&number(t)?),
            }
            Some(())
        }
        let value: &RawValue = serde_json::from_str(raw).ok()?;
        let mut out = String::new();
        w(value, &mut out)?;
        Some(out)
    }

    /// Deterministic pseudo-random JSON with the awkward parts: escapes in keys and strings,
    /// duplicate keys, keys outside the BMP and above U+E000, whitespace, every number form.
    fn random_json(seed: &mut u64, depth: u32, out: &mut String) {
        fn next(seed: &mut u64, n: u64) -> u64 {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed % n
        }
        const KEYS: [&str; 10] = [
            "a",
            "b",
            "\\u0061",
            "call_id",
            "\\n",
            "\u{1F600}",
            "\u{FB33}",
            "é",
            "\\\"q",
            "A",
        ];
        const SCALARS: [&str; 14] = [
            "0",
            "-0",
            "1.0",
            "2e1",
            "-1.5E-7",
            "123456789012345678901",
            "true",
            "false",
            "null",
            "\"x\"",
            "\"\\u00e9\\t\\/\"",
            "\"\u{1F600}\"",
            "\"\"",
            "4.50",
        ];
        let ws = [" ", "", "\n ", "\t"];
        let kind = if depth == 0 { 2 } else { next(seed, 4) };
        match kind {
            0 => {
                out.push('{');
                out.push_str(ws[next(seed, 4) as usize]);
                for i in 0..next(seed, 6) {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(KEYS[next(seed, 10) as usize]);
                    out.push('"');
                    out.push_str(ws[next(seed, 4) as usize]);
                    out.push(':');
                    random_json(seed, depth - 1, out);
                }
                out.push('}');
            }
            1 => {
                out.push('[');
                for i in 0..next(seed, 4) {
                    if i > 0 {
                        out.push_str(ws[next(seed, 4) as usize]);
                        out.push(',');
                    }
                    random_json(seed, depth - 1, out);
                }
                out.push(']');
            }
            _ => {
                out.push_str(ws[next(seed, 4) as usize]);
                out.push_str(SCALARS[next(seed, 14) as usize]);
                out.push_str(ws[next(seed, 4) as usize]);
            }
        }
    }

    #[test]
    fn one_pass_writer_matches_the_reference() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            let mut s = String::new();
            random_json(&mut seed, 4, &mut s);
            assert_eq!(canonicalize(&s), reference(&s), "{s}");
        }
        for dir in ["llm", "agent", "bot"] {
            let path = format!("{}/../tests/fixtures/icc/{dir}", env!("CARGO_MANIFEST_DIR"));
            for f in std::fs::read_dir(path).expect("fixtures") {
                let text = std::fs::read_to_string(f.expect("entry").path()).expect("read");
                let items: Vec<&RawValue> = serde_json::from_str(&text).expect("array");
                for item in items {
                    let raw = item.get();
                    assert_eq!(canonicalize(raw), reference(raw), "{raw}");
                }
            }
        }
    }

    #[test]
    fn not_json_is_none() {
        assert_eq!(canonicalize("{"), None);
        assert_eq!(canonicalize(""), None);
    }
}
