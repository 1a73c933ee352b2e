//! `MNS_QUEUES` configuration and the MNS / Dybaseapi endpoints.
//!
//! `MNS_QUEUES` lists entries `MessageType:QueueName[:app]`, separated by commas or newlines,
//! whitespace trimmed, empty entries ignored. `MessageType` is one of the ICC MNS message types
//! (the robot short names `VoiceReport`, `VoiceCallReport`, `VoiceRecordReport`,
//! `RobotCallReport` map to their `…Aiccs` names, since the console table shows them
//! truncated); the queue name is the one shown in the console
//! (`Alicom-Queue-<uid>-<MessageType>`); `app` routes the receipts to the same stream as the
//! push URL's app (1–64 of `[A-Za-z0-9_-]`, not `default`; absent = the default stream).
//! The message type stays a string here; the caller maps it to its receipt-type enum.

use super::mns_signature::validate_queue_name;

/// The fixed Alibaba-owned MNS account that holds alicom receipt queues (cn-hangzhou).
pub const DEFAULT_MNS_ENDPOINT: &str = "https://1943695596114318.mns.cn-hangzhou.aliyuncs.com";
/// The Dybaseapi endpoint that serves `QueryTokenForMnsQueue`.
pub const DEFAULT_DYBASEAPI_ENDPOINT: &str = "https://dybaseapi.aliyuncs.com";

/// The ICC MessageType names accepted in `MNS_QUEUES` (canonical spelling).
pub const MNS_MESSAGE_TYPES: [&str; 9] = [
    "LlmSmartCallReport",
    "LlmSmartCallRecord",
    "AlicomAgentCallReport",
    "AlicomAgentCallRecord",
    "AlicomAgentCallNote",
    "VoiceReportAiccs",
    "VoiceCallReportAiccs",
    "VoiceRecordReportAiccs",
    "RobotCallReportAiccs",
];

/// Robot short names (as the console table shows them) and the type they stand for.
const SHORT_NAMES: [(&str, &str); 4] = [
    ("VoiceReport", "VoiceReportAiccs"),
    ("VoiceCallReport", "VoiceCallReportAiccs"),
    ("VoiceRecordReport", "VoiceRecordReportAiccs"),
    ("RobotCallReport", "RobotCallReportAiccs"),
];

/// The canonical MessageType for a configured name (case-insensitive; short robot names
/// accepted), or `None` if unknown.
pub fn canonical_message_type(name: &str) -> Option<&'static str> {
    let name = name.trim();
    MNS_MESSAGE_TYPES
        .iter()
        .copied()
        .find(|t| t.eq_ignore_ascii_case(name))
        .or_else(|| {
            SHORT_NAMES
                .iter()
                .find(|(short, _)| short.eq_ignore_ascii_case(name))
                .map(|(_, full)| *full)
        })
}

/// Whether `app` is a valid application name: the push address's rule
/// ([`crate::address::is_app`]: 1–64 of `[A-Za-z0-9_-]`, not `default` in any letter case).
pub fn is_valid_app(app: &str) -> bool {
    crate::address::is_app(app)
}

/// One configured queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueBinding {
    /// Canonical MessageType (one of [`MNS_MESSAGE_TYPES`]).
    pub message_type: &'static str,
    /// MNS queue name.
    pub queue_name: String,
    /// Target app/stream; `None` = the default stream.
    pub app: Option<String>,
}

