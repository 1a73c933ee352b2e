//! The keys ICC documents for each message type, one table per product, and the sparse-message
//! rule built on them (SPEC.md, "Sparse messages").
//!
//! ICC omits keys as often as it sends them empty, so a message is typed by which documented
//! keys it carries, not by a few keys it must carry:
//!
//! - a key decides only when it is documented by some type of the product and is not one of the
//!   product's shared keys (the call id, out id, task/batch/detail ids); other keys are ignored;
//! - a type *fits* when it documents every deciding key of the message;
//! - exactly one fitting type: that type;
//! - more than one: the product's report type, if it fits and the message carries a status field
//!   (`status_code`, `statusCode`, `status_msg`, `smart_status_code`, `smartStatusCode`) that the
//!   product documents;
//! - otherwise (no fitting type, or still ambiguous): no type, the message is `unknown_shape`.
//!
//! The per-message work is one binary search per key in a precomputed key → type-bitmask index,
//! and no allocation.

use crate::message_type::{MessageType, Product};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// The keys of one product's message types, as ICC documents them.
struct ProductKeys {
    /// Each type with every top-level key its documentation lists (field tables and samples,
    /// HTTP and MNS pages).
    types: &'static [(MessageType, &'static [&'static str])],
    /// Keys that decide nothing: identifiers every type of the product carries.
    shared: &'static [&'static str],
    /// The type that wins a tie when a status field is present.
    report: MessageType,
}

/// The status fields that break a tie in favour of the product's report type.
pub const STATUS_FIELDS: [&str; 5] = [
    "status_code",
    "statusCode",
    "status_msg",
    "smart_status_code",
    "smartStatusCode",
];

const LLM: ProductKeys = ProductKeys {
    types: &[
        // ICC's documentation of LlmSmartCall, the call record (LlmSmartCallReport).
        (
            MessageType::LlmSmartCallReport,
            &[
                "call_id",
                "start_time",
                "end_time",
                "duration",
                "status_code",
                "status_msg",
                "out_id",
                "caller",
                "callee",
                "hangup_direction",
                "toll_type",
                "originate_time",
                "ring_time",
                "smart_status_code",
            ],
        ),
        // ICC's documentation of LlmSmartCall, the recording (LlmSmartCallRecord); the MNS page
        // adds the task ids.
        (
            MessageType::LlmSmartCallRecord,
            &[
                "call_id",
                "start_time",
                "end_time",
                "duration",
                "status_code",
                "record_file",
                "out_id",
                "task_id",
                "task_batch_id",
                "task_detail_id",
            ],
        ),
    ],
    shared: &[
        "call_id",
        "out_id",
        "task_id",
        "task_batch_id",
        "task_detail_id",
    ],
    report: MessageType::LlmSmartCallReport,
};

const AGENT: ProductKeys = ProductKeys {
    types: &[
        // ICC's documentation of AlicomAgentCallReport (realCaller on the English page only).
        (
            MessageType::AlicomAgentCallReport,
            &[
                "taskId",
                "detailId",
                "batchId",
                "callId",
                "outId",
                "startTime",
                "endTime",
                "duration",
                "statusCode",
                "smartStatusCode",
                "statusMsg",
                "caller",
                "realCaller",
                "callee",
                "hangupDirection",
                "originateTime",
                "ringTime",
                "bRingTime",
                "bStartTime",
                "bEndTime",
                "bDuration",
                "bOriginateTime",
            ],
        ),
        // ICC's documentation of AlicomAgentCallRecord.
        (
            MessageType::AlicomAgentCallRecord,
            &[
                "callId",
                "duration",
                "endTime",
                "startTime",
                "recordFile",
                "taskId",
                "detailId",
                "batchId",
                "outId",
            ],
        ),
        // ICC's documentation of AlicomAgentCallNote (the English page adds conversationRecord,
        // call_times and realCaller).
        (
            MessageType::AlicomAgentCallNote,
            &[
                "callId",
                "majorIntent",
                "outputTags",
                "taskId",
                "detailId",
                "batchId",
                "outId",
                "conversationRecord",
                "call_times",
                "realCaller",
            ],
        ),
    ],
    shared: &["callId", "outId", "taskId", "batchId", "detailId"],
    report: MessageType::AlicomAgentCallReport,
};

