//! The fetch API under `/v1`: what downstream systems call, with `Authorization: Bearer`.
//! The token is checked before anything else (a refused route is answered only after it); the
//! route and its query are validated in the core and handed to the stream's inbox or the
//! directory. A stream that was never written has no inbox, and reading it creates none.

use crate::objects::call::Answer;
use crate::objects::directory;
use crate::objects::inbox::Client;
use crate::{env_config, respond};
use icc_core::auth::bearer;
use icc_core::config::Config;
use icc_core::error::ApiError;
use icc_core::fetch_query;
use icc_core::inbox_answers::{
    consumer_cursor, consumer_deleted, unwritten_quarantine, unwritten_receipts, unwritten_stats,
    unwritten_visible,
};
use icc_core::inbox_protocol::ReadRequest;
use icc_core::route::{ApiRoute, ConsumerOp};
use worker::{Date, Env, Request, Response, Result};

type Answered = std::result::Result<Response, ApiError>;

pub async fn handle(
    req: Request,
    env: &Env,
    route: std::result::Result<ApiRoute, ApiError>,
) -> Result<Response> {
    let cfg = env_config::load(env);
    let tokens = match &cfg.fetch_tokens {
        Ok(t) if cfg.var_problems.is_empty() => t,
        _ => return respond::error(&ApiError::Misconfigured),
    };
    let auth = req.headers().get("authorization")?;
    let protocol_token = crate::tail::protocol_token(&req, &route);
    let presented = bearer(auth.as_deref()).or(protocol_token.as_deref());
    if !presented.is_some_and(|t| tokens.accepts(t)) {
        return respond::error(&ApiError::Unauthorized);
    }
    let route = match route {
        Ok(r) => r,
        Err(e) => return respond::error(&e),
    };
    let query = req.url()?.query().unwrap_or("").to_owned();
    match answer(req, env, &cfg, route, &query).await {
        Ok(resp) => Ok(resp),
        Err(e) => respond::error(&e),
    }
}

/// An unexpected failure of the runtime: logged, answered `503 unavailable`.
fn unexpected(e: worker::Error) -> ApiError {
    worker::console_error!("fetch API failed unexpectedly: {}", e);
    ApiError::Unavailable
}

fn json(status: u16, body: String) -> Answered {
    respond::json(status, body).map_err(unexpected)
}

/// What a stream route needs from the query, validated before the stream is looked up: a bad
/// query is a 400 whether or not the stream exists.
enum Checked {
    Read(ReadRequest),
    Quarantine { after: i64, limit: u32 },
    Stats,
    Consumer { name: String, op: ConsumerOp },
    DeadLetters { after: i64, limit: u32 },
    Redeliver { seq: Option<i64> },
}

async fn answer(req: Request, env: &Env, cfg: &Config, route: ApiRoute, query: &str) -> Answered {
    let (stream, checked) = match route {
        ApiRoute::Streams => return streams(env, query).await,
        ApiRoute::AllStats => return all_stats(env, cfg, query).await,
        ApiRoute::Receipts { stream } => {
            let read = fetch_query::receipts(&stream, query, cfg.max_wait_s)?;
            (stream, Checked::Read(read))
        }
        ApiRoute::Quarantine { stream } => {
            let (after, limit) = fetch_query::quarantine(query)?;
            (stream, Checked::Quarantine { after, limit })
        }
        ApiRoute::StreamStats { stream } => {
            fetch_query::no_parameters(query)?;
            (stream, Checked::Stats)
        }
        ApiRoute::Consumer { stream, name, op } => {
            fetch_query::no_parameters(query)?;
            (stream, Checked::Consumer { name, op })
        }
        ApiRoute::Redrive { stream, seq } => {
            return crate::redrive::one(env, cfg, &stream, seq, query).await
        }
        ApiRoute::RedriveBulk { stream } => {
            return crate::redrive::bulk(env, cfg, &stream, query).await
        }
        ApiRoute::DeadLetters { stream } => {
            let (after, limit) = fetch_query::quarantine(query)?;
            (stream, Checked::DeadLetters { after, limit })
        }
        ApiRoute::Redeliver { stream } => {
            let seq = fetch_query::redeliver(query)?;
            (stream, Checked::Redeliver { seq })
        }
        ApiRoute::Tail { stream } => return crate::tail::open(req, env, cfg, &stream, query).await,
        ApiRoute::Health
        | ApiRoute::Push { .. }
        | ApiRoute::Console { .. }
        | ApiRoute::OpenApi
        | ApiRoute::ReceiptSchema => return Err(ApiError::NotFound),
        ApiRoute::Recording { stream, id } => {
            fetch_query::no_parameters(query)?;
            return crate::recording_download::answer(&req, env, &stream, &id).await;
        }
    };
    stream_route(req, env, cfg, &stream, checked).await
}

