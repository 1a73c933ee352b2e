//! The internal API between the Worker and its Durable Objects: every route of the inbox, the
//! stream directory and the MNS puller, parsed and printed here and nowhere else. These routes
//! are reachable only through a namespace stub, never from the Internet.

use crate::address::{is_consumer, is_stream};
use crate::fetch_query::{encode, pairs};

/// The header that names the stream an inbox serves (sent with every inbox call).
pub const STREAM_HEADER: &str = "x-stream";
/// The header that names the queue an MNS puller drains (sent with every puller call).
pub const QUEUE_HEADER: &str = "x-queue";

/// The HTTP method of an internal call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Put,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Put => "PUT",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }

    pub fn parse(s: &str) -> Option<Verb> {
        Some(match s {
            "GET" => Verb::Get,
            "PUT" => Verb::Put,
            "POST" => Verb::Post,
            "DELETE" => Verb::Delete,
            _ => return None,
        })
    }
}

/// A counter kept in a stream's inbox and bumped by the Worker after it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A byte-identical resend answered from the KV fast path.
    KvAnswered,
    /// A KV fast-path write that failed after a commit.
    KvWriteFailed,
}

impl Counter {
    pub const ALL: [Counter; 2] = [Counter::KvAnswered, Counter::KvWriteFailed];

    /// The counter's name, also its key in the inbox's `meta` table and in stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Counter::KvAnswered => "kv_answered",
            Counter::KvWriteFailed => "kv_write_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Counter> {
        Counter::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A route of the inbox object. Bodies: `Commit` the commit wire
/// ([`crate::inbox_protocol::CommitRequest::to_wire`]), `Read` a
/// [`crate::inbox_protocol::ReadRequest`] as JSON, `ConsumerPut` `{"after": n}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxRoute {
    /// `POST /commit`
    Commit,
    /// `POST /read`
    Read,
    /// `GET /quarantine?after&limit`
    Quarantine { after: i64, limit: u32 },
    /// `GET /stats`
    Stats,
    /// `GET /consumers/{name}`
    ConsumerGet { name: String },
    /// `PUT /consumers/{name}`
    ConsumerPut { name: String },
    /// `DELETE /consumers/{name}`
    ConsumerDelete { name: String },
    /// `POST /count/{counter}`
    Count(Counter),
    /// `POST /quarantine/{seq}/redrive[?type]`
    Redrive { seq: i64, type_name: Option<String> },
    /// `POST /quarantine/redrive?reason&after[&type]`
    RedriveBulk {
        reason: String,
        after: i64,
        type_name: Option<String>,
    },
    /// `POST /delivery/report`: the webhook consumer's tallies (`crate::delivery::Report`).
    DeliveryReport,
    /// `POST /dead-letters`: given-up deliveries (`[crate::delivery::DeadLetter]`).
    DeadLetterAdd,
    /// `GET /dead-letters?after&limit`
    DeadLetters { after: i64, limit: u32 },
    /// `POST /dead-letters/redeliver[?seq]`
    Redeliver { seq: Option<i64> },
    /// `POST /spool`: a big body stored as received (body: [`crate::spool::to_wire`]).
    Spool,
    /// `GET /tail?after&type` with `Upgrade: websocket`: a live tail.
    Tail(crate::tail::TailQuery),
}

impl InboxRoute {
    pub fn verb(&self) -> Verb {
        match self {
            InboxRoute::Redrive { .. } | InboxRoute::RedriveBulk { .. } => Verb::Post,
            InboxRoute::Commit
            | InboxRoute::Read
            | InboxRoute::Count(_)
            | InboxRoute::DeliveryReport
            | InboxRoute::DeadLetterAdd
            | InboxRoute::Redeliver { .. } => Verb::Post,
            InboxRoute::DeadLetters { .. } => Verb::Get,
            InboxRoute::Spool => Verb::Post,
            InboxRoute::Quarantine { .. } | InboxRoute::Stats | InboxRoute::ConsumerGet { .. } => {
                Verb::Get
            }
            InboxRoute::Tail(_) => Verb::Get,
            InboxRoute::ConsumerPut { .. } => Verb::Put,
            InboxRoute::ConsumerDelete { .. } => Verb::Delete,
        }
    }