/// A problem in `MNS_QUEUES` or the endpoint settings. Every variant names the bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueConfigError {
    /// The entry is not `MessageType:QueueName[:app]`.
    #[error("MNS_QUEUES entry {entry:?} is not MessageType:QueueName[:app]")]
    Malformed {
        /// The entry as written (trimmed).
        entry: String,
    },
    /// Unknown MessageType.
    #[error("MNS_QUEUES entry {entry:?}: unknown MessageType {message_type:?} (expected one of {})", MNS_MESSAGE_TYPES.join(", "))]
    UnknownMessageType {
        /// The entry.
        entry: String,
        /// The type as written.
        message_type: String,
    },
    /// The queue name is not 1–256 of `[A-Za-z0-9_-]`.
    #[error("MNS_QUEUES entry {entry:?}: queue name must be 1-256 of A-Z a-z 0-9 _ -")]
    InvalidQueueName {
        /// The entry.
        entry: String,
    },
    /// The app is not 1–64 of `[A-Za-z0-9_-]`, or is the reserved `default`.
    #[error("MNS_QUEUES entry {entry:?}: app {app:?} must be 1-64 of A-Z a-z 0-9 _ - and not \"default\" in any letter case")]
    InvalidApp {
        /// The entry.
        entry: String,
        /// The app as written.
        app: String,
    },
    /// The same queue is listed twice.
    #[error("MNS_QUEUES entry {entry:?}: queue listed more than once")]
    DuplicateQueue {
        /// The second entry naming it.
        entry: String,
    },
    /// An endpoint is not an `http(s)://host` URL without path, query or credentials.
    #[error("{name} {value:?} is not an http(s)://host URL")]
    InvalidEndpoint {
        /// Which setting (`MNS endpoint` / `Dybaseapi endpoint`).
        name: &'static str,
        /// The value as written.
        value: String,
    },
}

fn parse_entry(entry: &str) -> Result<QueueBinding, QueueConfigError> {
    let parts: Vec<&str> = entry.split(':').map(str::trim).collect();
    let (type_name, queue_name, app) = match parts.as_slice() {
        [t, q] => (*t, *q, None),
        [t, q, a] => (*t, *q, Some(*a)),
        _ => {
            return Err(QueueConfigError::Malformed {
                entry: entry.to_string(),
            })
        }
    };
    if type_name.is_empty() || queue_name.is_empty() {
        return Err(QueueConfigError::Malformed {
            entry: entry.to_string(),
        });
    }
    let message_type =
        canonical_message_type(type_name).ok_or_else(|| QueueConfigError::UnknownMessageType {
            entry: entry.to_string(),
            message_type: type_name.to_string(),
        })?;
    if validate_queue_name(queue_name).is_err() {
        return Err(QueueConfigError::InvalidQueueName {
            entry: entry.to_string(),
        });
    }
    let app = match app {
        None => None,
        Some(a) if is_valid_app(a) => Some(a.to_string()),
        Some(a) => {
            return Err(QueueConfigError::InvalidApp {
                entry: entry.to_string(),
                app: a.to_string(),
            })
        }
    };
    Ok(QueueBinding {
        message_type,
        queue_name: queue_name.to_string(),
        app,
    })
}

/// Parses `MNS_QUEUES`. An empty or blank value gives an empty list (MNS mode off).
pub fn parse_mns_queues(value: &str) -> Result<Vec<QueueBinding>, QueueConfigError> {
    let mut out: Vec<QueueBinding> = Vec::new();
    for raw in value.split([',', '\n', '\r']) {
        let entry = raw.trim();
        if entry.is_empty() {
            continue;
        }
        let binding = parse_entry(entry)?;
        if out.iter().any(|b| b.queue_name == binding.queue_name) {
            return Err(QueueConfigError::DuplicateQueue {
                entry: entry.to_string(),
            });
        }
        out.push(binding);
    }
    Ok(out)
}

/// The endpoints the MNS consumer talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnsEndpoints {
    /// MNS endpoint, `scheme://host` without trailing slash.
    pub mns: String,
    /// Dybaseapi endpoint, `scheme://host` without trailing slash.
    pub dybaseapi: String,
}

impl Default for MnsEndpoints {
    fn default() -> Self {
        Self {
            mns: DEFAULT_MNS_ENDPOINT.to_string(),
            dybaseapi: DEFAULT_DYBASEAPI_ENDPOINT.to_string(),
        }
    }
}

fn normalize_endpoint(name: &'static str, value: &str) -> Result<String, QueueConfigError> {
    let bad = || QueueConfigError::InvalidEndpoint {
        name,
        value: value.to_string(),
    };
    let v = value.trim().trim_end_matches('/');
    let host = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    if host_ok {
        Ok(v.to_string())
    } else {
        Err(bad())
    }
}