async fn stream_route(
    mut req: Request,
    env: &Env,
    cfg: &Config,
    stream: &str,
    checked: Checked,
) -> Answered {
    let started_ms = Date::now().as_millis();
    // Writes (a consumer PUT) go to the inbox, which records the stream; reads of a stream that
    // was never written are answered here, as an empty inbox would.
    let writes = matches!(
        checked,
        Checked::Consumer {
            op: ConsumerOp::Put,
            ..
        }
    );
    if !writes {
        let (wait_ms, consumer) = match &checked {
            Checked::Read(r) => (r.wait_ms, r.consumer.as_deref()),
            _ => (0, None),
        };
        match directory::exists(env, stream, wait_ms, consumer).await {
            Ok(Some(true)) => {}
            Ok(Some(false)) if !unwritten_visible(stream, cfg.apps.as_deref()) => {
                return Err(ApiError::NoSuchStream);
            }
            Ok(Some(false)) => {
                return match checked {
                    Checked::Read(r) => json(200, unwritten_receipts(r.after.unwrap_or(0))?),
                    Checked::Quarantine { after, .. } => json(200, unwritten_quarantine(after)),
                    Checked::Stats => stream_stats(stream, unwritten_stats()),
                    Checked::Consumer {
                        op: ConsumerOp::Delete,
                        ..
                    } => json(200, consumer_deleted(false)),
                    Checked::Consumer { .. } => json(200, consumer_cursor(0, 0)),
                    Checked::DeadLetters { after, .. } => json(
                        200,
                        format!(r#"{{"items":[],"next_after":{after},"has_more":false}}"#),
                    ),
                    Checked::Redeliver { .. } => json(200, r#"{"redelivered":0}"#.to_owned()),
                };
            }
            Ok(None) => return Err(ApiError::TooManyWaiters),
            Err(_) => return Err(ApiError::Unavailable),
        }
    }
    let inbox = Client::new(env, stream, &cfg.location_hint).map_err(unexpected)?;
    match checked {
        Checked::Read(mut read) => {
            // The wait counts from the request's arrival, also when it waited for the stream.
            let waited = Date::now().as_millis().saturating_sub(started_ms);
            read.wait_ms = read.wait_ms.saturating_sub(waited);
            match inbox.read(&read).await {
                Ok(a) => json(a.status, a.body),
                // A long poll interrupted (object reset or moved) is a page, never 5xx: the read
                // is asked again without waiting, and answered as an empty page if that fails too.
                Err(_) if read.wait_ms > 0 => {
                    let again = ReadRequest {
                        wait_ms: 0,
                        ..read.clone()
                    };
                    match inbox.read(&again).await {
                        Ok(a) => json(a.status, a.body),
                        Err(_) => json(200, interrupted_page(read.after)),
                    }
                }
                Err(_) => Err(ApiError::Unavailable),
            }
        }
        Checked::Quarantine { after, limit } => pass(inbox.quarantine(after, limit).await),
        Checked::Stats => match inbox.stats().await {
            Ok(a) if a.status == 200 => stream_stats(stream, a.body),
            Ok(a) => json(a.status, a.body),
            Err(_) => Err(ApiError::Unavailable),
        },
        Checked::Consumer { name, op } => match op {
            ConsumerOp::Get => pass(inbox.consumer_get(&name).await),
            ConsumerOp::Put => {
                let body = req.text().await.map_err(unexpected)?;
                pass(inbox.consumer_put(&name, body).await)
            }
            ConsumerOp::Delete => pass(inbox.consumer_delete(&name).await),
        },
        Checked::DeadLetters { after, limit } => pass(inbox.dead_letters(after, limit).await),
        Checked::Redeliver { seq } => pass(inbox.redeliver(seq).await),
    }
}

/// The empty page of a long poll whose inbox could not be reached twice: the page's shape, with
/// `head_seq` and `oldest_seq` null (unknown) and `interrupted` set.
fn interrupted_page(after: Option<i64>) -> String {
    serde_json::json!({
        "receipts": [], "next_after": after, "head_seq": null, "oldest_seq": null,
        "has_more": false, "interrupted": true,
    })
    .to_string()
}

/// `GET /v1/streams/{stream}/stats`: one stream's stats under its name.
fn stream_stats(stream: &str, body: String) -> Answered {
    json(200, format!("{{\"streams\":{{{}:{body}}}}}", quote(stream)))
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The inbox's answer as it is; a failed call is `503 unavailable`.
fn pass(answer: Result<Answer>) -> Answered {
    match answer {
        Ok(a) => json(a.status, a.body),
        Err(_) => Err(ApiError::Unavailable),
    }
}

async fn streams(env: &Env, query: &str) -> Answered {
    let after = fetch_query::stream_page(query)?;
    let (list, more) = directory::list(env, &after)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    let next = if more { list.last().cloned() } else { None };
    json(
        200,
        serde_json::json!({ "streams": list, "next_stream": next }).to_string(),
    )
}

async fn all_stats(env: &Env, cfg: &Config, query: &str) -> Answered {
    let after = fetch_query::stream_page(query)?;
    let (list, more) = directory::list(env, &after)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    let hint = cfg.location_hint.as_str();
    let calls = list.iter().map(|s| async move {
        let inbox = Client::new(env, s, hint).ok()?;
        match inbox.stats().await {
            Ok(Answer { status: 200, body }) => Some(format!("{}:{body}", quote(s))),
            _ => None,
        }
    });
    let queues = cfg.mns.queues.iter().map(|q| async move {
        let body = crate::objects::mns_puller::stats(env, &q.queue_name)
            .await
            .ok()?;
        Some(format!("{}:{body}", quote(&q.queue_name)))
    });
    // Streams and queues are asked at once, not one set after the other.
    let (parts, mns) = futures::future::join(
        futures::future::join_all(calls),
        futures::future::join_all(queues),
    )
    .await;
    let parts: Vec<String> = parts.into_iter().flatten().collect();
    let mns: Vec<String> = mns.into_iter().flatten().collect();
    let next = if more {
        quote(list.last().map(String::as_str).unwrap_or(""))
    } else {
        "null".to_owned()
    };
    json(
        200,
        format!(
            "{{\"streams\":{{{}}},\"next_stream\":{next},\"mns\":{{{}}}}}",
            parts.join(","),
            mns.join(",")
        ),
    )
}