    /// Path and query of the route.
    pub fn path(&self) -> String {
        match self {
            InboxRoute::Commit => "/commit".to_owned(),
            InboxRoute::Read => "/read".to_owned(),
            InboxRoute::Quarantine { after, limit } => format!(
                "/quarantine?{}",
                encode(&[("after", &after.to_string()), ("limit", &limit.to_string())])
            ),
            InboxRoute::Stats => "/stats".to_owned(),
            InboxRoute::ConsumerGet { name }
            | InboxRoute::ConsumerPut { name }
            | InboxRoute::ConsumerDelete { name } => format!("/consumers/{name}"),
            InboxRoute::Count(c) => format!("/count/{}", c.as_str()),
            InboxRoute::Redrive { seq, type_name } => match type_name {
                Some(t) => format!("/quarantine/{seq}/redrive?{}", encode(&[("type", t)])),
                None => format!("/quarantine/{seq}/redrive"),
            },
            InboxRoute::RedriveBulk {
                reason,
                after,
                type_name,
            } => {
                let after = after.to_string();
                let mut q = vec![("reason", reason.as_str()), ("after", after.as_str())];
                if let Some(t) = type_name {
                    q.push(("type", t));
                }
                format!("/quarantine/redrive?{}", encode(&q))
            }
            InboxRoute::DeliveryReport => "/delivery/report".to_owned(),
            InboxRoute::DeadLetterAdd => "/dead-letters".to_owned(),
            InboxRoute::DeadLetters { after, limit } => format!(
                "/dead-letters?{}",
                encode(&[("after", &after.to_string()), ("limit", &limit.to_string())])
            ),
            InboxRoute::Redeliver { seq: None } => "/dead-letters/redeliver".to_owned(),
            InboxRoute::Redeliver { seq: Some(s) } => format!("/dead-letters/redeliver?seq={s}"),
            InboxRoute::Spool => "/spool".to_owned(),
            InboxRoute::Tail(q) => format!("/tail?{}", q.to_query()),
        }
    }

    /// The route of a request (`query` without `?`); `None` for anything else.
    pub fn parse(verb: Verb, path: &str, query: &str) -> Option<InboxRoute> {
        let route = match (verb, path) {
            (Verb::Post, "/commit") => InboxRoute::Commit,
            (Verb::Post, "/read") => InboxRoute::Read,
            (Verb::Post, "/spool") => InboxRoute::Spool,
            (Verb::Get, "/quarantine") => {
                let p = pairs(query);
                let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
                InboxRoute::Quarantine {
                    after: get("after")?.parse().ok()?,
                    limit: get("limit")?.parse().ok()?,
                }
            }
            (Verb::Get, "/stats") => InboxRoute::Stats,
            (Verb::Post, "/quarantine/redrive") => {
                let p = pairs(query);
                let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
                InboxRoute::RedriveBulk {
                    reason: get("reason")?,
                    after: get("after")?.parse().ok()?,
                    type_name: get("type"),
                }
            }
            (Verb::Post, p) if p.starts_with("/quarantine/") && p.ends_with("/redrive") => {
                let seq = p
                    .strip_prefix("/quarantine/")
                    .and_then(|r| r.strip_suffix("/redrive"))?
                    .parse()
                    .ok()?;
                let p = pairs(query);
                let type_name = p.into_iter().find(|(k, _)| k == "type").map(|(_, v)| v);
                InboxRoute::Redrive { seq, type_name }
            }
            (Verb::Post, "/delivery/report") => InboxRoute::DeliveryReport,
            (Verb::Post, "/dead-letters") => InboxRoute::DeadLetterAdd,
            (Verb::Get, "/dead-letters") => {
                let p = pairs(query);
                let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
                InboxRoute::DeadLetters {
                    after: get("after")?.parse().ok()?,
                    limit: get("limit")?.parse().ok()?,
                }
            }
            (Verb::Post, "/dead-letters/redeliver") => {
                let p = pairs(query);
                let seq = match p.iter().find(|(key, _)| key == "seq") {
                    Some((_, v)) => Some(v.parse().ok()?),
                    None => None,
                };
                InboxRoute::Redeliver { seq }
            }
            (Verb::Get, "/tail") => InboxRoute::Tail(crate::tail::TailQuery::parse(query).ok()?),
            (verb, p) => {
                if let Some(name) = p.strip_prefix("/consumers/") {
                    if !is_consumer(name) {
                        return None;
                    }
                    let name = name.to_owned();
                    match verb {
                        Verb::Get => InboxRoute::ConsumerGet { name },
                        Verb::Put => InboxRoute::ConsumerPut { name },
                        Verb::Delete => InboxRoute::ConsumerDelete { name },
                        Verb::Post => return None,
                    }
                } else if let (Verb::Post, Some(c)) = (verb, p.strip_prefix("/count/")) {
                    InboxRoute::Count(Counter::parse(c)?)
                } else {
                    return None;
                }
            }
        };
        Some(route)
    }
}

