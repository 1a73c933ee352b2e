//! Quarantine redrive: a quarantined piece re-planned with today's rules (or an explicit type)
//! and committed like a push. This module holds the pure part: the query of both routes, where
//! an item came from (its address → product, stream and how it was carried), the type pin it is
//! re-planned with, the plan itself, and how one commit's result reads as the item's outcome.

use crate::address::PushAddress;
use crate::body::Reason;
use crate::error::ApiError;
use crate::fetch_query::pairs;
use crate::inbox_protocol::{CommitRequest, CommitResult};
use crate::message_type::{MessageType, Product, TypePin};
use crate::mns::message_body::{decode_message_body, DecodedBody};
use crate::normalize::Source;
use crate::push::{self, Arrival};
use serde::{Deserialize, Serialize};
use time::UtcOffset;

/// Items redriven by one bulk call at most.
pub const BATCH_ITEMS: u32 = 100;
/// Stored bytes redriven by one bulk call at most (at least one item is).
pub const BATCH_BYTES: usize = 2 * 1024 * 1024;

/// Reasons of pieces that can be redriven, and `too_large`, which cannot (its stub holds only
/// the head of the body).
pub const REASONS: [Reason; 5] = [
    Reason::NotJson,
    Reason::NotObject,
    Reason::UnknownShape,
    Reason::ConflictingDuplicate,
    Reason::TooLarge,
];

/// A reason by its name in the quarantine listing.
pub fn reason(name: &str) -> Option<Reason> {
    REASONS.into_iter().find(|r| r.as_str() == name)
}

fn single_value<'a>(p: &'a [(String, String)], key: &str) -> Result<Option<&'a str>, ApiError> {
    let mut found = p.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let first = found.next();
    if found.next().is_some() {
        return Err(ApiError::bad(format!("{key} given more than once")));
    }
    Ok(first)
}

fn known_only(p: &[(String, String)], known: &[&str]) -> Result<(), ApiError> {
    match p.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(ApiError::bad(format!("unknown parameter {k:?}"))),
        None => Ok(()),
    }
}

/// A `type=` value: a type name (checked against each item's product later) or `LlmSmartCall`.
fn type_param(p: &[(String, String)]) -> Result<Option<String>, ApiError> {
    match single_value(p, "type")? {
        None => Ok(None),
        Some(t) if t == "LlmSmartCall" || MessageType::from_name(t).is_some() => {
            Ok(Some(t.to_owned()))
        }
        Some(t) => Err(ApiError::bad(format!("unknown type {t:?}"))),
    }
}

/// `POST …/quarantine/{seq}/redrive[?type=]` → the type asked for.
pub fn single_query(query: &str) -> Result<Option<String>, ApiError> {
    let p = pairs(query);
    known_only(&p, &["type"])?;
    type_param(&p)
}

/// What a bulk redrive asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkQuery {
    pub reason: Reason,
    pub type_name: Option<String>,
    pub after: i64,
}

/// `POST …/quarantine/redrive?reason=<reason>[&type=][&after=]`. `too_large` is refused
/// (`409 incomplete`): none of its stubs can be redriven.
pub fn bulk_query(query: &str) -> Result<BulkQuery, ApiError> {
    let p = pairs(query);
    known_only(&p, &["reason", "type", "after"])?;
    let reason = match single_value(&p, "reason")? {
        None => return Err(ApiError::bad("reason is required")),
        Some(r) => self::reason(r).ok_or_else(|| ApiError::bad(format!("unknown reason {r:?}")))?,
    };
    let after = match single_value(&p, "after")? {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::bad("after must be a non-negative integer"))?,
    };
    let type_name = type_param(&p)?;
    if reason == Reason::TooLarge {
        return Err(ApiError::Incomplete);
    }
    Ok(BulkQuery {
        reason,
        type_name,
        after,
    })
}

/// A stored piece's bytes from its stored text (`encoding` `text` or `base64`).
pub fn item_bytes(encoding: &str, data: String) -> Option<Vec<u8>> {
    use base64::Engine;
    match encoding {
        "base64" => base64::engine::general_purpose::STANDARD.decode(data).ok(),
        _ => Some(data.into_bytes()),
    }
}

/// Where a quarantined piece came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub product: Product,
    /// The stream of a push address; `None` for a queue (the inbox's own stream).
    pub stream: Option<String>,
    pub source: Source,
    /// The pin without `type=`: infer for a push, the queue's type for MNS.
    pub default_pin: TypePin,
}

/// The origin of an item by its address (`/icc/{product}[/{app}]` or `mns:<queue>`) and the
/// type it was quarantined with (a queue's items carry the queue's type). `None`: unknown.
pub fn origin(address: &str, stored_type: Option<&str>) -> Option<Origin> {
    if let Some(rest) = address.strip_prefix("/icc/") {
        let a = PushAddress::parse(rest, None)?;
        return Some(Origin {
            product: a.product,
            stream: Some(a.stream().to_owned()),
            source: Source::Push,
            default_pin: TypePin::Infer,
        });
    }
    let queue = address.strip_prefix("mns:")?;
    // A queue's items carry its type; else the queue name's last part may name it.
    let t = stored_type
        .and_then(MessageType::from_name)
        .or_else(|| queue.rsplit('-').next().and_then(MessageType::from_name))?;
    Some(Origin {
        product: t.product(),
        stream: None,
        source: Source::Mns,
        default_pin: TypePin::Exact(t),
    })
}