impl MnsEndpoints {
    /// The defaults, each replaced by an override when one is given (non-blank). Overrides must
    /// be `http(s)://host[:port]` (a trailing `/` is dropped).
    pub fn with_overrides(
        mns: Option<&str>,
        dybaseapi: Option<&str>,
    ) -> Result<Self, QueueConfigError> {
        let pick = |name, v: Option<&str>, default: &str| match v.map(str::trim) {
            Some(s) if !s.is_empty() => normalize_endpoint(name, s),
            _ => Ok(default.to_string()),
        };
        Ok(Self {
            mns: pick("MNS endpoint", mns, DEFAULT_MNS_ENDPOINT)?,
            dybaseapi: pick("Dybaseapi endpoint", dybaseapi, DEFAULT_DYBASEAPI_ENDPOINT)?,
        })
    }

    /// `mns` + `path_and_query` (which starts with `/`).
    pub fn mns_url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.mns, path_and_query)
    }

    /// `dybaseapi` + `/?` + `query`.
    pub fn dybaseapi_url(&self, query: &str) -> String {
        format!("{}/?{}", self.dybaseapi, query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(t: &'static str, q: &str, app: Option<&str>) -> QueueBinding {
        QueueBinding {
            message_type: t,
            queue_name: q.to_string(),
            app: app.map(str::to_string),
        }
    }

    #[test]
    fn parses_comma_and_newline_lists() {
        let v = " VoiceReportAiccs : Alicom-Queue-1234-VoiceReportAiccs ,\nLlmSmartCallReport:Alicom-Queue-1234-LlmSmartCallReport:sales\r\n\n, ";
        assert_eq!(
            parse_mns_queues(v),
            Ok(vec![
                binding(
                    "VoiceReportAiccs",
                    "Alicom-Queue-1234-VoiceReportAiccs",
                    None
                ),
                binding(
                    "LlmSmartCallReport",
                    "Alicom-Queue-1234-LlmSmartCallReport",
                    Some("sales")
                ),
            ])
        );
    }

    #[test]
    fn every_documented_type_and_short_name() {
        for t in MNS_MESSAGE_TYPES {
            assert_eq!(canonical_message_type(t), Some(t));
        }
        assert_eq!(
            canonical_message_type("VoiceReport"),
            Some("VoiceReportAiccs")
        );
        assert_eq!(
            canonical_message_type("VoiceCallReport"),
            Some("VoiceCallReportAiccs")
        );
        assert_eq!(
            canonical_message_type("VoiceRecordReport"),
            Some("VoiceRecordReportAiccs")
        );
        assert_eq!(
            canonical_message_type("RobotCallReport"),
            Some("RobotCallReportAiccs")
        );
        assert_eq!(
            canonical_message_type("voicereportaiccs"),
            Some("VoiceReportAiccs")
        );
        assert_eq!(canonical_message_type("SmsReport"), None);
        assert_eq!(canonical_message_type("LlmSmartCall"), None);
        assert_eq!(
            parse_mns_queues("RobotCallReport:Alicom-Queue-1-RobotCallReport"),
            Ok(vec![binding(
                "RobotCallReportAiccs",
                "Alicom-Queue-1-RobotCallReport",
                None
            )])
        );
    }

    #[test]
    fn empty_value_is_no_queues() {
        assert_eq!(parse_mns_queues(""), Ok(vec![]));
        assert_eq!(parse_mns_queues(" ,\n , "), Ok(vec![]));
    }

    #[test]
    fn malformed_entries_are_named() {
        for bad in [
            "VoiceReportAiccs",
            "VoiceReportAiccs:",
            ":q",
            "a:b:c:d",
            "::",
        ] {
            assert_eq!(
                parse_mns_queues(bad),
                Err(QueueConfigError::Malformed {
                    entry: bad.to_string()
                }),
                "{bad}"
            );
        }
        let e = parse_mns_queues("ok:q, VoiceReportAiccs");
        assert!(matches!(
            e,
            Err(QueueConfigError::UnknownMessageType { .. })
        ));
        let e = parse_mns_queues("VoiceReportAiccs:q1, VoiceReportAiccs");
        assert_eq!(
            e,
            Err(QueueConfigError::Malformed {
                entry: "VoiceReportAiccs".into()
            })
        );
    }

    #[test]
    fn unknown_type_is_named() {
        let e = parse_mns_queues("SmsReport:Alicom-Queue-1-SmsReport");
        assert_eq!(
            e,
            Err(QueueConfigError::UnknownMessageType {
                entry: "SmsReport:Alicom-Queue-1-SmsReport".into(),
                message_type: "SmsReport".into()
            })
        );
        let Err(e) = e else { panic!() };
        let text = e.to_string();
        assert!(text.contains("SmsReport:Alicom-Queue-1-SmsReport"));
        assert!(text.contains("VoiceReportAiccs"));
    }

    #[test]
    fn bad_queue_names() {
        for q in ["a/b", "a b", "a?x", "队列"] {
            let entry = format!("VoiceReportAiccs:{q}");
            assert_eq!(
                parse_mns_queues(&entry),
                Err(QueueConfigError::InvalidQueueName {
                    entry: entry.clone()
                })
            );
        }
    }

    #[test]
    fn app_rules() {
        assert!(is_valid_app("a"));
        assert!(is_valid_app("Sales_team-2"));
        assert!(is_valid_app(&"x".repeat(64)));
        assert!(!is_valid_app(&"x".repeat(65)));
        assert!(!is_valid_app(""));
        assert!(!is_valid_app("default"));
        assert!(!is_valid_app("Default"));
        assert!(!is_valid_app("DEFAULT"));
        assert!(!is_valid_app("a.b"));
        assert!(!is_valid_app("a b"));
        assert_eq!(
            parse_mns_queues("VoiceReportAiccs:q:default"),
            Err(QueueConfigError::InvalidApp {
                entry: "VoiceReportAiccs:q:default".into(),
                app: "default".into()
            })
        );
        assert_eq!(
            parse_mns_queues("VoiceReportAiccs:q:"),
            Err(QueueConfigError::InvalidApp {
                entry: "VoiceReportAiccs:q:".into(),
                app: "".into()
            })
        );
        assert_eq!(
            parse_mns_queues("VoiceReportAiccs:q: my app "),
            Err(QueueConfigError::InvalidApp {
                entry: "VoiceReportAiccs:q: my app".into(),
                app: "my app".into()
            })
        );
    }

    #[test]
    fn duplicate_queue_is_rejected() {
        assert_eq!(
            parse_mns_queues("VoiceReportAiccs:q1,VoiceCallReportAiccs:q1:x"),
            Err(QueueConfigError::DuplicateQueue {
                entry: "VoiceCallReportAiccs:q1:x".into()
            })
        );
    }

    #[test]
    fn endpoint_defaults_and_overrides() {
        let d = MnsEndpoints::default();
        assert_eq!(
            d.mns,
            "https://1943695596114318.mns.cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(d.dybaseapi, "https://dybaseapi.aliyuncs.com");
        assert_eq!(
            MnsEndpoints::with_overrides(None, Some("  ")),
            Ok(d.clone())
        );
        assert_eq!(
            d.mns_url("/queues/q/messages?numOfMessages=16"),
            "https://1943695596114318.mns.cn-hangzhou.aliyuncs.com/queues/q/messages?numOfMessages=16"
        );
        assert_eq!(
            d.dybaseapi_url("A=1"),
            "https://dybaseapi.aliyuncs.com/?A=1"
        );
        let o = MnsEndpoints::with_overrides(
            Some("http://1493622401794734.mns.ap-southeast-1.aliyuncs.com/"),
            Some("https://dybaseapi.ap-southeast-1.aliyuncs.com"),
        );
        assert_eq!(
            o,
            Ok(MnsEndpoints {
                mns: "http://1493622401794734.mns.ap-southeast-1.aliyuncs.com".into(),
                dybaseapi: "https://dybaseapi.ap-southeast-1.aliyuncs.com".into(),
            })
        );
        for bad in [
            "ftp://x",
            "x.aliyuncs.com",
            "https://",
            "https://a/b",
            "https://u@h",
        ] {
            assert!(
                matches!(
                    MnsEndpoints::with_overrides(Some(bad), None),
                    Err(QueueConfigError::InvalidEndpoint {
                        name: "MNS endpoint",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}
