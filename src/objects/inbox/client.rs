//! The Worker's handle on one stream's inbox: one typed method per inbox route.

use crate::objects::call::{self, Answer};
use icc_core::inbox_protocol::{CommitRequest, CommitResult, ReadRequest};
use icc_core::object_route::{Counter, InboxRoute, STREAM_HEADER};
use std::rc::Rc;
use wasm_bindgen::JsValue;
use worker::{Env, Result, Stub};

const BINDING: &str = "INBOX";

#[derive(Clone)]
pub struct Client {
    stub: Rc<Stub>,
    stream: String,
}

/// Why the inbox did not confirm a commit.
#[derive(Debug)]
pub enum InboxError {
    Error,
    Full,
}

impl InboxError {
    pub fn code(&self) -> &'static str {
        match self {
            InboxError::Error => "inbox_error",
            InboxError::Full => "inbox_full",
        }
    }
}

impl Client {
    pub fn new(env: &Env, stream: &str, location_hint: &str) -> Result<Client> {
        let ns = env.durable_object(BINDING)?;
        let stub = ns.get_by_name_with_location_hint(stream, location_hint)?;
        Ok(Client {
            stub: Rc::new(stub),
            stream: stream.to_owned(),
        })
    }

    async fn call(&self, route: InboxRoute, body: Option<JsValue>) -> Result<Answer> {
        let path = route.path();
        let name = Some((STREAM_HEADER, self.stream.as_str()));
        call::call(&self.stub, "inbox", (route.verb(), &path), name, body).await
    }

    /// Commits a planned push. Only `Ok` means every row is durable (stored or known).
    /// Takes the plan by value: it is serialized into one JS buffer and freed before the wait,
    /// so a large push holds one copy of its data while the inbox works.
    pub async fn commit(
        &self,
        req: CommitRequest,
    ) -> std::result::Result<CommitResult, InboxError> {
        let wire = js_sys::Uint8Array::from(req.to_wire().as_slice());
        drop(req);
        match self.call(InboxRoute::Commit, Some(wire.into())).await {
            Ok(Answer { status: 200, body }) => {
                serde_json::from_str(&body).map_err(|_| InboxError::Error)
            }
            Ok(Answer { status: 507, .. }) => Err(InboxError::Full),
            _ => Err(InboxError::Error),
        }
    }

    /// Stores a big body as received (`icc_core::spool::to_wire`). Only `Ok` means it is
    /// durable: `true` newly spooled, `false` already spooled before.
    pub async fn spool(&self, wire: Vec<u8>) -> std::result::Result<bool, InboxError> {
        let wire = js_sys::Uint8Array::from(wire.as_slice());
        match self.call(InboxRoute::Spool, Some(wire.into())).await {
            Ok(Answer { status: 200, body }) => Ok(body.contains("true")),
            Ok(Answer { status: 507, .. }) => Err(InboxError::Full),
            _ => Err(InboxError::Error),
        }
    }

    /// A page of receipts (held up to `req.wait_ms` when empty).
    pub async fn read(&self, req: &ReadRequest) -> Result<Answer> {
        let body =
            serde_json::to_string(req).map_err(|e| worker::Error::RustError(e.to_string()))?;
        self.call(InboxRoute::Read, Some(JsValue::from_str(&body)))
            .await
    }

    /// A page of quarantined pieces.
    pub async fn quarantine(&self, after: i64, limit: u32) -> Result<Answer> {
        self.call(InboxRoute::Quarantine { after, limit }, None)
            .await
    }

    /// Re-plans one quarantined item and commits it (`type_name` pins its type).
    pub async fn redrive(&self, seq: i64, type_name: Option<String>) -> Result<Answer> {
        self.call(InboxRoute::Redrive { seq, type_name }, None)
            .await
    }

    /// Re-plans a batch of quarantined items of `reason` after `after`.
    pub async fn redrive_bulk(
        &self,
        reason: &str,
        after: i64,
        type_name: Option<String>,
    ) -> Result<Answer> {
        let reason = reason.to_owned();
        self.call(
            InboxRoute::RedriveBulk {
                reason,
                after,
                type_name,
            },
            None,
        )
        .await
    }

    /// The stream's counters, head, consumers and size.
    pub async fn stats(&self) -> Result<Answer> {
        self.call(InboxRoute::Stats, None).await
    }

    pub async fn consumer_get(&self, name: &str) -> Result<Answer> {
        let name = name.to_owned();
        self.call(InboxRoute::ConsumerGet { name }, None).await
    }

    /// Creates or moves a consumer; `body` is the request's `{"after": n}` as sent.
    pub async fn consumer_put(&self, name: &str, body: String) -> Result<Answer> {
        let name = name.to_owned();
        self.call(
            InboxRoute::ConsumerPut { name },
            Some(JsValue::from_str(&body)),
        )
        .await
    }

    pub async fn consumer_delete(&self, name: &str) -> Result<Answer> {
        let name = name.to_owned();
        self.call(InboxRoute::ConsumerDelete { name }, None).await
    }

    /// A page of dead letters.
    pub async fn dead_letters(&self, after: i64, limit: u32) -> Result<Answer> {
        self.call(InboxRoute::DeadLetters { after, limit }, None)
            .await
    }

    /// Re-enqueues dead letters (all, or one seq).
    pub async fn redeliver(&self, seq: Option<i64>) -> Result<Answer> {
        self.call(InboxRoute::Redeliver { seq }, None).await
    }

    /// Records given-up deliveries (`[icc_core::delivery::DeadLetter]` as JSON).
    pub async fn dead_letter_add(&self, body: String) -> Result<Answer> {
        self.call(InboxRoute::DeadLetterAdd, Some(JsValue::from_str(&body)))
            .await
    }

    /// The webhook consumer's tallies (`icc_core::delivery::Report` as JSON).
    pub async fn delivery_report(&self, body: String) -> Result<Answer> {
        self.call(InboxRoute::DeliveryReport, Some(JsValue::from_str(&body)))
            .await
    }

    /// Opens a live tail: the inbox's `101` answer with the socket, or its refusal.
    pub async fn tail(
        &self,
        query: icc_core::tail::TailQuery,
        protocols: Option<&str>,
    ) -> Result<worker::Response> {
        let url = format!("https://inbox{}", InboxRoute::Tail(query).path());
        let req = worker::Request::new(&url, worker::Method::Get)?;
        req.headers().set("upgrade", "websocket")?;
        req.headers().set(STREAM_HEADER, &self.stream)?;
        if let Some(p) = protocols {
            req.headers().set("sec-websocket-protocol", p)?;
        }
        self.stub.fetch_with_request(req).await
    }

    /// Adds one to a counter kept in the inbox.
    pub async fn count(&self, counter: Counter) -> Result<()> {
        self.call(InboxRoute::Count(counter), None)
            .await
            .map(|_| ())
    }
}
