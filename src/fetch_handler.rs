//! The fetch API under `/v1`: what downstream systems call, with `Authorization: Bearer`.
//! Validates the request (pure core) and hands it to the stream's inbox or the directory.

use crate::objects::call::Answer;
use crate::objects::directory;
use crate::objects::inbox::Client;
use crate::{env_config, respond};
use icc_core::address::{is_consumer, is_stream};
use icc_core::auth::bearer;
use icc_core::config::Config;
use icc_core::fetch_query;
use icc_core::inbox_answers::{
    consumer_cursor, consumer_deleted, unwritten_quarantine, unwritten_receipts, unwritten_stats,
    unwritten_visible,
};
use worker::{Date, Env, Method, Request, Response, Result};

pub async fn handle(req: Request, env: &Env, path: &str) -> Result<Response> {
    let cfg = env_config::load(env);
    let tokens = match &cfg.fetch_tokens {
        Ok(t) if cfg.var_problems.is_empty() => t,
        _ => {
            return respond::fetch_error(
                500,
                "misconfigured",
                "the fetch API is not configured; see /healthz",
            )
        }
    };
    let auth = req.headers().get("authorization")?;
    if !bearer(auth.as_deref()).is_some_and(|t| tokens.accepts(t)) {
        return respond::fetch_error(401, "unauthorized", "missing or wrong bearer token");
    }
    let query = req.url()?.query().unwrap_or("").to_owned();
    let method = req.method();
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(2).collect();
    let get_only = |m: &Method| *m == Method::Get || *m == Method::Head;
    match parts.as_slice() {
        ["streams"] if get_only(&method) => streams(env, &query).await,
        ["stats"] if get_only(&method) => all_stats(env, &query).await,
        ["streams", stream, rest @ ..] => {
            if !is_stream(stream) {
                return respond::fetch_error(404, "not_found", "no such stream");
            }
            let route = match (rest, method.clone()) {
                (["receipts"], m) if get_only(&m) => StreamRoute::Receipts,
                (["quarantine"], m) if get_only(&m) => StreamRoute::Quarantine,
                (["stats"], m) if get_only(&m) => StreamRoute::Stats,
                (["consumers", name], m)
                    if matches!(m, Method::Get | Method::Put | Method::Delete) =>
                {
                    if !is_consumer(name) {
                        return respond::fetch_error(
                            400,
                            "bad_request",
                            "consumer names are 1-64 of [A-Za-z0-9_.-]",
                        );
                    }
                    match m {
                        Method::Get => StreamRoute::ConsumerGet(name),
                        Method::Put => StreamRoute::ConsumerPut(name),
                        _ => StreamRoute::ConsumerDelete(name),
                    }
                }
                (["receipts"] | ["quarantine"] | ["stats"], _) => return not_allowed("GET"),
                (["consumers", _], _) => return not_allowed("GET, PUT, DELETE"),
                _ => return respond::fetch_error(404, "not_found", "no such route"),
            };
            stream_route(req, env, &cfg, stream, route, &query).await
        }
        ["streams"] | ["stats"] => not_allowed("GET"),
        _ => respond::fetch_error(404, "not_found", "no such route"),
    }
}