/// The pin to re-plan with: `type=` when given (it must belong to the item's product), else the
/// origin's own.
pub fn pin(origin: &Origin, type_name: Option<&str>) -> Result<TypePin, ApiError> {
    match type_name {
        None => Ok(origin.default_pin),
        Some(name) => TypePin::parse(origin.product, Some(name)).ok_or_else(|| {
            ApiError::bad(format!(
                "type {name:?} does not belong to product {}",
                origin.product.as_str()
            ))
        }),
    }
}

/// The item's bytes re-planned: the commit a push of them to `address` would make today.
/// A queue's bytes are decoded as its messages are (base64 of JSON, or JSON).
pub fn plan(
    bytes: &[u8],
    address: &str,
    origin: &Origin,
    pin: TypePin,
    stream: &str,
    received_at_ms: i64,
    offset: UtcOffset,
) -> CommitRequest {
    let stream = origin.stream.as_deref().unwrap_or(stream);
    let arrival = Arrival {
        product: origin.product,
        pin,
        stream,
        address,
        received_at_ms,
        offset,
        source: origin.source,
        mns_message_id: None,
    };
    if origin.source == Source::Mns {
        if let DecodedBody::Json { json, .. } = decode_message_body(bytes) {
            return push::plan(json.as_bytes(), &arrival);
        }
    }
    push::plan(bytes, &arrival)
}

/// What happened to a redriven item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Stored,
    Duplicate,
    Conflict,
    Quarantined,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Stored => "stored",
            Outcome::Duplicate => "duplicate",
            Outcome::Conflict => "conflict",
            Outcome::Quarantined => "quarantined",
        }
    }
}

/// The counts of a redrive answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub stored: u32,
    pub duplicate: u32,
    pub conflict: u32,
    /// Pieces that are (still) in quarantine after the re-plan: the item itself when it stays,
    /// or any new piece; a piece equal to one already there is the same item, never a new one.
    pub quarantined: u32,
}

impl Counts {
    /// One item's counts: its commit's result and how many pieces its plan put aside (a conflict's
    /// copy is counted as the conflict).
    pub fn of(result: &CommitResult, planned_quarantine: usize) -> Counts {
        Counts {
            stored: result.stored,
            duplicate: result.duplicate,
            conflict: result.conflict,
            quarantined: planned_quarantine as u32,
        }
    }

    pub fn add(&mut self, o: Counts) {
        self.stored += o.stored;
        self.duplicate += o.duplicate;
        self.conflict += o.conflict;
        self.quarantined += o.quarantined;
    }

    /// The item's outcome: stored when anything of it was stored, else conflict, duplicate, or
    /// quarantined (nothing else happened).
    pub fn outcome(&self) -> Outcome {
        if self.stored > 0 {
            Outcome::Stored
        } else if self.conflict > 0 {
            Outcome::Conflict
        } else if self.duplicate > 0 {
            Outcome::Duplicate
        } else {
            Outcome::Quarantined
        }
    }
}

