//! The three ICC console products, the nine receipt message types, and how a message's type is
//! decided: pinned by `?type=` or inferred from the fields it carries (SPEC.md's table, then the
//! sparse-message rule of `message_keys`).

use serde_json::{Map, Value};

/// A console product: each has its own push address `/icc/{product}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    /// Communication Intelligence Engine.
    Llm,
    /// Communication Agent.
    Agent,
    /// Intelligent Communication Bot.
    Bot,
}

impl Product {
    pub const ALL: [Product; 3] = [Product::Llm, Product::Agent, Product::Bot];

    pub fn from_path(segment: &str) -> Option<Product> {
        match segment {
            "llm" => Some(Product::Llm),
            "agent" => Some(Product::Agent),
            "bot" => Some(Product::Bot),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Product::Llm => "llm",
            Product::Agent => "agent",
            Product::Bot => "bot",
        }
    }

    /// The message types pushed to this product's address.
    pub fn types(self) -> &'static [MessageType] {
        use MessageType::*;
        match self {
            Product::Llm => &[LlmSmartCallReport, LlmSmartCallRecord],
            Product::Agent => &[
                AlicomAgentCallReport,
                AlicomAgentCallRecord,
                AlicomAgentCallNote,
            ],
            Product::Bot => &[
                VoiceReportAiccs,
                VoiceCallReportAiccs,
                VoiceRecordReportAiccs,
                RobotCallReportAiccs,
            ],
        }
    }
}

/// One of the nine documented ICC receipt message types (MNS names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    LlmSmartCallReport,
    LlmSmartCallRecord,
    AlicomAgentCallReport,
    AlicomAgentCallRecord,
    AlicomAgentCallNote,
    VoiceReportAiccs,
    VoiceCallReportAiccs,
    VoiceRecordReportAiccs,
    RobotCallReportAiccs,
}

impl MessageType {
    pub const ALL: [MessageType; 9] = [
        MessageType::LlmSmartCallReport,
        MessageType::LlmSmartCallRecord,
        MessageType::AlicomAgentCallReport,
        MessageType::AlicomAgentCallRecord,
        MessageType::AlicomAgentCallNote,
        MessageType::VoiceReportAiccs,
        MessageType::VoiceCallReportAiccs,
        MessageType::VoiceRecordReportAiccs,
        MessageType::RobotCallReportAiccs,
    ];

    pub fn as_str(self) -> &'static str {
        use MessageType::*;
        match self {
            LlmSmartCallReport => "LlmSmartCallReport",
            LlmSmartCallRecord => "LlmSmartCallRecord",
            AlicomAgentCallReport => "AlicomAgentCallReport",
            AlicomAgentCallRecord => "AlicomAgentCallRecord",
            AlicomAgentCallNote => "AlicomAgentCallNote",
            VoiceReportAiccs => "VoiceReportAiccs",
            VoiceCallReportAiccs => "VoiceCallReportAiccs",
            VoiceRecordReportAiccs => "VoiceRecordReportAiccs",
            RobotCallReportAiccs => "RobotCallReportAiccs",
        }
    }

    /// The type named exactly (MNS names, plus the robot short names the console's queue table
    /// shows: `VoiceReport`, `VoiceCallReport`, `VoiceRecordReport`, `RobotCallReport`).
    pub fn from_name(name: &str) -> Option<MessageType> {
        use MessageType::*;
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == name)
            .or(match name {
                "VoiceReport" => Some(VoiceReportAiccs),
                "VoiceCallReport" => Some(VoiceCallReportAiccs),
                "VoiceRecordReport" => Some(VoiceRecordReportAiccs),
                "RobotCallReport" => Some(RobotCallReportAiccs),
                _ => None,
            })
    }

    pub fn product(self) -> Product {
        use MessageType::*;
        match self {
            LlmSmartCallReport | LlmSmartCallRecord => Product::Llm,
            AlicomAgentCallReport | AlicomAgentCallRecord | AlicomAgentCallNote => Product::Agent,
            VoiceReportAiccs
            | VoiceCallReportAiccs
            | VoiceRecordReportAiccs
            | RobotCallReportAiccs => Product::Bot,
        }
    }
}

/// What `?type=` asked for, once checked against the address's product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypePin {
    /// No `type=`: infer per message.
    Infer,
    /// Exactly this type for every message.
    Exact(MessageType),
    /// `type=LlmSmartCall`: the HTTP name both llm types share; Record when `record_file` is there.
    LlmSmartCall,
}

impl TypePin {
    /// Checks `type=` against the product. `None` means the type does not belong to it (400).
    pub fn parse(product: Product, param: Option<&str>) -> Option<TypePin> {
        let Some(name) = param else {
            return Some(TypePin::Infer);
        };
        if product == Product::Llm && name == "LlmSmartCall" {
            return Some(TypePin::LlmSmartCall);
        }
        let t = MessageType::from_name(name)?;
        (t.product() == product).then_some(TypePin::Exact(t))
    }

