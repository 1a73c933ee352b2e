//! The nine documented ICC sample pushes, normalized to exact values; each quirk the reference
//! lists has a case; type inference picks the right type for every sample.

use icc_core::inbox_protocol::CommitRequest;
use icc_core::message_type::{MessageType, Product, TypePin};
use icc_core::normalize::Source;
use icc_core::push::{plan, Arrival};
use icc_core::vendor_time::parse_offset;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

macro_rules! fixture {
    ($dir:literal, $name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/icc/",
            $dir,
            "/",
            $name,
            ".json"
        ))
    };
}

const SAMPLES: [(&str, &str, &str); 9] = [
    (
        "llm",
        "LlmSmartCallReport",
        fixture!("llm", "LlmSmartCallReport"),
    ),
    (
        "llm",
        "LlmSmartCallRecord",
        fixture!("llm", "LlmSmartCallRecord"),
    ),
    (
        "agent",
        "AlicomAgentCallReport",
        fixture!("agent", "AlicomAgentCallReport"),
    ),
    (
        "agent",
        "AlicomAgentCallRecord",
        fixture!("agent", "AlicomAgentCallRecord"),
    ),
    (
        "agent",
        "AlicomAgentCallNote",
        fixture!("agent", "AlicomAgentCallNote"),
    ),
    (
        "bot",
        "VoiceReportAiccs",
        fixture!("bot", "VoiceReportAiccs"),
    ),
    (
        "bot",
        "VoiceCallReportAiccs",
        fixture!("bot", "VoiceCallReportAiccs"),
    ),
    (
        "bot",
        "VoiceRecordReportAiccs",
        fixture!("bot", "VoiceRecordReportAiccs"),
    ),
    (
        "bot",
        "RobotCallReportAiccs",
        fixture!("bot", "RobotCallReportAiccs"),
    ),
];

const RECEIVED_MS: i64 = 1_764_000_000_000;

fn push(product: &str, body: &str, pin: Option<&str>) -> CommitRequest {
    let product = Product::from_path(product).expect("product");
    let pin = TypePin::parse(product, pin).expect("pin");
    let address = format!("/icc/{}", product.as_str());
    let arrival = Arrival {
        product,
        pin,
        stream: "default",
        address: &address,
        received_at_ms: RECEIVED_MS,
        offset: parse_offset("+08:00").expect("offset"),
        source: Source::Push,
        mns_message_id: None,
    };
    plan(body.as_bytes(), &arrival)
}

/// The stored receipt (what the fetch API returns) for the single message of `body`.
fn receipt(product: &str, body: &str) -> Value {
    let req = push(product, body, None);
    assert!(
        req.quarantine.is_empty(),
        "quarantined: {:?}",
        req.quarantine
    );
    assert_eq!(req.rows.len(), 1);
    let row = &req.rows[0];
    let text = icc_core::inbox_protocol::Row::assemble(&row.norm, 1, &row.raw);
    serde_json::from_str(&text).expect("assembled receipt is JSON")
}

fn sample(name: &str) -> (&'static str, &'static str) {
    SAMPLES
        .iter()
        .find(|s| s.1 == name)
        .map(|s| (s.0, s.2))
        .expect("sample")
}

/// Checks every expected field and that no other field is present.
fn check(name: &str, expected: Value) {
    let (product, body) = sample(name);
    let got = receipt(product, body);
    let raw: Value = serde_json::from_str::<Vec<Value>>(body).expect("array")[0].clone();
    let mut want = expected;
    let obj = want.as_object_mut().expect("object");
    obj.insert("schema".into(), json!(1));
    obj.insert("seq".into(), json!(1));
    obj.insert("stream".into(), json!("default"));
    obj.insert("product".into(), json!(product));
    obj.insert("type".into(), json!(name));
    obj.insert("source".into(), json!("push"));
    obj.insert("received_at".into(), json!("2025-11-24T16:00:00.000Z"));
    obj.insert("id".into(), json!(expected_id(name, &raw)));
    obj.insert("raw".into(), raw);
    assert_eq!(got, want, "{name}");
}

/// The identity rule of SPEC.md, written out independently of the product: `<type>:` + the first
/// 32 hex digits of SHA-256 over the compact JSON array of the identity components as strings
/// (call id, plus status_code/status_time/dtmf for VoiceCallReportAiccs, call_times for
/// AlicomAgentCallNote, the top-level `type` for RobotCallReportAiccs; a missing one is "").
fn expected_id(name: &str, raw: &Value) -> String {
    let text = |key: &str| match raw.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let call_id = if raw.get("call_id").is_some() {
        text("call_id")
    } else {
        text("callId")
    };
    let mut components = vec![call_id];
    match name {
        "VoiceCallReportAiccs" => {
            components.extend(["status_code", "status_time", "dtmf"].map(text));
        }
        "AlicomAgentCallNote" => components.push(text("call_times")),
        "RobotCallReportAiccs" => components.push(text("type")),
        _ => {}
    }
    let json = serde_json::to_string(&components).expect("components as JSON");
    let digest = Sha256::digest(json.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}:{}", &hex[..32])
}

