//! Normalization: one vendor message object → the fields of the normalized receipt v1.
//!
//! The stored receipt is these fields plus `seq` (assigned by the inbox) and `raw` (the message
//! exactly as pushed, kept once). Absent values are omitted, never invented.

use crate::identity::RawFields;
use crate::message_type::{MessageType, Product};
use crate::vendor_time;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::UtcOffset;

/// Where a receipt came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Push,
    Mns,
}

/// Tag values: a text tag or an enum tag (list of strings).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TagValue {
    Text(String),
    List(Vec<String>),
}

/// The normalized receipt without `seq` and `raw`. Field order is the serialized order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Normalized {
    pub schema: u8,
    pub id: String,
    pub stream: String,
    pub product: &'static str,
    #[serde(rename = "type")]
    pub message_type: &'static str,
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub out_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mns_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_msg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub originated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rang_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hangup_by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intents: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, TagValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    pub received_at: String,
}

/// What normalization needs besides the message.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub stream: &'a str,
    pub product: Product,
    pub source: Source,
    pub offset: UtcOffset,
    pub received_at: &'a str,
    pub mns_message_id: Option<&'a str>,
    /// The message's top-level fields as raw JSON, so numbers keep their literal text
    /// (a call id of 21 digits must not pass through a float).
    pub raw_fields: Option<&'a RawFields<'a>>,
}

/// A scalar as text: strings as they are (empty → absent), numbers and booleans by their text.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The first key present with a usable text value; top-level numbers by their literal text.
fn first_text(m: &Map<String, Value>, keys: &[&str], raw: Option<&RawFields>) -> Option<String> {
    keys.iter().find_map(|k| match (m.get(*k), raw) {
        (Some(Value::Number(_)), Some(r)) => Some(r.text(k)),
        (v, _) => text(v),
    })
}

fn first_time(m: &Map<String, Value>, keys: &[&str], offset: UtcOffset) -> Option<String> {
    keys.iter()
        .find_map(|k| m.get(*k).and_then(|v| vendor_time::normalize(v, offset)))
}

/// The largest `duration_s`: 2^53 − 1, the largest integer every JSON reader holds exactly.
pub const MAX_DURATION_S: u64 = (1 << 53) - 1;

/// Integer seconds from a number (`189`, `189.0`) or a string (`"10"`, `" 10 "`). A value that
/// is negative, not finite or above [`MAX_DURATION_S`] is omitted (the raw message keeps it),
/// never saturated.
pub fn duration_seconds(v: Option<&Value>) -> Option<u64> {
    let in_range = |f: &f64| f.is_finite() && (0.0..=MAX_DURATION_S as f64).contains(f);
    let seconds = match v? {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(in_range).map(|f| f as u64)),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<u64>()
                .ok()
                .or_else(|| t.parse::<f64>().ok().filter(in_range).map(|f| f as u64))
        }
        _ => None,
    }?;
    (seconds <= MAX_DURATION_S).then_some(seconds)
}

/// `user` or `machine` from 用户/机器/User/Machine (any case).
pub fn hangup_by(v: Option<&Value>) -> Option<&'static str> {
    let s = match v? {
        Value::String(s) => s.trim().to_lowercase(),
        _ => return None,
    };
    match s.as_str() {
        "用户" | "user" => Some("user"),
        "机器" | "machine" => Some("machine"),
        _ => None,
    }
}

/// Robot `direction`: 1 = customer (user) hung up, 0 = robot (machine), number or string.
fn robot_direction(v: Option<&Value>) -> Option<&'static str> {
    match text(v)?.trim() {
        "1" => Some("user"),
        "0" => Some("machine"),
        _ => hangup_by(v),
    }
}

fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::Array(items) => Some(items.iter().filter_map(|i| text(Some(i))).collect()),
        Value::String(s) => Some(
            s.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

fn output_tags(v: Option<&Value>) -> Option<BTreeMap<String, TagValue>> {
    let map = match v? {
        Value::Object(m) => m.clone(),
        // Some senders put the object in a JSON string.
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            _ => return None,
        },
        _ => return None,
    };
    let tags: BTreeMap<String, TagValue> = map
        .iter()
        .filter_map(|(k, v)| {
            let tv = match v {
                Value::Array(_) => TagValue::List(string_list(Some(v))?),
                other => TagValue::Text(text(Some(other))?),
            };
            Some((k.clone(), tv))
        })
        .collect();
    (!tags.is_empty()).then_some(tags)
}

fn transcript(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Array(_) | Value::Object(_) => v.map(Value::to_string),
        _ => None,
    }
}