    /// A stable text for the pin, part of the KV fast-path key.
    pub fn as_str(self) -> &'static str {
        match self {
            TypePin::Infer => "",
            TypePin::Exact(t) => t.as_str(),
            TypePin::LlmSmartCall => "LlmSmartCall",
        }
    }

    /// The type of one message under this pin, or `None` when it fits no type of the product.
    pub fn type_of(self, product: Product, msg: &Map<String, Value>) -> Option<MessageType> {
        match self {
            TypePin::Exact(t) => Some(t),
            TypePin::LlmSmartCall => Some(if msg.contains_key("record_file") {
                MessageType::LlmSmartCallRecord
            } else {
                MessageType::LlmSmartCallReport
            }),
            TypePin::Infer => infer(product, msg),
        }
    }
}

/// A message's type within its product: SPEC.md's inference table first (anything it types keeps
/// that type), then the sparse-message rule for what the table leaves untyped.
pub fn infer(product: Product, msg: &Map<String, Value>) -> Option<MessageType> {
    infer_by_table(product, msg).or_else(|| crate::message_keys::infer_sparse(product, msg))
}

/// SPEC.md's inference table alone: the first matching row within the product wins.
pub fn infer_by_table(product: Product, msg: &Map<String, Value>) -> Option<MessageType> {
    use MessageType::*;
    let has = |k: &str| msg.contains_key(k);
    let any = |ks: &[&str]| ks.iter().any(|k| msg.contains_key(*k));
    match product {
        Product::Llm => {
            if has("record_file") {
                Some(LlmSmartCallRecord)
            } else if any(&[
                "status_msg",
                "smart_status_code",
                "hangup_direction",
                "caller",
            ]) {
                Some(LlmSmartCallReport)
            } else {
                None
            }
        }
        Product::Agent => {
            if any(&["majorIntent", "outputTags", "conversationRecord"]) {
                Some(AlicomAgentCallNote)
            } else if has("recordFile") {
                Some(AlicomAgentCallRecord)
            } else if any(&["statusCode", "smartStatusCode", "callee"]) {
                Some(AlicomAgentCallReport)
            } else {
                None
            }
        }
        Product::Bot => {
            if has("data") && has("callId") {
                Some(RobotCallReportAiccs)
            } else if has("status_time") {
                Some(VoiceCallReportAiccs)
            } else if has("record_file") {
                Some(VoiceRecordReportAiccs)
            } else if has("call_id") && any(&["voice_type", "b_start_time", "status_msg", "callee"])
            {
                Some(VoiceReportAiccs)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn names_round_trip_and_belong_to_one_product() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_name(t.as_str()), Some(t));
            assert!(t.product().types().contains(&t));
        }
        let total: usize = Product::ALL.iter().map(|p| p.types().len()).sum();
        assert_eq!(total, 9);
    }

    #[test]
    fn pin_rejects_types_of_other_products() {
        assert_eq!(TypePin::parse(Product::Llm, Some("VoiceReportAiccs")), None);
        assert_eq!(TypePin::parse(Product::Bot, Some("LlmSmartCall")), None);
        assert_eq!(TypePin::parse(Product::Agent, Some("nonsense")), None);
        assert_eq!(
            TypePin::parse(Product::Bot, Some("VoiceReport")),
            Some(TypePin::Exact(MessageType::VoiceReportAiccs))
        );
        assert_eq!(TypePin::parse(Product::Llm, None), Some(TypePin::Infer));
    }

    #[test]
    fn llm_smart_call_pin_splits_on_record_file() {
        let pin = TypePin::LlmSmartCall;
        let rec = obj(json!({"call_id":"1","record_file":"http://x"}));
        let rep = obj(json!({"call_id":"1"}));
        assert_eq!(
            pin.type_of(Product::Llm, &rec),
            Some(MessageType::LlmSmartCallRecord)
        );
        assert_eq!(
            pin.type_of(Product::Llm, &rep),
            Some(MessageType::LlmSmartCallReport)
        );
    }

    #[test]
    fn inference_follows_the_table_order() {
        // A note that also carries callee is still a note: first row wins.
        let note = obj(json!({"callId":"1","majorIntent":"A","callee":"1"}));
        assert_eq!(
            infer(Product::Agent, &note),
            Some(MessageType::AlicomAgentCallNote)
        );
        // Call-status events carry status_time; a bot record carries record_file.
        let ev = obj(json!({"call_id":"1","status_time":"2021-01-01 00:00:00","callee":"1"}));
        assert_eq!(
            infer(Product::Bot, &ev),
            Some(MessageType::VoiceCallReportAiccs)
        );
        // Fields of another product do not match.
        let nothing = obj(json!({"callId":"1","recordFile":"x"}));
        assert_eq!(infer(Product::Bot, &nothing), None);
        assert_eq!(infer(Product::Llm, &obj(json!({"call_id":"1"}))), None);
        // data without callId matches no row of the table; the sparse rule types it, since only
        // the robot report documents data.
        let data = obj(json!({"data":{}}));
        assert_eq!(infer_by_table(Product::Bot, &data), None);
        assert_eq!(
            infer(Product::Bot, &data),
            Some(MessageType::RobotCallReportAiccs)
        );
    }
}