/// A route of the stream directory (one object for the whole Worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryRoute {
    /// `PUT /streams/{stream}`: records the stream (idempotent).
    Register { stream: String },
    /// `GET /streams/{stream}?wait_ms[&consumer]`: whether the stream is recorded, waiting up
    /// to `wait_ms` for it to be (a long poll of `consumer`). Answers `{"exists": bool}`.
    Exists {
        stream: String,
        wait_ms: u64,
        consumer: Option<String>,
    },
    /// `GET /streams?after`: a page of stream names after `after`. Answers
    /// `{"streams": [...], "more": bool}`.
    List { after: String },
}

impl DirectoryRoute {
    pub fn verb(&self) -> Verb {
        match self {
            DirectoryRoute::Register { .. } => Verb::Put,
            DirectoryRoute::Exists { .. } | DirectoryRoute::List { .. } => Verb::Get,
        }
    }

    /// Path and query of the route.
    pub fn path(&self) -> String {
        match self {
            DirectoryRoute::Register { stream } => format!("/streams/{stream}"),
            DirectoryRoute::Exists {
                stream,
                wait_ms,
                consumer,
            } => {
                let wait = wait_ms.to_string();
                let mut q = vec![("wait_ms", wait.as_str())];
                if let Some(c) = consumer {
                    q.push(("consumer", c));
                }
                format!("/streams/{stream}?{}", encode(&q))
            }
            DirectoryRoute::List { after } => format!("/streams?{}", encode(&[("after", after)])),
        }
    }

    /// The route of a request (`query` without `?`); `None` for anything else.
    pub fn parse(verb: Verb, path: &str, query: &str) -> Option<DirectoryRoute> {
        let p = pairs(query);
        let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        match (verb, path) {
            (Verb::Get, "/streams") => Some(DirectoryRoute::List {
                after: get("after").unwrap_or_default().to_owned(),
            }),
            (verb, p) => {
                let stream = p.strip_prefix("/streams/").filter(|s| is_stream(s))?;
                let stream = stream.to_owned();
                match verb {
                    Verb::Put => Some(DirectoryRoute::Register { stream }),
                    Verb::Get => Some(DirectoryRoute::Exists {
                        stream,
                        wait_ms: get("wait_ms").map_or(Some(0), |v| v.parse().ok())?,
                        consumer: match get("consumer") {
                            Some(c) if is_consumer(c) => Some(c.to_owned()),
                            Some(_) => return None,
                            None => None,
                        },
                    }),
                    Verb::Post | Verb::Delete => None,
                }
            }
        }
    }
}

/// A route of an MNS puller (one object per queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullerRoute {
    /// `POST /poll`: one receive–commit–delete cycle now; answers what it did.
    Poll,
    /// `POST /kick`: arms the alarm loop unless it is armed.
    Kick,
    /// `GET /stats`: the puller's counters.
    Stats,
}

impl PullerRoute {
    pub const ALL: [PullerRoute; 3] = [PullerRoute::Poll, PullerRoute::Kick, PullerRoute::Stats];

    pub fn verb(self) -> Verb {
        match self {
            PullerRoute::Poll | PullerRoute::Kick => Verb::Post,
            PullerRoute::Stats => Verb::Get,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            PullerRoute::Poll => "/poll",
            PullerRoute::Kick => "/kick",
            PullerRoute::Stats => "/stats",
        }
    }

