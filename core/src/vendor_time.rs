//! Vendor timestamps: `yyyy-MM-dd HH:mm:ss` strings in China time (configurable offset) and
//! epoch-millisecond numbers, both rendered as RFC 3339 with the vendor offset.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Parses `+08:00`, `-05:30`, `Z` or `+0800`.
pub fn parse_offset(text: &str) -> Option<UtcOffset> {
    let t = text.trim();
    if t == "Z" || t == "z" {
        return Some(UtcOffset::UTC);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1i8, t.get(1..)?),
        b'-' => (-1i8, t.get(1..)?),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i8 = digits.get(0..2)?.parse().ok()?;
    let m: i8 = digits.get(2..4)?.parse().ok()?;
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// RFC 3339 text of a unix-millisecond instant, shown in `offset`.
pub fn format_ms(epoch_ms: i64, offset: UtcOffset) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000).ok()?;
    t.checked_to_offset(offset)?.format(&Rfc3339).ok()
}

/// RFC 3339 text in UTC with milliseconds, e.g. for `received_at`.
pub fn format_utc_ms(epoch_ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let f =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&f).unwrap_or_default()
}

/// Unix milliseconds of a local `yyyy-MM-dd HH:mm:ss` (or `T` separated) string in `offset`.
pub fn parse_local_ms(text: &str, offset: UtcOffset) -> Option<i64> {
    let f1 = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let f2 = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let t = text.trim();
    let p = PrimitiveDateTime::parse(t, &f1)
        .or_else(|_| PrimitiveDateTime::parse(t, &f2))
        .ok()?;
    let odt = p.assume_offset(offset);
    i64::try_from(odt.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A vendor time value as RFC 3339 in `offset`: local date-time strings, RFC 3339 strings
/// (re-rendered in `offset`), epoch-ms numbers or digit strings. Empty or unreadable: `None`.
pub fn normalize(value: &Value, offset: UtcOffset) -> Option<String> {
    match value {
        Value::Number(n) => format_ms(n.as_i64()?, offset),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return None;
            }
            if t.bytes().all(|b| b.is_ascii_digit()) {
                return format_ms(t.parse().ok()?, offset);
            }
            if let Some(ms) = parse_local_ms(t, offset) {
                return format_ms(ms, offset);
            }
            let odt = OffsetDateTime::parse(t, &Rfc3339).ok()?;
            odt.checked_to_offset(offset)?.format(&Rfc3339).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cst() -> UtcOffset {
        parse_offset("+08:00").unwrap_or(UtcOffset::UTC)
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+08:00"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_offset("+0800"), UtcOffset::from_hms(8, 0, 0).ok());
        assert_eq!(parse_offset("-05:30"), UtcOffset::from_hms(-5, -30, 0).ok());
        assert_eq!(parse_offset("Z"), Some(UtcOffset::UTC));
        assert_eq!(parse_offset("8"), None);
        assert_eq!(parse_offset("+8:00"), None);
        assert_eq!(parse_offset(""), None);
    }

    #[test]
    fn local_strings_are_china_time() {
        assert_eq!(
            normalize(&json!("2025-01-06 17:33:37"), cst()).as_deref(),
            Some("2025-01-06T17:33:37+08:00")
        );
        let utc = UtcOffset::UTC;
        assert_eq!(
            normalize(&json!("2025-01-06 17:33:37"), utc).as_deref(),
            Some("2025-01-06T17:33:37Z")
        );
    }

    #[test]
    fn epoch_ms_rendered_in_vendor_offset() {
        assert_eq!(
            normalize(&json!(1640759026000_i64), cst()).as_deref(),
            Some("2021-12-29T14:23:46+08:00")
        );
        assert_eq!(
            normalize(&json!("1640759026000"), cst()).as_deref(),
            Some("2021-12-29T14:23:46+08:00")
        );
    }

    #[test]
    fn empty_and_garbage_are_absent() {
        assert_eq!(normalize(&json!(""), cst()), None);
        assert_eq!(normalize(&json!("  "), cst()), None);
        assert_eq!(normalize(&json!("yesterday"), cst()), None);
        assert_eq!(normalize(&json!(null), cst()), None);
        assert_eq!(normalize(&json!("2025-13-45 99:00:00"), cst()), None);
    }

    #[test]
    fn utc_received_at() {
        assert_eq!(format_utc_ms(1640759026123), "2021-12-29T06:23:46.123Z");
    }
}