#[test]
fn expected_id_follows_the_documented_rule() {
    // A worked example of the rule, independent of any fixture: sha256('["a^1"]').
    let want = Sha256::digest(br#"["a^1"]"#);
    let hex: String = want.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        expected_id("LlmSmartCallReport", &json!({"call_id": "a^1"})),
        format!("LlmSmartCallReport:{}", &hex[..32])
    );
    // Extras in order, a missing one as "".
    let want = Sha256::digest(br#"["c^1","200101","2021-04-28 09:55:02",""]"#);
    let hex: String = want.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        expected_id(
            "VoiceCallReportAiccs",
            &json!({"call_id": "c^1", "status_code": "200101", "status_time": "2021-04-28 09:55:02"})
        ),
        format!("VoiceCallReportAiccs:{}", &hex[..32])
    );
}

#[test]
fn llm_smart_call_report() {
    check(
        "LlmSmartCallReport",
        json!({
            "call_id": "147797******^134543******", "out_id": "65178442",
            "status_code": "200000", "status": "ANSWERED", "status_msg": "用户听完语音",
            "caller": "020*****843", "callee": "15*****0614",
            "originated_at": "2025-01-06T17:33:05+08:00", "rang_at": "2025-01-06T17:33:15+08:00",
            "started_at": "2025-01-06T17:33:37+08:00", "ended_at": "2025-01-06T17:36:45+08:00",
            "duration_s": 189, "hangup_by": "user"
        }),
    );
}

#[test]
fn llm_smart_call_record() {
    check(
        "LlmSmartCallRecord",
        json!({
            "call_id": "1480******53^1348******53", "out_id": "outid_******", "status_code": "200003",
            "started_at": "2025-01-15T10:26:58+08:00", "ended_at": "2025-01-15T10:27:54+08:00",
            "duration_s": 50, "recording_url": "http://alicom-fc-record-biz.cn-***********************"
        }),
    );
}

#[test]
fn alicom_agent_call_report() {
    check(
        "AlicomAgentCallReport",
        json!({
            "call_id": "10000161****^1000018****", "out_id": "123456", "task_id": "1181**************",
            "batch_id": "B202******", "detail_id": "9662*************", "status_code": "200010",
            "status": "ANSWERED", "status_msg": "Call ended normally", "caller": "05710000*****",
            "callee": "139********", "originated_at": "2025-06-01T09:59:45+08:00",
            "rang_at": "2025-06-01T09:59:50+08:00", "started_at": "2025-06-01T10:00:00+08:00",
            "ended_at": "2025-06-01T10:05:30+08:00", "duration_s": 330, "hangup_by": "user"
        }),
    );
}

#[test]
fn alicom_agent_call_record() {
    check(
        "AlicomAgentCallRecord",
        json!({
            "call_id": "10000161****^1000018****", "out_id": "123456", "task_id": "1181**************",
            "batch_id": "B202******", "detail_id": "9662*************",
            "started_at": "2025-05-22T12:29:20+08:00", "ended_at": "2025-05-22T12:31:31+08:00",
            "duration_s": 125,
            "recording_url": "http://alicom-fc-record-biz.cn-hangzhou.oss.aliyuncs.com/**********"
        }),
    );
}

#[test]
fn alicom_agent_call_note() {
    // conversationRecord is "" in the sample: no transcript is invented.
    check(
        "AlicomAgentCallNote",
        json!({
            "call_id": "10000161****^1000018****", "out_id": "123456", "task_id": "1181**************",
            "batch_id": "B202******", "detail_id": "9662*************", "intent": "A",
            "tags": {"Interested Vehicle Model": "xx Vehicle Model", "Add WeChat": ["Yes"]}
        }),
    );
}

#[test]
fn voice_report_aiccs() {
    check(
        "VoiceReportAiccs",
        json!({
            "call_id": "122628733198^10942206****", "out_id": "123456", "status_code": "200003",
            "status_msg": "执行完成", "caller": "20200900****", "callee": "130****0000",
            "originated_at": "2021-04-28T10:02:34+08:00", "rang_at": "2021-04-28T10:02:40+08:00",
            "started_at": "2021-04-28T10:03:40+08:00", "ended_at": "2021-04-28T10:03:40+08:00",
            "duration_s": 10
        }),
    );
}