    pub fn parse(verb: Verb, path: &str) -> Option<PullerRoute> {
        PullerRoute::ALL
            .into_iter()
            .find(|r| r.verb() == verb && r.path() == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(path: &str) -> (&str, &str) {
        path.split_once('?').unwrap_or((path, ""))
    }

    #[test]
    fn inbox_routes_round_trip() {
        let routes = [
            InboxRoute::Commit,
            InboxRoute::Read,
            InboxRoute::Quarantine {
                after: 42,
                limit: 7,
            },
            InboxRoute::Stats,
            InboxRoute::ConsumerGet {
                name: "a.b-c_1".into(),
            },
            InboxRoute::ConsumerPut {
                name: "billing".into(),
            },
            InboxRoute::ConsumerDelete { name: "x".into() },
            InboxRoute::Count(Counter::KvAnswered),
            InboxRoute::Count(Counter::KvWriteFailed),
            InboxRoute::Redrive {
                seq: 3,
                type_name: None,
            },
            InboxRoute::Redrive {
                seq: 4,
                type_name: Some("VoiceReportAiccs".into()),
            },
            InboxRoute::RedriveBulk {
                reason: "unknown_shape".into(),
                after: 100,
                type_name: None,
            },
            InboxRoute::RedriveBulk {
                reason: "not_json".into(),
                after: 0,
                type_name: Some("LlmSmartCall".into()),
            },
            InboxRoute::DeliveryReport,
            InboxRoute::DeadLetterAdd,
            InboxRoute::DeadLetters {
                after: 3,
                limit: 50,
            },
            InboxRoute::Redeliver { seq: None },
            InboxRoute::Redeliver { seq: Some(9) },
            InboxRoute::Spool,
            InboxRoute::Tail(crate::tail::TailQuery {
                after: Some(9),
                types: vec!["LlmSmartCallReport".into(), "VoiceReportAiccs".into()],
            }),
            InboxRoute::Tail(crate::tail::TailQuery {
                after: None,
                types: vec![],
            }),
        ];
        for r in routes {
            let printed = r.path();
            let (path, query) = split(&printed);
            assert_eq!(
                InboxRoute::parse(r.verb(), path, query),
                Some(r.clone()),
                "{printed}"
            );
        }
    }

    #[test]
    fn inbox_paths_are_the_wire() {
        // Test configurations that wrap the inbox recognise the commit by this path.
        assert_eq!(InboxRoute::Commit.path(), "/commit");
        assert_eq!(
            InboxRoute::Count(Counter::KvAnswered).path(),
            "/count/kv_answered"
        );
        assert_eq!(
            InboxRoute::Quarantine {
                after: 0,
                limit: 100
            }
            .path(),
            "/quarantine?after=0&limit=100"
        );
    }

    #[test]
    fn inbox_refuses_what_it_does_not_serve() {
        for (verb, path, query) in [
            (Verb::Get, "/commit", ""),
            (Verb::Post, "/gc", ""),
            (Verb::Post, "/count/other", ""),
            (Verb::Get, "/count/kv_answered", ""),
            (Verb::Post, "/consumers/x", ""),
            (Verb::Get, "/consumers/bad name", ""),
            (Verb::Get, "/consumers/", ""),
            (Verb::Get, "/quarantine", "after=1"),
            (Verb::Get, "/quarantine", "after=x&limit=1"),
            (Verb::Get, "/nope", ""),
        ] {
            assert_eq!(
                InboxRoute::parse(verb, path, query),
                None,
                "{verb:?} {path}?{query}"
            );
        }
    }

    #[test]
    fn directory_routes_round_trip() {
        for r in [
            DirectoryRoute::Register {
                stream: "shop1".into(),
            },
            DirectoryRoute::Exists {
                stream: "default".into(),
                wait_ms: 2500,
                consumer: None,
            },
            DirectoryRoute::Exists {
                stream: "s".into(),
                wait_ms: 0,
                consumer: Some("billing.v2".into()),
            },
            DirectoryRoute::List {
                after: String::new(),
            },
            DirectoryRoute::List {
                after: "a b&c".into(),
            },
        ] {
            let printed = r.path();
            let (path, query) = split(&printed);
            assert_eq!(
                DirectoryRoute::parse(r.verb(), path, query),
                Some(r.clone()),
                "{printed}"
            );
        }
        assert_eq!(
            DirectoryRoute::parse(Verb::Put, "/streams/bad name", ""),
            None
        );
        assert_eq!(
            DirectoryRoute::parse(Verb::Get, "/streams/x", "wait_ms=-1"),
            None
        );
        assert_eq!(DirectoryRoute::parse(Verb::Delete, "/streams/x", ""), None);
    }

    #[test]
    fn puller_routes_round_trip() {
        for r in PullerRoute::ALL {
            assert_eq!(PullerRoute::parse(r.verb(), r.path()), Some(r));
        }
        assert_eq!(PullerRoute::parse(Verb::Get, "/poll"), None);
    }

    #[test]
    fn verbs_and_counters() {
        for v in [Verb::Get, Verb::Put, Verb::Post, Verb::Delete] {
            assert_eq!(Verb::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verb::parse("PATCH"), None);
        for c in Counter::ALL {
            assert_eq!(Counter::parse(c.as_str()), Some(c));
        }
    }
}
