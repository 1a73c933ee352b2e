//! Inputs found by fuzzing (fuzz/fuzz_targets/push_body.rs, `bash scripts/fuzz.sh`), kept as
//! native tests. Each test names the bug it covers (K1, K2, described below).

use icc_core::inbox_protocol::CommitRequest;
use icc_core::message_type::{MessageType, Product, TypePin};
use icc_core::normalize::Source;
use icc_core::push::{plan, Arrival};
use icc_core::vendor_time;
use serde_json::{json, Value};
use time::UtcOffset;

fn offset(h: i8, m: i8) -> UtcOffset {
    UtcOffset::from_hms(h, m, 0).expect("valid offset")
}

fn plan_with(product: Product, pin: TypePin, off: UtcOffset, body: &[u8]) -> CommitRequest {
    let address = format!("/icc/{}", product.as_str());
    let a = Arrival {
        product,
        pin,
        stream: "default",
        address: &address,
        received_at_ms: 1_767_225_600_123,
        offset: off,
        source: Source::Push,
        mns_message_id: None,
    };
    plan(body, &a)
}

fn norm(req: &CommitRequest, i: usize) -> Value {
    serde_json::from_str(&req.rows[i].norm).expect("norm is JSON")
}

// ---------------------------------------------------------------------------------------------
// K1: vendor_time renders instants with `OffsetDateTime::to_offset`, which panics with "local
// datetime out of valid range" when the time in the vendor offset falls outside years
// -9999..=9999 (core/src/vendor_time.rs:32 in `format_ms`, :73 in `normalize`'s RFC 3339
// branch). One such value in any time field of any pushed message panics the whole push.
// `checked_to_offset` returning `None` (the field is omitted) avoids it.
// ---------------------------------------------------------------------------------------------

/// 253402300799000 ms = 9999-12-31T23:59:59Z, which is year 10000 at +08:00.
#[test]
fn k1_push_with_epoch_ms_at_end_of_year_9999_plans_without_panic() {
    let body = br#"[{"call_id":"1","caller":"1","start_time":253402300799000}]"#;
    let req = plan_with(Product::Llm, TypePin::Infer, offset(8, 0), body);
    assert_eq!(req.rows.len(), 1);
    assert!(req.quarantine.is_empty());
    assert_eq!(
        norm(&req, 0).get("started_at"),
        None,
        "an unrenderable time is omitted"
    );
}

/// The input the fuzzer found (after 3.4 M executions): selector 0x0e = bot product,
/// `type=RobotCallReportAiccs`, +08:00; a `status_time` of 253402300799999 ms.
#[test]
fn k1_fuzz_found_robot_status_time_at_end_of_year_9999() {
    let body = b"[\n  {     \"status_time\":253402300799999\n}\n]\n";
    let pin = TypePin::Exact(MessageType::RobotCallReportAiccs);
    let req = plan_with(Product::Bot, pin, offset(8, 0), body);
    assert_eq!(req.rows.len(), 1);
    assert!(req.quarantine.is_empty());
    assert_eq!(norm(&req, 0).get("status_at"), None);
}

#[test]
fn k1_vendor_time_epoch_ms_out_of_range_in_offset_is_none() {
    // Number and digit string (vendor_time.rs:32), at the top and bottom of the range.
    assert_eq!(
        vendor_time::normalize(&json!(253402300799000_i64), offset(8, 0)),
        None
    );
    assert_eq!(
        vendor_time::normalize(&json!("253402300799000"), offset(8, 0)),
        None
    );
    // -377705116800000 ms = -9999-01-01T00:00:00Z, which is year -10000 at -05:30.
    assert_eq!(
        vendor_time::normalize(&json!(-377705116800000_i64), offset(-5, -30)),
        None
    );
}

#[test]
fn k1_vendor_time_rfc3339_string_out_of_range_in_offset_is_none() {
    // Valid RFC 3339 whose instant is 10000-01-01T04:59:59Z (12:59:59 at +08:00): vendor_time.rs:73.
    assert_eq!(
        vendor_time::normalize(&json!("9999-12-31T23:59:59-05:00"), offset(8, 0)),
        None
    );
}

#[test]
fn k1_robot_report_info_time_out_of_range_plans_without_panic() {
    let body = br#"{"callId":"1","type":"finish","data":{"info":{"answerTime":253402300799000}}}"#;
    let req = plan_with(Product::Bot, TypePin::Infer, offset(8, 0), body);
    assert_eq!(req.rows.len(), 1);
    assert_eq!(req.rows[0].message_type, "RobotCallReportAiccs");
    assert_eq!(norm(&req, 0).get("started_at"), None);
}

// ---------------------------------------------------------------------------------------------
// K2: an identity component that is a JSON object or array is taken as its raw text
// (identity.rs `scalar_text`), so the same message with other whitespace, or other key order
// inside that value, gets another `id`. README: "The same identity with the same content
// (whatever key order or whitespace) is a duplicate". Found by the fuzzer as the selector 0x04
// (agent, `type=AlicomAgentCallReport`, +08:00) and body `[{"callId":{\n}}]`: its compact form
// `{"callId":{}}` plans to another id. Canonical JSON (RFC 8785) of nested components fixes it.
// ---------------------------------------------------------------------------------------------

fn single_row_id(product: Product, pin: TypePin, body: &[u8]) -> String {
    let req = plan_with(product, pin, offset(8, 0), body);
    assert_eq!(
        req.rows.len(),
        1,
        "one row for {:?}",
        String::from_utf8_lossy(body)
    );
    req.rows[0].id.clone()
}

#[test]
fn k2_identity_ignores_whitespace_inside_nested_call_id() {
    let pin = TypePin::Exact(MessageType::AlicomAgentCallReport);
    let spaced = single_row_id(Product::Agent, pin, b"[{\"callId\":{\n}}]");
    let compact = single_row_id(Product::Agent, pin, b"{\"callId\":{}}");
    assert_eq!(spaced, compact, "same content, other whitespace: same id");

    let spaced = single_row_id(
        Product::Bot,
        TypePin::Infer,
        br#"{"call_id":[1, 2],"callee":"1"}"#,
    );
    let compact = single_row_id(
        Product::Bot,
        TypePin::Infer,
        br#"{"call_id":[1,2],"callee":"1"}"#,
    );
    assert_eq!(spaced, compact, "same content, other whitespace: same id");
}

#[test]
fn k2_identity_ignores_key_order_inside_nested_call_id() {
    let pin = TypePin::Exact(MessageType::AlicomAgentCallReport);
    let a = single_row_id(Product::Agent, pin, br#"{"callId":{"a":1,"b":2}}"#);
    let b = single_row_id(Product::Agent, pin, br#"{"callId":{"b":2,"a":1}}"#);
    assert_eq!(a, b, "same content, other key order: same id");
}
