//! Typing of sparse messages (SPEC.md, "Sparse messages"), walked over each type's documented
//! keys and their subsets, with the expected outcome computed here, independently of the core:
//! the key sets are written out again from ICC's documentation, the inference table and the
//! sparse rule are re-stated with plain sets.

use icc_core::message_keys::{documented_keys, shared_keys};
use icc_core::message_type::{infer, MessageType, Product};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

use MessageType::*;

/// ICC's documented top-level keys of each type (HTTP and MNS pages together).
fn doc_keys(t: MessageType) -> &'static [&'static str] {
    match t {
        LlmSmartCallReport => &[
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
        LlmSmartCallRecord => &[
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
        AlicomAgentCallReport => &[
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
        AlicomAgentCallRecord => &[
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
        AlicomAgentCallNote => &[
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
        VoiceReportAiccs => &[
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
        VoiceCallReportAiccs => &["call_id", "status_code", "status_time", "out_id", "dtmf"],
        VoiceRecordReportAiccs => &[
            "call_id",
            "start_time",
            "end_time",
            "duration",
            "status_code",
            "record_file",
            "out_id",
            "record_begin_time",
        ],
        RobotCallReportAiccs => &["callId", "data", "robotId", "partnerId", "type"],
    }
}

/// The identifiers that decide nothing, per product.
fn ids(p: Product) -> &'static [&'static str] {
    match p {
        Product::Llm => &[
            "call_id",
            "out_id",
            "task_id",
            "task_batch_id",
            "task_detail_id",
        ],
        Product::Agent => &["callId", "outId", "taskId", "batchId", "detailId"],
        Product::Bot => &["call_id", "callId", "out_id"],
    }
}

fn report(p: Product) -> MessageType {
    match p {
        Product::Llm => LlmSmartCallReport,
        Product::Agent => AlicomAgentCallReport,
        Product::Bot => VoiceReportAiccs,
    }
}

const STATUS: [&str; 5] = [
    "status_code",
    "statusCode",
    "status_msg",
    "smart_status_code",
    "smartStatusCode",
];

/// SPEC.md's inference table, first matching row wins.
fn table(p: Product, keys: &BTreeSet<&str>) -> Option<MessageType> {
    let has = |k: &str| keys.contains(k);
    let any = |ks: &[&str]| ks.iter().any(|k| keys.contains(k));
    match p {
        Product::Llm if has("record_file") => Some(LlmSmartCallRecord),
        Product::Llm
            if any(&[
                "status_msg",
                "smart_status_code",
                "hangup_direction",
                "caller",
            ]) =>
        {
            Some(LlmSmartCallReport)
        }
        Product::Agent if any(&["majorIntent", "outputTags", "conversationRecord"]) => {
            Some(AlicomAgentCallNote)
        }
        Product::Agent if has("recordFile") => Some(AlicomAgentCallRecord),
        Product::Agent if any(&["statusCode", "smartStatusCode", "callee"]) => {
            Some(AlicomAgentCallReport)
        }
        Product::Bot if has("data") && has("callId") => Some(RobotCallReportAiccs),
        Product::Bot if has("status_time") => Some(VoiceCallReportAiccs),
        Product::Bot if has("record_file") => Some(VoiceRecordReportAiccs),
        Product::Bot
            if has("call_id") && any(&["voice_type", "b_start_time", "status_msg", "callee"]) =>
        {
            Some(VoiceReportAiccs)
        }
        _ => None,
    }
}

/// The types of `p` whose documented keys hold every deciding key of the message.
fn fitting(p: Product, keys: &BTreeSet<&str>) -> Vec<MessageType> {
    let documented: BTreeSet<&str> = p
        .types()
        .iter()
        .flat_map(|t| doc_keys(*t))
        .copied()
        .collect();
    let deciding: Vec<&str> = keys
        .iter()
        .filter(|k| documented.contains(*k) && !ids(p).contains(*k))
        .copied()
        .collect();
    p.types()
        .iter()
        .copied()
        .filter(|t| deciding.iter().all(|k| doc_keys(*t).contains(k)))
        .collect()
}

/// The sparse rule, with sets.
fn sparse(p: Product, keys: &BTreeSet<&str>) -> Option<MessageType> {
    let fits = fitting(p, keys);
    let documented = |k: &str| p.types().iter().any(|t| doc_keys(*t).contains(&k));
    let status = keys.iter().any(|k| STATUS.contains(k) && documented(k));
    match fits.as_slice() {
        [one] => Some(*one),
        [] => None,
        _ if status && fits.contains(&report(p)) => Some(report(p)),
        _ => None,
    }
}

fn expected(p: Product, keys: &BTreeSet<&str>) -> Option<MessageType> {
    table(p, keys).or_else(|| sparse(p, keys))
}

fn message(keys: &BTreeSet<&str>) -> Map<String, Value> {
    keys.iter()
        .map(|k| (k.to_string(), Value::String(String::new())))
        .collect()
}

/// What a walk saw, to prove it exercised every branch of the rule.
#[derive(Default, Debug)]
struct Seen {
    cases: usize,
    by_table: BTreeMap<MessageType, usize>,
    by_sparse_only: BTreeMap<MessageType, usize>,
    tie_to_report: usize,
    unknown: usize,
}

fn check(p: Product, keys: &BTreeSet<&str>, seen: &mut Seen) {
    let want = expected(p, keys);
    let got = infer(p, &message(keys));
    assert_eq!(got, want, "{p:?} {keys:?}");
    seen.cases += 1;
    match (table(p, keys), want) {
        (Some(t), _) => *seen.by_table.entry(t).or_default() += 1,
        (None, Some(t)) => {
            *seen.by_sparse_only.entry(t).or_default() += 1;
            let fits_several = fitting(p, keys).len() > 1;
            if fits_several {
                seen.tie_to_report += 1;
            }
        }
        (None, None) => seen.unknown += 1,
    }
}

/// Every subset of `keys` (small sets only).
fn all_subsets<'a>(keys: &[&'a str]) -> Vec<BTreeSet<&'a str>> {
    assert!(keys.len() <= 14, "too many keys for all subsets");
    (0u32..1 << keys.len())
        .map(|bits| {
            keys.iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, k)| *k)
                .collect()
        })
        .collect()
}

