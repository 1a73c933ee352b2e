//! The inbox: one SQLite-backed Durable Object per stream. It is the authority on identity (a
//! unique index), assigns `seq`, keeps quarantine, consumer cursors and counters, wakes long-poll
//! readers, and removes what retention no longer keeps. Its rules live in `icc_core`; these files
//! are storage and plumbing, one concern each:
//!
//! - `client`: the typed handle the Worker calls;
//! - `schema`: tables and migration;
//! - `commit`, `read`, `quarantine`, `consumers`, `stats`: the routes;
//! - `scheduler` and `retention`: the object's one alarm and the work it runs.
//!
//! Routes: [`icc_core::object_route::InboxRoute`].

mod archive;
mod client;
mod commit;
mod consumers;
mod delivery;
mod quarantine;
mod read;
mod redrive;
mod retention;
mod scheduler;
mod schema;
mod spool;
mod stats;
mod tail;

pub use client::{Client, InboxError};
pub use delivery::QUEUE_BINDING;

use crate::objects::call;
use crate::objects::meta::Meta;
use crate::objects::waiters::Waiters;
use crate::{env_config, respond};
use icc_core::error::ApiError;
use icc_core::inbox_rules;
use icc_core::object_route::{InboxRoute, STREAM_HEADER};
use icc_core::schedule::Work;
use worker::{
    durable_object, Date, DurableObject, Env, Request, Response, Result, SqlStorage, State,
    WebSocket, WebSocketIncomingMessage,
};

#[durable_object]
pub struct Inbox {
    state: State,
    env: Env,
    ready: std::result::Result<(), String>,
    waiters: Waiters,
}

impl Inbox {
    fn sql(&self) -> SqlStorage {
        self.state.storage().sql()
    }

    fn meta(&self) -> Meta {
        Meta::new(self.sql(), schema::META)
    }

    fn head_seq(&self) -> Result<i64> {
        self.meta().int(schema::HEAD_SEQ)
    }

    /// After a write: the stream is recorded in the directory (once; an error until it is, so
    /// nothing is confirmed for a stream the fetch API cannot find) and retention is scheduled.
    async fn after_write(&self) -> Result<()> {
        let retention_ms = env_config::load(&self.env).retention_ms;
        let first_run =
            Date::now().as_millis() as i64 + inbox_rules::gc_interval_ms(retention_ms) as i64;
        if let Err(e) = self.schedule_once(Work::Retention, first_run).await {
            // The next write tries again.
            worker::console_error!("inbox could not schedule retention: {}", e);
        }
        let meta = self.meta();
        if meta.int(schema::REGISTERED)? == 1 {
            return Ok(());
        }
        let Some(stream) = meta.text(schema::STREAM_NAME)? else {
            return Ok(());
        };
        crate::objects::directory::register(&self.env, &stream).await?;
        meta.set_int(schema::REGISTERED, 1)
    }

    async fn route(&self, mut req: Request) -> Result<Response> {
        if let Err(e) = &self.ready {
            worker::console_error!("inbox schema migration failed: {}", e);
            return respond::error(&ApiError::Unavailable);
        }
        if let Some(stream) = req.headers().get(STREAM_HEADER)? {
            let meta = self.meta();
            if meta.text(schema::STREAM_NAME)?.as_deref() != Some(stream.as_str()) {
                meta.set_text(schema::STREAM_NAME, &stream)?;
            }
        }
        let url = req.url()?;
        let route = call::verb(&req.method())
            .and_then(|v| InboxRoute::parse(v, url.path(), url.query().unwrap_or("")));
        let Some(route) = route else {
            return respond::error(&ApiError::NotFound);
        };
        match route {
            InboxRoute::Commit => {
                let body = req.bytes().await?;
                self.commit(body).await
            }
            InboxRoute::Read => {
                let body = req.text().await?;
                self.read(body).await
            }
            InboxRoute::Quarantine { after, limit } => self.quarantine_page(after, limit),
            InboxRoute::Stats => self.stats().await,
            InboxRoute::ConsumerGet { name } => self.consumer_get(&name),
            InboxRoute::ConsumerPut { name } => {
                let body = req.text().await?;
                self.consumer_put(&name, &body).await
            }
            InboxRoute::ConsumerDelete { name } => self.consumer_delete(&name),
            InboxRoute::Count(counter) => self.count(counter),
            InboxRoute::Redrive { seq, type_name } => self.redrive_one(seq, type_name).await,
            InboxRoute::RedriveBulk {
                reason,
                after,
                type_name,
            } => self.redrive_bulk(&reason, after, type_name).await,
            InboxRoute::DeliveryReport => self.delivery_report(&req.text().await?),
            InboxRoute::DeadLetterAdd => self.dead_letter_add(&req.text().await?),
            InboxRoute::DeadLetters { after, limit } => self.dead_letters_page(after, limit),
            InboxRoute::Redeliver { seq } => self.redeliver(seq).await,
            InboxRoute::Spool => {
                let body = req.bytes().await?;
                self.spool(body).await
            }
            InboxRoute::Tail(query) => self.tail_open(&req, query),
        }
    }
}

impl DurableObject for Inbox {
    fn new(state: State, env: Env) -> Self {
        let ready = schema::migrate(&state.storage().sql());
        Inbox {
            state,
            env,
            ready,
            waiters: Waiters::default(),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match self.route(req).await {
            Ok(r) => Ok(r),
            Err(e) => {
                worker::console_error!("inbox request failed: {}", e);
                respond::error(&ApiError::Unavailable)
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.run_due().await?;
        Response::ok("scheduled work done")
    }

    async fn websocket_message(&self, _ws: WebSocket, _m: WebSocketIncomingMessage) -> Result<()> {
        self.tail_message();
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _r: String,
        _c: bool,
    ) -> Result<()> {
        self.tail_closed(&ws, code);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.tail_closed(&ws, 1011);
        Ok(())
    }
}