#[test]
fn voice_call_report_aiccs() {
    check(
        "VoiceCallReportAiccs",
        json!({
            "call_id": "100001616500^10000187****", "status_code": "200101",
            "out_id": "PROD#2021042810271227129999192500610008S#new#MYBK****#",
            "status_at": "2021-04-28T09:55:02+08:00"
        }),
    );
}

#[test]
fn voice_record_report_aiccs() {
    check(
        "VoiceRecordReportAiccs",
        json!({
            "call_id": "100001616500^1000018****", "out_id": "123456", "status_code": "200010",
            "started_at": "2017-06-01T10:00:00+08:00", "ended_at": "2017-06-01T10:03:00+08:00",
            "duration_s": 10, "recording_url": "http://xxxx"
        }),
    );
}

#[test]
fn robot_call_report_aiccs() {
    check(
        "RobotCallReportAiccs",
        json!({
            "call_id": "1264306***^113219835***", "status_code": "200000",
            "caller": "05710000****", "callee": "1500000****",
            "originated_at": "2021-12-29T14:23:37+08:00", "rang_at": "2021-12-29T14:23:37+08:00",
            "started_at": "2021-12-29T14:23:46+08:00", "ended_at": "2021-12-29T14:23:54+08:00",
            "duration_s": 9, "hangup_by": "machine", "intents": ["intention1", "intention2"],
            "tags": {"tags": ["tag1", "tag2"]}
        }),
    );
}

#[test]
fn inference_picks_every_sample_type_and_pins_agree() {
    for (product, name, body) in SAMPLES {
        let inferred = push(product, body, None);
        assert_eq!(inferred.rows.len(), 1, "{name}");
        assert_eq!(inferred.rows[0].message_type, name);
        let pinned = push(product, body, Some(name));
        assert_eq!(
            pinned.rows[0], inferred.rows[0],
            "{name}: pinning changes nothing"
        );
        // Inference never crosses products: at another product's address a sample is either
        // one of that product's types or quarantined as unknown_shape.
        for other in ["llm", "agent", "bot"].iter().filter(|p| **p != product) {
            let r = push(other, body, None);
            match r.rows.first() {
                Some(row) => {
                    let t = MessageType::from_name(&row.message_type).expect("type");
                    assert_eq!(t.product().as_str(), *other);
                }
                None => assert_eq!(r.quarantine[0].reason, "unknown_shape"),
            }
        }
    }
    // The bot's call-status event at the llm address: status_time is no llm key and is ignored,
    // status_code fits both llm types and, being a status field, makes it the llm report.
    let (_, event) = sample("VoiceCallReportAiccs");
    assert_eq!(
        push("llm", event, None).rows[0].message_type,
        "LlmSmartCallReport"
    );
    // The agent's note at the bot address: only callId (an identifier) is a bot key.
    let (_, note) = sample("AlicomAgentCallNote");
    assert_eq!(
        push("bot", note, None).quarantine[0].reason,
        "unknown_shape"
    );
    let (_, record) = sample("LlmSmartCallRecord");
    let (_, report) = sample("LlmSmartCallReport");
    assert_eq!(
        push("llm", record, Some("LlmSmartCall")).rows[0].message_type,
        "LlmSmartCallRecord"
    );
    assert_eq!(
        push("llm", report, Some("LlmSmartCall")).rows[0].message_type,
        "LlmSmartCallReport"
    );
}

#[test]
fn all_nine_in_one_body_per_product() {
    for product in ["llm", "agent", "bot"] {
        let items: Vec<Value> = SAMPLES
            .iter()
            .filter(|s| s.0 == product)
            .flat_map(|s| serde_json::from_str::<Vec<Value>>(s.2).expect("array"))
            .collect();
        let req = push(product, &serde_json::to_string(&items).expect("json"), None);
        assert_eq!(req.rows.len(), items.len());
        assert!(req.quarantine.is_empty());
    }
}

// ---- quirks ---------------------------------------------------------------------------------

#[test]
fn bare_object_body_is_one_message() {
    let (_, body) = sample("AlicomAgentCallReport");
    let object =
        serde_json::to_string(&serde_json::from_str::<Vec<Value>>(body).expect("array")[0])
            .expect("json");
    let a = push("agent", &object, None);
    let b = push("agent", body, None);
    assert_eq!(a.rows.len(), 1);
    assert_eq!(a.rows[0].id, b.rows[0].id);
    assert_eq!(a.rows[0].hash, b.rows[0].hash);
}

