//! The stream directory: one Durable Object that records each stream on its first write, so the
//! fetch API can list streams, gather stats across them, and answer reads of a stream that was
//! never written without creating its inbox. Routes: [`DirectoryRoute`].

use crate::objects::call::{self, Answer};
use crate::objects::waiters::{Waiters, Wake};
use crate::respond;
use futures::channel::oneshot;
use futures::future::{select, Either};
use icc_core::error::ApiError;
use icc_core::inbox_rules;
use icc_core::object_route::DirectoryRoute;
use serde::Deserialize;
use serde_json::json;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use worker::{
    durable_object, Date, Delay, DurableObject, Env, Request, Response, Result, SqlStorageValue,
    State,
};

const BINDING: &str = "DIRECTORY";
const NAME: &str = "directory";
pub const PAGE: u32 = 50;
/// Reads waiting for streams to appear, across all streams (then 429); per stream the inbox's
/// bound applies.
const MAX_WAITERS_ALL: usize = 1000;
/// Stream names a Worker instance remembers as existing (streams are never removed).
const KNOWN_CACHE: usize = 10_000;

thread_local! {
    static KNOWN: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

async fn send(env: &Env, route: DirectoryRoute) -> Result<Answer> {
    let stub = env.durable_object(BINDING)?.get_by_name(NAME)?;
    let path = route.path();
    call::call(&stub, "directory", (route.verb(), &path), None, None).await
}

fn refused(a: &Answer) -> worker::Error {
    worker::Error::RustError(format!("directory answered {}", a.status))
}

/// Records `stream` (idempotent).
pub async fn register(env: &Env, stream: &str) -> Result<()> {
    let a = send(
        env,
        DirectoryRoute::Register {
            stream: stream.to_owned(),
        },
    )
    .await?;
    if a.status == 200 {
        Ok(())
    } else {
        Err(refused(&a))
    }
}

/// Whether `stream` was ever written, waiting up to `wait_ms` for its first write (a long poll
/// of `consumer`). `Ok(None)`: too many reads are waiting for it to appear.
pub async fn exists(
    env: &Env,
    stream: &str,
    wait_ms: u64,
    consumer: Option<&str>,
) -> Result<Option<bool>> {
    if KNOWN.with(|k| k.borrow().contains(stream)) {
        return Ok(Some(true));
    }
    #[derive(Deserialize)]
    struct Exists {
        exists: bool,
    }
    let route = DirectoryRoute::Exists {
        stream: stream.to_owned(),
        wait_ms,
        consumer: consumer.map(str::to_owned),
    };
    let a = send(env, route).await?;
    match a.status {
        200 => {}
        429 => return Ok(None),
        _ => return Err(refused(&a)),
    }
    let e: Exists =
        serde_json::from_str(&a.body).map_err(|e| worker::Error::RustError(e.to_string()))?;
    if e.exists {
        KNOWN.with(|k| {
            let mut k = k.borrow_mut();
            if k.len() >= KNOWN_CACHE {
                k.clear();
            }
            k.insert(stream.to_owned());
        });
    }
    Ok(Some(e.exists))
}

/// Streams after `after` (by name), at most `PAGE`, and whether more follow.
pub async fn list(env: &Env, after: &str) -> Result<(Vec<String>, bool)> {
    #[derive(Deserialize)]
    struct Listed {
        streams: Vec<String>,
        more: bool,
    }
    let a = send(
        env,
        DirectoryRoute::List {
            after: after.to_owned(),
        },
    )
    .await?;
    let l: Listed =
        serde_json::from_str(&a.body).map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok((l.streams, l.more))
}

#[durable_object]
pub struct Directory {
    state: State,
    /// Reads waiting for a stream's first write, by stream name.
    waiters: RefCell<HashMap<String, Waiters>>,
}

/// A stream name, as listed.
#[derive(Deserialize)]
struct NameRow {
    name: String,
}

impl Directory {
    fn is_known(&self, stream: &str) -> Result<bool> {
        let rows: Vec<NameRow> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT name FROM streams WHERE name = ?",
                vec![SqlStorageValue::from(stream)],
            )?
            .to_array()?;
        Ok(!rows.is_empty())
    }

    /// A slot to wait for `stream`; `None` when too many reads wait.
    fn wait_for(&self, stream: &str, consumer: Option<&str>) -> Option<oneshot::Receiver<Wake>> {
        let mut all = self.waiters.borrow_mut();
        all.retain(|_, w| w.waiting() > 0);
        if all.values().map(Waiters::waiting).sum::<usize>() >= MAX_WAITERS_ALL {
            return None;
        }
        all.entry(stream.to_owned())
            .or_default()
            .join(consumer, inbox_rules::MAX_WAITERS)
    }

    async fn exists(&self, stream: &str, wait_ms: u64, consumer: Option<&str>) -> Result<Response> {
        let deadline = Date::now().as_millis() + wait_ms;
        let mut known = self.is_known(stream)?;
        let now = Date::now().as_millis();
        if !known && now < deadline {
            let Some(rx) = self.wait_for(stream, consumer) else {
                return respond::error(&ApiError::TooManyWaiters);
            };
            let delay = Delay::from(Duration::from_millis(deadline - now));
            if let Either::Left((Ok(Wake::Changed), _)) = select(rx, delay).await {
                known = self.is_known(stream)?;
            }
        }
        respond::json(200, json!({ "exists": known }).to_string())
    }
}

impl DurableObject for Directory {
    fn new(state: State, _env: Env) -> Self {
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS streams (name TEXT PRIMARY KEY, first_seen_ms INTEGER NOT NULL)",
            None,
        );
        Directory {
            state,
            waiters: RefCell::new(HashMap::new()),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.url()?;
        let route = call::verb(&req.method())
            .and_then(|v| DirectoryRoute::parse(v, url.path(), url.query().unwrap_or("")));
        let sql = self.state.storage().sql();
        match route {
            Some(DirectoryRoute::Register { stream }) => {
                sql.exec(
                    "INSERT INTO streams(name, first_seen_ms) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                    vec![SqlStorageValue::from(stream.as_str()), SqlStorageValue::from(Date::now().as_millis() as i64)],
                )?;
                if let Some(w) = self.waiters.borrow_mut().remove(&stream) {
                    w.wake_all();
                }
                respond::json(200, "{}".to_owned())
            }
            Some(DirectoryRoute::Exists {
                stream,
                wait_ms,
                consumer,
            }) => self.exists(&stream, wait_ms, consumer.as_deref()).await,
            Some(DirectoryRoute::List { after }) => {
                let rows: Vec<NameRow> = sql
                    .exec(
                        "SELECT name FROM streams WHERE name > ? ORDER BY name LIMIT ?",
                        vec![
                            SqlStorageValue::from(after),
                            SqlStorageValue::from(i64::from(PAGE) + 1),
                        ],
                    )?
                    .to_array()?;
                let more = rows.len() as u32 > PAGE;
                let streams: Vec<String> = rows
                    .into_iter()
                    .take(PAGE as usize)
                    .map(|n| n.name)
                    .collect();
                respond::json(200, json!({ "streams": streams, "more": more }).to_string())
            }
            None => respond::error(&ApiError::NotFound),
        }
    }
}