/// A systematic sample: every single key, every pair, every triple, the full set, the full set
/// minus each key and minus each pair.
fn sampled_subsets<'a>(keys: &[&'a str]) -> Vec<BTreeSet<&'a str>> {
    let full: BTreeSet<&str> = keys.iter().copied().collect();
    let mut out = vec![BTreeSet::new(), full.clone()];
    for (i, a) in keys.iter().enumerate() {
        out.push([*a].into());
        let mut minus = full.clone();
        minus.remove(a);
        out.push(minus);
        for (j, b) in keys.iter().enumerate().skip(i + 1) {
            out.push([*a, *b].into());
            let mut minus2 = full.clone();
            minus2.remove(a);
            minus2.remove(b);
            out.push(minus2);
            for c in keys.iter().skip(j + 1) {
                out.push([*a, *b, *c].into());
            }
        }
    }
    out
}

fn subsets<'a>(keys: &[&'a str]) -> Vec<BTreeSet<&'a str>> {
    if keys.len() <= 14 {
        all_subsets(keys)
    } else {
        sampled_subsets(keys)
    }
}

/// Walks each type of `p`: its documented keys' subsets, alone, with a key no type documents and
/// with a key another product documents; then every pair and triple across the product's types.
fn walk(p: Product) -> Seen {
    let mut seen = Seen::default();
    for t in p.types() {
        for keys in subsets(doc_keys(*t)) {
            check(p, &keys, &mut seen);
            for extra in [
                "not_documented_anywhere",
                "recordFile",
                "record_file",
                "callId",
            ] {
                let mut more = keys.clone();
                more.insert(extra);
                check(p, &more, &mut seen);
            }
        }
    }
    let union: Vec<&str> = p
        .types()
        .iter()
        .flat_map(|t| doc_keys(*t))
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for (i, a) in union.iter().enumerate() {
        for (j, b) in union.iter().enumerate().skip(i + 1) {
            check(p, &[*a, *b].into(), &mut seen);
            for c in union.iter().skip(j + 1) {
                check(p, &[*a, *b, *c].into(), &mut seen);
            }
        }
    }
    // Every type is reached, the rule types messages the table leaves untyped, ties are broken
    // and some messages stay unknown.
    for t in p.types() {
        let n = seen.by_table.get(t).unwrap_or(&0) + seen.by_sparse_only.get(t).unwrap_or(&0);
        assert!(n > 0, "{t:?} never reached: {seen:?}");
    }
    assert!(!seen.by_sparse_only.is_empty(), "{seen:?}");
    assert!(seen.unknown > 0, "{seen:?}");
    seen
}