/// A `/v1/streams/{stream}/…` route (method and consumer name checked).
enum StreamRoute<'a> {
    Receipts,
    Quarantine,
    Stats,
    ConsumerGet(&'a str),
    ConsumerPut(&'a str),
    ConsumerDelete(&'a str),
}

async fn stream_route(
    mut req: Request,
    env: &Env,
    cfg: &Config,
    stream: &str,
    route: StreamRoute<'_>,
    query: &str,
) -> Result<Response> {
    let started_ms = Date::now().as_millis();
    // Validated first: a bad query is a 400 whether or not the stream exists.
    let mut read = None;
    let mut quarantine = None;
    match route {
        StreamRoute::Receipts => match fetch_query::receipts(stream, query, cfg.max_wait_s) {
            Ok(r) => read = Some(r),
            Err(e) => return respond::fetch_error(e.status, e.code, &e.message),
        },
        StreamRoute::Quarantine => match fetch_query::quarantine(query) {
            Ok(q) => quarantine = Some(q),
            Err(e) => return respond::fetch_error(e.status, e.code, &e.message),
        },
        _ => {}
    }
    // A stream that was never written has no inbox: reading it must not create one. Writes
    // (a consumer PUT) go to the inbox, which records the stream.
    if !matches!(route, StreamRoute::ConsumerPut(_)) {
        let wait_ms = read.as_ref().map_or(0, |r| r.wait_ms);
        let consumer = read.as_ref().and_then(|r| r.consumer.as_deref());
        match directory::exists(env, stream, wait_ms, consumer).await {
            Ok(Some(true)) => {}
            Ok(Some(false)) if !unwritten_visible(stream, cfg.apps.as_deref()) => {
                return respond::fetch_error(404, "not_found", "no such stream");
            }
            Ok(Some(false)) => {
                return match (route, read, quarantine) {
                    (StreamRoute::Receipts, Some(r), _) => {
                        match unwritten_receipts(r.after.unwrap_or(0)) {
                            Ok(page) => respond::json(200, page),
                            Err(e) => respond::fetch_error(e.status, e.code, &e.message),
                        }
                    }
                    (StreamRoute::Quarantine, _, Some((after, _))) => {
                        respond::json(200, unwritten_quarantine(after))
                    }
                    (StreamRoute::Stats, ..) => stream_stats(stream, unwritten_stats()),
                    (StreamRoute::ConsumerDelete(_), ..) => {
                        respond::json(200, consumer_deleted(false))
                    }
                    _ => respond::json(200, consumer_cursor(0, 0)),
                };
            }
            Ok(None) => {
                return respond::fetch_error(
                    429,
                    "too_many_waiters",
                    "too many long polls on this stream",
                )
            }
            Err(_) => return unavailable(),
        }
    }
    let inbox = Client::new(env, stream, &cfg.location_hint)?;
    match route {
        StreamRoute::Receipts => {
            let Some(mut read) = read else {
                return unavailable();
            };
            // The wait counts from the request's arrival, also when it waited for the stream.
            let waited = Date::now().as_millis().saturating_sub(started_ms);
            read.wait_ms = read.wait_ms.saturating_sub(waited);
            match inbox.read(&read).await {
                Ok(a) => respond::json(a.status, a.body),
                // A long poll interrupted (object reset or moved) is an empty page, never 5xx.
                Err(_) if read.wait_ms > 0 => respond::json(
                    200,
                    serde_json::json!({"receipts": [], "next_after": read.after, "has_more": false,
                                       "interrupted": true})
                    .to_string(),
                ),
                Err(_) => unavailable(),
            }
        }
        StreamRoute::Quarantine => {
            let (after, limit) = quarantine.unwrap_or((0, fetch_query::DEFAULT_LIMIT));
            pass(inbox.quarantine(after, limit).await)
        }
        StreamRoute::Stats => match inbox.stats().await {
            Ok(a) if a.status == 200 => stream_stats(stream, a.body),
            Ok(a) => respond::json(a.status, a.body),
            Err(_) => unavailable(),
        },
        StreamRoute::ConsumerGet(name) => pass(inbox.consumer_get(name).await),
        StreamRoute::ConsumerPut(name) => {
            let body = req.text().await?;
            pass(inbox.consumer_put(name, body).await)
        }
        StreamRoute::ConsumerDelete(name) => pass(inbox.consumer_delete(name).await),
    }
}

/// `GET /v1/streams/{stream}/stats`: one stream's stats under its name.
fn stream_stats(stream: &str, body: String) -> Result<Response> {
    respond::json(200, format!("{{\"streams\":{{{}:{body}}}}}", quote(stream)))
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn not_allowed(allow: &str) -> Result<Response> {
    respond::fetch_error(405, "method_not_allowed", &format!("use {allow}"))
        .map(|r| respond::with_allow(r, allow))
}

fn unavailable() -> Result<Response> {
    respond::fetch_error(503, "inbox_unavailable", "the inbox did not answer; retry")
}

/// The inbox's answer as it is; a failed call is a 503 JSON error.
fn pass(answer: Result<Answer>) -> Result<Response> {
    match answer {
        Ok(a) => respond::json(a.status, a.body),
        Err(_) => unavailable(),
    }
}

fn after_param(query: &str) -> String {
    fetch_query::pairs(query)
        .into_iter()
        .find(|(k, _)| k == "after")
        .map(|(_, v)| v)
        .unwrap_or_default()
}

async fn streams(env: &Env, query: &str) -> Result<Response> {
    let Ok((list, more)) = directory::list(env, &after_param(query)).await else {
        return unavailable();
    };
    let next = if more { list.last().cloned() } else { None };
    respond::json(
        200,
        serde_json::json!({ "streams": list, "next_after": next }).to_string(),
    )
}

async fn all_stats(env: &Env, query: &str) -> Result<Response> {
    let cfg = env_config::load(env);
    let Ok((list, more)) = directory::list(env, &after_param(query)).await else {
        return unavailable();
    };
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
    respond::json(
        200,
        format!(
            "{{\"streams\":{{{}}},\"next_after\":{next},\"mns\":{{{}}}}}",
            parts.join(","),
            mns.join(",")
        ),
    )
}