/// The bulk answer: the sums, plus the items skipped (a `type=` of another product) and where to
/// go on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkAnswer {
    #[serde(flatten)]
    pub counts: Counts,
    pub skipped: u32,
    pub next_after: i64,
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox_protocol::QuarantineItem;

    #[test]
    fn queries() {
        assert_eq!(single_query(""), Ok(None));
        assert_eq!(
            single_query("type=VoiceReportAiccs"),
            Ok(Some("VoiceReportAiccs".into()))
        );
        assert_eq!(
            single_query("type=LlmSmartCall"),
            Ok(Some("LlmSmartCall".into()))
        );
        assert!(single_query("type=Nope").is_err());
        assert!(single_query("type=A&type=B").is_err());
        assert!(single_query("x=1").is_err());
        assert_eq!(
            bulk_query("reason=unknown_shape&after=5&type=AlicomAgentCallNote"),
            Ok(BulkQuery {
                reason: Reason::UnknownShape,
                type_name: Some("AlicomAgentCallNote".into()),
                after: 5
            })
        );
        assert_eq!(bulk_query("reason=not_json").map(|q| q.after), Ok(0));
        assert!(bulk_query("").is_err());
        assert!(bulk_query("reason=whatever").is_err());
        assert!(bulk_query("reason=not_json&after=-1").is_err());
        assert!(bulk_query("reason=not_json&limit=3").is_err());
        assert_eq!(bulk_query("reason=too_large"), Err(ApiError::Incomplete));
    }

    #[test]
    fn origins_and_pins() {
        let o = origin("/icc/agent/shop", None).expect("push");
        assert_eq!(
            (o.product, o.stream.as_deref(), o.source),
            (Product::Agent, Some("shop"), Source::Push)
        );
        let o = origin("/icc/bot", None).expect("general");
        assert_eq!(o.stream.as_deref(), Some("default"));
        assert_eq!(pin(&o, None), Ok(TypePin::Infer));
        assert_eq!(
            pin(&o, Some("RobotCallReportAiccs")),
            Ok(TypePin::Exact(MessageType::RobotCallReportAiccs))
        );
        // a type of another product is a 400
        assert_eq!(
            pin(&o, Some("LlmSmartCallReport")).map_err(|e| e.status()),
            Err(400)
        );
        assert!(origin("/icc/nope", None).is_none());
        assert!(origin("elsewhere", None).is_none());
        // a queue's items map to the queue's type
        let o = origin(
            "mns:Alicom-Queue-1-LlmSmartCallReport",
            Some("LlmSmartCallReport"),
        )
        .expect("mns");
        assert_eq!(
            (o.product, o.stream, o.source, o.default_pin),
            (
                Product::Llm,
                None,
                Source::Mns,
                TypePin::Exact(MessageType::LlmSmartCallReport)
            )
        );
        let o = origin("mns:q-AlicomAgentCallRecord", None).expect("by name");
        assert_eq!(o.product, Product::Agent);
        assert!(origin("mns:plain", None).is_none());
    }

    #[test]
    fn a_sparse_item_pinned_is_a_row_with_its_bytes_as_raw() {
        let raw = br#"{"call_id":"c-1","foo":"x"}"#;
        let o = origin("/icc/agent/shop", None).expect("push");
        let inferred = plan(
            raw,
            "/icc/agent/shop",
            &o,
            TypePin::Infer,
            "shop",
            1,
            UtcOffset::UTC,
        );
        assert_eq!((inferred.rows.len(), inferred.quarantine.len()), (0, 1));
        // the piece re-planned is the same piece: same address and hash, so the same item
        let again = QuarantineItem::new(Reason::UnknownShape, "/icc/agent/shop", None, raw);
        assert_eq!(inferred.quarantine[0].sha256, again.sha256);
        let p = pin(&o, Some("AlicomAgentCallNote")).expect("pin");
        let pinned = plan(raw, "/icc/agent/shop", &o, p, "shop", 1, UtcOffset::UTC);
        assert_eq!(pinned.rows.len(), 1);
        assert_eq!(pinned.rows[0].message_type, "AlicomAgentCallNote");
        assert_eq!(pinned.rows[0].raw.as_bytes(), raw);
        assert_eq!(pinned.stream, "shop");
    }

    #[test]
    fn a_queue_item_is_decoded_like_its_messages() {
        use base64::Engine;
        let json = r#"{"call_id":"m-1","duration":"5"}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        let o = origin("mns:q-LlmSmartCallReport", Some("LlmSmartCallReport")).expect("mns");
        let p = plan(
            b64.as_bytes(),
            "mns:q",
            &o,
            o.default_pin,
            "s",
            1,
            UtcOffset::UTC,
        );
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.rows[0].message_type, "LlmSmartCallReport");
        assert_eq!(p.stream, "s");
        let p = plan(b"%% no", "mns:q", &o, o.default_pin, "s", 1, UtcOffset::UTC);
        assert_eq!(p.quarantine.len(), 1);
    }

    #[test]
    fn stored_bytes() {
        assert_eq!(item_bytes("text", "ab".into()), Some(b"ab".to_vec()));
        assert_eq!(item_bytes("base64", "/wA=".into()), Some(vec![255, 0]));
        assert_eq!(item_bytes("base64", "%%".into()), None);
    }

    #[test]
    fn outcomes() {
        let r = |stored, duplicate, conflict, quarantined| CommitResult {
            stored,
            duplicate,
            conflict,
            quarantined,
            head_seq: 0,
        };
        assert_eq!(Counts::of(&r(1, 0, 0, 0), 0).outcome(), Outcome::Stored);
        assert_eq!(Counts::of(&r(0, 1, 0, 0), 0).outcome(), Outcome::Duplicate);
        // a conflict's copy that is the same item is not newly quarantined: still a conflict
        assert_eq!(Counts::of(&r(0, 0, 1, 0), 0).outcome(), Outcome::Conflict);
        // a piece put aside again (the same item, not kept anew) is still quarantined
        let c = Counts::of(&r(0, 0, 0, 0), 1);
        assert_eq!((c.outcome(), c.quarantined), (Outcome::Quarantined, 1));
        let mut sum = Counts::default();
        sum.add(Counts::of(&r(1, 0, 0, 0), 0));
        sum.add(c);
        assert_eq!((sum.stored, sum.quarantined), (1, 1));
        let a = BulkAnswer {
            counts: sum,
            skipped: 0,
            next_after: 7,
            has_more: true,
        };
        assert_eq!(
            serde_json::to_string(&a).expect("json"),
            r#"{"stored":1,"duplicate":0,"conflict":0,"quarantined":1,"skipped":0,"next_after":7,"has_more":true}"#
        );
        assert_eq!(Outcome::Conflict.as_str(), "conflict");
    }
}