/// Normalizes one message of type `t`; `id` is its identity (see [`crate::identity`]).
pub fn normalize(t: MessageType, id: String, m: &Map<String, Value>, cx: &Context) -> Normalized {
    let off = cx.offset;
    let raw = cx.raw_fields;
    let mut n = Normalized {
        schema: 1,
        id,
        stream: cx.stream.to_owned(),
        product: cx.product.as_str(),
        message_type: t.as_str(),
        source: cx.source,
        call_id: first_text(m, &["call_id", "callId"], raw),
        out_id: first_text(m, &["out_id", "outId"], raw),
        task_id: first_text(m, &["task_id", "taskId"], raw),
        batch_id: first_text(m, &["task_batch_id", "batch_id", "batchId"], raw),
        detail_id: first_text(m, &["task_detail_id", "detail_id", "detailId"], raw),
        mns_message_id: cx.mns_message_id.map(str::to_owned),
        status_code: first_text(m, &["status_code", "statusCode"], raw),
        status: first_text(m, &["smart_status_code", "smartStatusCode"], raw),
        status_msg: first_text(m, &["status_msg", "statusMsg"], raw),
        caller: first_text(m, &["caller"], raw),
        callee: first_text(m, &["callee"], raw),
        originated_at: first_time(m, &["originate_time", "originateTime"], off),
        rang_at: first_time(m, &["ring_time", "ringTime"], off),
        started_at: if t == MessageType::VoiceReportAiccs {
            first_time(m, &["b_start_time", "start_time"], off)
        } else {
            first_time(m, &["start_time", "startTime"], off)
        },
        ended_at: first_time(m, &["end_time", "endTime"], off),
        status_at: first_time(m, &["status_time", "statusTime"], off),
        duration_s: duration_seconds(m.get("duration")),
        hangup_by: hangup_by(
            m.get("hangup_direction")
                .or_else(|| m.get("hangupDirection")),
        ),
        recording_url: first_text(m, &["record_file", "recordFile"], raw),
        intent: first_text(m, &["majorIntent"], raw),
        intents: None,
        tags: output_tags(m.get("outputTags")),
        transcript: transcript(m.get("conversationRecord")),
        received_at: cx.received_at.to_owned(),
    };
    if t == MessageType::RobotCallReportAiccs {
        robot(&mut n, m, off);
    }
    n
}