const BOT: ProductKeys = ProductKeys {
    types: &[
        // ICC's documentation of VoiceReportAiccs; the MNS page adds start_time,
        // early_media_code, hangup_direction, dtmf and dialog_id.
        (
            MessageType::VoiceReportAiccs,
            &[
                "status_code",
                "callee",
                "ring_time",
                "duration",
                "voice_type",
                "originate_time",
                "b_start_time",
                "end_time",
                "call_id",
                "caller",
                "status_msg",
                "out_id",
                "toll_type",
                "start_time",
                "early_media_code",
                "hangup_direction",
                "dtmf",
                "dialog_id",
            ],
        ),
        // ICC's documentation of VoiceCallReportAiccs; the MNS page adds dtmf.
        (
            MessageType::VoiceCallReportAiccs,
            &["call_id", "status_code", "status_time", "out_id", "dtmf"],
        ),
        // ICC's documentation of VoiceRecordReportAiccs.
        (
            MessageType::VoiceRecordReportAiccs,
            &[
                "call_id",
                "start_time",
                "end_time",
                "duration",
                "status_code",
                "record_file",
                "out_id",
                "record_begin_time",
            ],
        ),
        // ICC's documentation of RobotCallReportAiccs (top level; its sample also carries
        // partnerId and type).
        (
            MessageType::RobotCallReportAiccs,
            &["callId", "data", "robotId", "partnerId", "type"],
        ),
    ],
    // The voice types spell the call id `call_id`, the robot report `callId`: both are the call id.
    shared: &["call_id", "callId", "out_id"],
    report: MessageType::VoiceReportAiccs,
};

fn keys_of(product: Product) -> &'static ProductKeys {
    match product {
        Product::Llm => &LLM,
        Product::Agent => &AGENT,
        Product::Bot => &BOT,
    }
}

/// Every key ICC documents for `t`.
pub fn documented_keys(t: MessageType) -> &'static [&'static str] {
    keys_of(t.product())
        .types
        .iter()
        .find(|(ty, _)| *ty == t)
        .map_or(&[], |(_, keys)| *keys)
}

/// The keys of `product` that decide nothing (its identifiers).
pub fn shared_keys(product: Product) -> &'static [&'static str] {
    keys_of(product).shared
}

/// Set on a key that is one of [`STATUS_FIELDS`]; the low bits are the types (in the order of the
/// product's table) that document the key.
const STATUS_BIT: u8 = 0x80;

/// One product's deciding keys, sorted, each with its type bitmask.
type Index = Vec<(&'static str, u8)>;

fn build_index(pk: &ProductKeys) -> Index {
    let mut index: Index = Vec::new();
    for (bit, (_, keys)) in pk.types.iter().enumerate() {
        for key in keys.iter().filter(|k| !pk.shared.contains(k)) {
            let mask = 1u8 << bit;
            match index.iter_mut().find(|(k, _)| k == key) {
                Some(entry) => entry.1 |= mask,
                None => index.push((key, mask)),
            }
        }
    }
    for entry in index.iter_mut() {
        if STATUS_FIELDS.contains(&entry.0) {
            entry.1 |= STATUS_BIT;
        }
    }
    index.sort_unstable_by(|a, b| a.0.cmp(b.0));
    index
}

fn index_of(product: Product) -> &'static [(&'static str, u8)] {
    static LLM_INDEX: OnceLock<Index> = OnceLock::new();
    static AGENT_INDEX: OnceLock<Index> = OnceLock::new();
    static BOT_INDEX: OnceLock<Index> = OnceLock::new();
    let cell = match product {
        Product::Llm => &LLM_INDEX,
        Product::Agent => &AGENT_INDEX,
        Product::Bot => &BOT_INDEX,
    };
    cell.get_or_init(|| build_index(keys_of(product)))
}

/// The sparse-message rule: the type of `msg` within `product`, or `None` when its keys fit no
/// type or stay ambiguous.
pub fn infer_sparse(product: Product, msg: &Map<String, Value>) -> Option<MessageType> {
    let pk = keys_of(product);
    let index = index_of(product);
    let all_types = (1u8 << pk.types.len()) - 1;
    let mut fit = all_types;
    let mut status = false;
    for key in msg.keys() {
        if let Ok(i) = index.binary_search_by(|(k, _)| (*k).cmp(key.as_str())) {
            let mask = index.get(i).map_or(all_types, |(_, m)| *m);
            fit &= mask;
            status |= mask & STATUS_BIT != 0;
            if fit == 0 {
                return None;
            }
        }
    }
    let type_at = |bit: u32| pk.types.get(bit as usize).map(|(t, _)| *t);
    if fit.count_ones() == 1 {
        return type_at(fit.trailing_zeros());
    }
    let report_bit = pk
        .types
        .iter()
        .position(|(t, _)| *t == pk.report)
        .map_or(0, |i| 1u8 << i);
    if status && fit & report_bit != 0 {
        Some(pk.report)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_cover_exactly_the_products_types() {
        for p in Product::ALL {
            let listed: Vec<MessageType> = keys_of(p).types.iter().map(|(t, _)| *t).collect();
            assert_eq!(listed, p.types(), "{p:?}");
            assert_eq!(keys_of(p).report.product(), p);
            assert!(
                keys_of(p).types.len() < 8,
                "the type bits must stay below STATUS_BIT"
            );
            for t in p.types() {
                assert!(!documented_keys(*t).is_empty());
            }
        }
    }

    #[test]
    fn index_is_sorted_without_shared_keys() {
        for p in Product::ALL {
            let index = index_of(p);
            assert!(index.windows(2).all(|w| w[0].0 < w[1].0), "{p:?}");
            assert!(index.iter().all(|(k, _)| !shared_keys(p).contains(k)));
            assert!(index.iter().all(|(_, m)| m & !STATUS_BIT != 0));
        }
    }
}