#[test]
fn llm_sparse_typing_walk() {
    let seen = walk(Product::Llm);
    assert!(seen.cases > 16_384, "{seen:?}");
    // The recording's only key of its own is record_file, which the table already reads.
    assert_eq!(
        seen.by_sparse_only.keys().collect::<Vec<_>>(),
        [&LlmSmartCallReport]
    );
}

#[test]
fn agent_sparse_typing_walk() {
    let seen = walk(Product::Agent);
    assert!(seen.cases > 1_024, "{seen:?}");
    // statusCode and smartStatusCode belong to the report alone: no tie is left to break.
    assert_eq!(seen.tie_to_report, 0, "{seen:?}");
}

#[test]
fn bot_sparse_typing_walk() {
    let seen = walk(Product::Bot);
    assert!(seen.cases > 256, "{seen:?}");
    assert!(seen.tie_to_report > 0, "{seen:?}");
}

#[test]
fn the_core_documents_the_same_keys() {
    for t in MessageType::ALL {
        let core: BTreeSet<&str> = documented_keys(t).iter().copied().collect();
        let here: BTreeSet<&str> = doc_keys(t).iter().copied().collect();
        assert_eq!(core, here, "{t:?}");
        assert_eq!(
            core.len(),
            documented_keys(t).len(),
            "{t:?} lists a key twice"
        );
    }
    for p in Product::ALL {
        let core: BTreeSet<&str> = shared_keys(p).iter().copied().collect();
        let here: BTreeSet<&str> = ids(p).iter().copied().collect();
        assert_eq!(core, here, "{p:?}");
    }
}

fn typed(p: Product, keys: &[&str]) -> Option<MessageType> {
    infer(p, &message(&keys.iter().copied().collect()))
}

#[test]
fn worked_examples() {
    // A report with only its call id, status code and end time is still a report (SPEC's example):
    // both llm types document those keys, and status_code breaks the tie.
    assert_eq!(
        typed(Product::Llm, &["call_id", "status_code", "end_time"]),
        Some(LlmSmartCallReport)
    );
    // The same without a status field stays ambiguous.
    assert_eq!(
        typed(Product::Llm, &["call_id", "end_time", "duration"]),
        None
    );
    // Identifiers decide nothing: task ids do not make a recording.
    assert_eq!(typed(Product::Llm, &["call_id", "task_id", "out_id"]), None);
    assert_eq!(
        typed(Product::Llm, &["call_id", "task_id", "ring_time"]),
        Some(LlmSmartCallReport)
    );
    assert_eq!(
        typed(
            Product::Llm,
            &["call_id", "toll_type", "task_id", "start_time"]
        ),
        Some(LlmSmartCallReport)
    );
    assert_eq!(
        typed(Product::Agent, &["callId", "bStartTime"]),
        Some(AlicomAgentCallReport)
    );
    assert_eq!(
        typed(Product::Agent, &["callId", "call_times"]),
        Some(AlicomAgentCallNote)
    );
    assert_eq!(typed(Product::Agent, &["callId", "realCaller"]), None); // report and note
    assert_eq!(
        typed(Product::Agent, &["callId", "duration", "endTime"]),
        None
    ); // report and record
       // Keys of two types together fit neither.
    assert_eq!(
        typed(Product::Agent, &["callId", "bStartTime", "call_times"]),
        None
    );
    assert_eq!(
        typed(Product::Bot, &["call_id", "record_begin_time"]),
        Some(VoiceRecordReportAiccs)
    );
    assert_eq!(
        typed(Product::Bot, &["call_id", "dialog_id"]),
        Some(VoiceReportAiccs)
    );
    assert_eq!(
        typed(Product::Bot, &["callId", "robotId"]),
        Some(RobotCallReportAiccs)
    );
    assert_eq!(
        typed(Product::Bot, &["call_id", "status_code"]),
        Some(VoiceReportAiccs)
    );
    assert_eq!(typed(Product::Bot, &["call_id", "dtmf"]), None); // report and call-status event
    assert_eq!(
        typed(Product::Bot, &["call_id", "duration", "end_time"]),
        None
    ); // report and recording
       // Keys no type of the product documents are ignored, also keys of another product.
    assert_eq!(
        typed(Product::Bot, &["call_id", "voice_type", "recordFile"]),
        Some(VoiceReportAiccs)
    );
    assert_eq!(
        typed(Product::Bot, &["call_id", "recordFile", "majorIntent"]),
        None
    );
    // The table stays first: record_file with a report key is a recording, as before.
    assert_eq!(
        typed(Product::Llm, &["call_id", "record_file", "caller"]),
        Some(LlmSmartCallRecord)
    );
}