/// RobotCallReportAiccs keeps its facts under `data.info` and `data.output`.
fn robot(n: &mut Normalized, m: &Map<String, Value>, off: UtcOffset) {
    let data = m.get("data").and_then(Value::as_object);
    let empty = Map::new();
    let info = data
        .and_then(|d| d.get("info"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let output = data
        .and_then(|d| d.get("output"))
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    n.status_code = text(info.get("code"));
    n.caller = text(info.get("callingNo"));
    n.callee = text(info.get("calledNo"));
    n.originated_at = first_time(info, &["startTime"], off);
    n.rang_at = first_time(info, &["ringTime"], off);
    n.started_at = first_time(info, &["answerTime"], off);
    n.ended_at = first_time(info, &["endTime"], off);
    n.duration_s = duration_seconds(info.get("duration"));
    n.hangup_by = robot_direction(info.get("direction"));
    n.intents = string_list(output.get("intentions"));
    n.tags = string_list(output.get("tags").or_else(|| output.get("tag")))
        .filter(|l| !l.is_empty())
        .map(|l| BTreeMap::from([("tags".to_owned(), TagValue::List(l))]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx() -> Context<'static> {
        Context {
            stream: "default",
            product: Product::Llm,
            source: Source::Push,
            offset: vendor_time::parse_offset("+08:00").unwrap_or(UtcOffset::UTC),
            received_at: "2026-01-01T00:00:00.000Z",
            mns_message_id: None,
            raw_fields: None,
        }
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn duration_number_or_string() {
        assert_eq!(duration_seconds(Some(&json!(189))), Some(189));
        assert_eq!(duration_seconds(Some(&json!("10"))), Some(10));
        assert_eq!(duration_seconds(Some(&json!(" 7 "))), Some(7));
        assert_eq!(duration_seconds(Some(&json!(12.0))), Some(12));
        assert_eq!(duration_seconds(Some(&json!(""))), None);
        assert_eq!(duration_seconds(Some(&json!(-3))), None);
        assert_eq!(duration_seconds(Some(&json!("abc"))), None);
        assert_eq!(duration_seconds(None), None);
    }

    #[test]
    fn duration_out_of_range_is_omitted_not_saturated() {
        for v in [
            json!(1e308),
            json!(-1e308),
            json!(18446744073709551615u64),
            json!(9007199254740992u64),
            json!("1e308"),
            json!("18446744073709551616"),
            json!("9007199254740992"),
            json!("NaN"),
            json!("inf"),
            json!(-0.5),
        ] {
            assert_eq!(duration_seconds(Some(&v)), None, "{v}");
        }
        assert_eq!(
            duration_seconds(Some(&json!(9007199254740991u64))),
            Some(MAX_DURATION_S)
        );
        assert_eq!(
            duration_seconds(Some(&json!("9007199254740991"))),
            Some(MAX_DURATION_S)
        );
        assert_eq!(duration_seconds(Some(&json!(0))), Some(0));
    }

    #[test]
    fn hangup_in_both_languages() {
        assert_eq!(hangup_by(Some(&json!("用户"))), Some("user"));
        assert_eq!(hangup_by(Some(&json!("机器"))), Some("machine"));
        assert_eq!(hangup_by(Some(&json!("User"))), Some("user"));
        assert_eq!(hangup_by(Some(&json!("Machine"))), Some("machine"));
        assert_eq!(hangup_by(Some(&json!("someone"))), None);
        assert_eq!(robot_direction(Some(&json!(1))), Some("user"));
        assert_eq!(robot_direction(Some(&json!("0"))), Some("machine"));
        assert_eq!(robot_direction(Some(&json!(7))), None);
    }

    #[test]
    fn empty_times_are_omitted_not_invented() {
        let m = obj(
            json!({"call_id":"1","start_time":"","end_time":"","duration":0,
            "status_code":"200005","status_msg":"无人接听","caller":"1","ring_time":""}),
        );
        let n = normalize(MessageType::LlmSmartCallReport, "x".into(), &m, &cx());
        assert_eq!(n.started_at, None);
        assert_eq!(n.ended_at, None);
        assert_eq!(n.rang_at, None);
        assert_eq!(n.duration_s, Some(0));
        let text = serde_json::to_string(&n).unwrap_or_default();
        assert!(!text.contains("started_at"));
        assert!(!text.contains("null"));
    }

    #[test]
    fn numeric_status_code_becomes_text() {
        let m = obj(json!({"call_id":"1","status_code":200000,"caller":"1"}));
        let n = normalize(MessageType::LlmSmartCallReport, "x".into(), &m, &cx());
        assert_eq!(n.status_code.as_deref(), Some("200000"));
    }

    #[test]
    fn voice_report_answer_time_prefers_b_leg() {
        let m = obj(json!({"call_id":"1","start_time":"2021-04-28 10:00:00",
            "b_start_time":"2021-04-28 10:03:40"}));
        let n = normalize(MessageType::VoiceReportAiccs, "x".into(), &m, &cx());
        assert_eq!(n.started_at.as_deref(), Some("2021-04-28T10:03:40+08:00"));
        let m2 = obj(json!({"call_id":"1","start_time":"2021-04-28 10:00:00","b_start_time":""}));
        let n2 = normalize(MessageType::VoiceReportAiccs, "x".into(), &m2, &cx());
        assert_eq!(n2.started_at.as_deref(), Some("2021-04-28T10:00:00+08:00"));
    }

    #[test]
    fn tags_keep_only_string_values() {
        let m = obj(json!({"callId":"1","outputTags":{"a":"x","b":["y","z"],"c":null,"d":{}}}));
        let n = normalize(MessageType::AlicomAgentCallNote, "x".into(), &m, &cx());
        let tags = n.tags.unwrap_or_default();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags.get("a"), Some(&TagValue::Text("x".into())));
        assert_eq!(
            tags.get("b"),
            Some(&TagValue::List(vec!["y".into(), "z".into()]))
        );
    }

    #[test]
    fn big_numeric_ids_keep_their_literal_text() {
        let json = r#"{"callId":123456789012345678901,"recordFile":"x"}"#;
        let m: Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
        let raw = RawFields::parse(json);
        let mut c = cx();
        c.raw_fields = raw.as_ref();
        let n = normalize(MessageType::AlicomAgentCallRecord, "x".into(), &m, &c);
        assert_eq!(n.call_id.as_deref(), Some("123456789012345678901"));
        let n = normalize(MessageType::AlicomAgentCallRecord, "x".into(), &m, &cx());
        assert_ne!(
            n.call_id.as_deref(),
            Some("123456789012345678901"),
            "through a float without raw"
        );
    }

    #[test]
    fn mns_message_id_only_when_given() {
        let m = obj(json!({"call_id":"1","caller":"1"}));
        let mut c = cx();
        c.source = Source::Mns;
        c.mns_message_id = Some("MID");
        let n = normalize(MessageType::LlmSmartCallReport, "x".into(), &m, &c);
        let v = serde_json::to_value(&n).unwrap_or_default();
        assert_eq!(v["source"], "mns");
        assert_eq!(v["mns_message_id"], "MID");
    }
}
