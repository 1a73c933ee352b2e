//! One batch received from an MNS queue, planned like a push: each message's body decoded
//! (base64 of JSON, or raw JSON), typed by the queue's MessageType, normalized with
//! `source: mns` and its `MessageId`; bodies that are not JSON quarantined. Every receipt handle
//! is deleted only after the inbox has committed the plan.

use super::message_body::{decode_message_body, DecodedBody};
use super::queue_config::QueueBinding;
use super::xml::ReceivedMessage;
use crate::body::{self, Element, Reason};
use crate::inbox_protocol::{CommitRequest, QuarantineItem};
use crate::message_type::{MessageType, TypePin};
use crate::normalize::Source;
use crate::push::{row_for, Arrival};
use time::UtcOffset;

/// The address recorded for receipts and quarantine from a queue.
pub fn address(queue_name: &str) -> String {
    format!("mns:{queue_name}")
}

/// The inbox commit for one received batch, and the receipt handles to delete once it is durable.
pub fn plan_batch(
    binding: &QueueBinding,
    messages: &[ReceivedMessage],
    received_at_ms: i64,
    offset: UtcOffset,
) -> (CommitRequest, Vec<String>) {
    let stream = binding
        .app
        .as_deref()
        .unwrap_or(crate::address::DEFAULT_STREAM);
    let address = address(&binding.queue_name);
    let mut req = CommitRequest::new(stream, &address, received_at_ms);
    let received_at = crate::vendor_time::format_utc_ms(received_at_ms);
    let Some(t) = MessageType::from_name(binding.message_type) else {
        return (req, Vec::new());
    };
    for m in messages {
        let arrival = Arrival {
            product: t.product(),
            pin: TypePin::Exact(t),
            stream,
            address: &address,
            received_at_ms,
            offset,
            source: Source::Mns,
            mns_message_id: Some(&m.message_id),
        };
        match decode_message_body(m.message_body.as_bytes()) {
            DecodedBody::Json { json, .. } => {
                for el in body::parse(json.as_bytes()) {
                    match el {
                        Element::Message(msg) => {
                            req.rows
                                .push(row_for(t, msg.raw, msg.object, &arrival, &received_at))
                        }
                        Element::Bad { reason, raw } => req.quarantine.push(QuarantineItem::new(
                            reason,
                            &address,
                            Some(t.as_str()),
                            raw,
                        )),
                    }
                }
            }
            DecodedBody::NotJson { original, .. } => req.quarantine.push(QuarantineItem::new(
                Reason::NotJson,
                &address,
                Some(t.as_str()),
                &original,
            )),
        }
    }
    let handles = messages.iter().map(|m| m.receipt_handle.clone()).collect();
    (req, handles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn msg(id: &str, body: &str) -> ReceivedMessage {
        ReceivedMessage {
            message_id: id.into(),
            receipt_handle: format!("h-{id}"),
            message_body: body.into(),
            message_body_md5: None,
            enqueue_time_ms: None,
            next_visible_time_ms: None,
            first_dequeue_time_ms: None,
            dequeue_count: Some(1),
            priority: None,
        }
    }

    #[test]
    fn base64_raw_and_not_json() {
        let b = QueueBinding {
            message_type: "LlmSmartCallReport",
            queue_name: "Alicom-Queue-1-LlmSmartCallReport".into(),
            app: Some("shop".into()),
        };
        let json = r#"{"call_id":"1^2","duration":"5","caller":"1"}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        let msgs = [
            msg("M1", &b64),
            msg("M2", r#"{"call_id":"3^4"}"#),
            msg("M3", "%%% not json"),
        ];
        let (req, handles) = plan_batch(&b, &msgs, 0, UtcOffset::UTC);
        assert_eq!(req.stream, "shop");
        assert_eq!(req.rows.len(), 2);
        assert_eq!(req.rows[0].raw, json);
        assert!(req.rows[0].norm.contains(r#""source":"mns""#));
        assert!(req.rows[0].norm.contains(r#""mns_message_id":"M1""#));
        assert_eq!(req.rows[1].message_type, "LlmSmartCallReport");
        assert_eq!(req.quarantine.len(), 1);
        assert_eq!(req.quarantine[0].reason, "not_json");
        assert_eq!(
            req.quarantine[0].address,
            "mns:Alicom-Queue-1-LlmSmartCallReport"
        );
        assert_eq!(handles, ["h-M1", "h-M2", "h-M3"]);
    }

    #[test]
    fn same_receipt_by_push_and_mns_has_one_identity() {
        let b = QueueBinding {
            message_type: "VoiceReportAiccs",
            queue_name: "q".into(),
            app: None,
        };
        let json = r#"{"call_id":"9^9","voice_type":"voice","duration":"1"}"#;
        let (mns, _) = plan_batch(&b, &[msg("M", json)], 0, UtcOffset::UTC);
        let push = crate::push::plan(
            format!("[{json}]").as_bytes(),
            &Arrival {
                product: crate::message_type::Product::Bot,
                pin: TypePin::Infer,
                stream: "default",
                address: "/icc/bot",
                received_at_ms: 0,
                offset: UtcOffset::UTC,
                source: Source::Push,
                mns_message_id: None,
            },
        );
        assert_eq!(mns.rows[0].id, push.rows[0].id);
        assert_eq!(mns.rows[0].hash, push.rows[0].hash);
    }
}