#[test]
fn duration_as_string_or_number() {
    let n = receipt("llm", r#"[{"call_id":"1","duration":"189","caller":"1"}]"#);
    let s = receipt("llm", r#"[{"call_id":"1","duration":189,"caller":"1"}]"#);
    assert_eq!(n["duration_s"], 189);
    assert_eq!(s["duration_s"], 189);
}

#[test]
fn chinese_and_english_hangup_direction() {
    for (v, want) in [
        ("用户", "user"),
        ("机器", "machine"),
        ("User", "user"),
        ("Machine", "machine"),
    ] {
        let r = receipt(
            "llm",
            &format!(r#"[{{"call_id":"1","hangup_direction":"{v}"}}]"#),
        );
        assert_eq!(r["hangup_by"], want, "{v}");
        let a = receipt(
            "agent",
            &format!(r#"[{{"callId":"1","statusCode":"1","hangupDirection":"{v}"}}]"#),
        );
        assert_eq!(a["hangup_by"], want, "{v}");
    }
}

#[test]
fn unconnected_call_has_empty_times_omitted() {
    let r = receipt(
        "llm",
        r#"[{"call_id":"9^9","start_time":"","end_time":"","duration":0,"status_code":"200005",
            "status_msg":"无人接听","caller":"1","callee":"2","hangup_direction":"","ring_time":"",
            "originate_time":"2025-01-06 17:33:05","smart_status_code":"NO_ANSWER"}]"#,
    );
    for absent in ["started_at", "ended_at", "rang_at", "hangup_by"] {
        assert!(r.get(absent).is_none(), "{absent} present");
    }
    assert_eq!(r["originated_at"], "2025-01-06T17:33:05+08:00");
    assert_eq!(r["duration_s"], 0);
    assert_eq!(r["status"], "NO_ANSWER");
}

#[test]
fn robot_epoch_ms_direction_as_string_and_customer_hangup() {
    let r = receipt(
        "bot",
        r#"[{"callId":"1^2","type":"finish","data":{"info":{"answerTime":1640759026000,
            "direction":"1","code":"200000","duration":"9"},"output":{"tags":""}}}]"#,
    );
    assert_eq!(r["started_at"], "2021-12-29T14:23:46+08:00");
    assert_eq!(r["hangup_by"], "user");
    assert_eq!(r["status_code"], "200000");
    assert_eq!(r["duration_s"], 9);
    assert!(r.get("tags").is_none(), "empty tags string gives no tags");
}

#[test]
fn invalid_documented_zh_sample_is_quarantined_not_lost() {
    // The zh VoiceRecordReportAiccs page prints its sample without commas.
    let body = r#"[{"call_id": "100001616500^1000018****" "start_time": "2017-06-01 10:00:00"}]"#;
    let r = push("bot", body, None);
    assert!(r.rows.is_empty());
    assert_eq!(r.quarantine[0].reason, "not_json");
    assert_eq!(r.quarantine[0].raw.as_deref(), Some(body));
}

#[test]
fn partly_bad_body_keeps_its_valid_messages() {
    let (_, body) = sample("LlmSmartCallReport");
    let good = &body.trim()[1..body.trim().len() - 1];
    let mixed = format!(r#"[{good}, 42, {{"nothing":"known"}}]"#);
    let r = push("llm", &mixed, None);
    assert_eq!(r.rows.len(), 1);
    let reasons: Vec<&str> = r.quarantine.iter().map(|q| q.reason.as_str()).collect();
    assert_eq!(reasons, ["not_object", "unknown_shape"]);
    assert_eq!(
        r.quarantine[1].raw.as_deref(),
        Some(r#"{"nothing":"known"}"#)
    );
}

#[test]
fn identity_ignores_key_order_and_whitespace() {
    let (_, body) = sample("LlmSmartCallReport");
    let v: Vec<Value> = serde_json::from_str(body).expect("array");
    let compact = serde_json::to_string(&v).expect("json");
    let mut reordered: Vec<(String, Value)> =
        v[0].as_object().expect("obj").clone().into_iter().collect();
    reordered.reverse();
    let reordered = format!(
        "[ {{ {} }} ]",
        reordered
            .iter()
            .map(|(k, v)| format!("\n  {:?} :  {}", k, v))
            .collect::<Vec<_>>()
            .join(" ,")
    );
    let a = push("llm", body, None);
    let b = push("llm", &compact, None);
    let c = push("llm", &reordered, None);
    assert_eq!(a.rows[0].id, b.rows[0].id);
    assert_eq!(a.rows[0].id, c.rows[0].id);
    assert_eq!(a.rows[0].hash, c.rows[0].hash);
    assert_ne!(
        a.rows[0].raw, c.rows[0].raw,
        "raw keeps the bytes as pushed"
    );
}
