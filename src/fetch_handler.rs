//! The fetch API under `/v1`: what downstream systems call, with `Authorization: Bearer`.
//! Validates the request (pure core) and hands it to the stream's inbox or the directory.

use crate::inbox_object::Client;
use crate::{directory_object, env_config, respond};
use icc_core::address::is_stream;
use icc_core::auth::bearer;
use icc_core::fetch_query;
use worker::{Env, Method, Request, Response, Result};

pub async fn handle(mut req: Request, env: &Env, path: &str) -> Result<Response> {
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
            let inbox = Client::new(env, stream, &cfg.location_hint)?;
            match (rest, method.clone()) {
                (["receipts"], m) if get_only(&m) => {
                    let read = match fetch_query::receipts(stream, &query, cfg.max_wait_s) {
                        Ok(r) => r,
                        Err(e) => return respond::fetch_error(e.status, e.code, &e.message),
                    };
                    let body = serde_json::to_string(&read)
                        .map_err(|e| worker::Error::RustError(e.to_string()))?;
                    match inbox.call(Method::Post, "/read", Some(body)).await {
                        Ok((status, body)) => respond::json(status, body),
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
                (["quarantine"], m) if get_only(&m) => pass(
                    inbox
                        .call(Method::Get, &format!("/quarantine?{query}"), None)
                        .await,
                ),
                (["stats"], m) if get_only(&m) => {
                    let (status, body) = match inbox.call(Method::Get, "/stats", None).await {
                        Ok(v) => v,
                        Err(_) => return unavailable(),
                    };
                    if status != 200 {
                        return respond::json(status, body);
                    }
                    respond::json(200, format!("{{\"streams\":{{{}:{body}}}}}", quote(stream)))
                }
                (["consumers", name], m)
                    if matches!(m, Method::Get | Method::Put | Method::Delete) =>
                {
                    let body = if m == Method::Put {
                        Some(req.text().await?)
                    } else {
                        None
                    };
                    pass(inbox.call(m, &format!("/consumers/{name}"), body).await)
                }
                (["receipts"] | ["quarantine"] | ["stats"], _) => not_allowed("GET"),
                (["consumers", _], _) => not_allowed("GET, PUT, DELETE"),
                _ => respond::fetch_error(404, "not_found", "no such route"),
            }
        }
        ["streams"] | ["stats"] => not_allowed("GET"),
        _ => respond::fetch_error(404, "not_found", "no such route"),
    }
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
fn pass(answer: Result<(u16, String)>) -> Result<Response> {
    match answer {
        Ok((status, body)) => respond::json(status, body),
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
    let Ok((list, more)) = directory_object::list(env, &after_param(query)).await else {
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
    let Ok((list, more)) = directory_object::list(env, &after_param(query)).await else {
        return unavailable();
    };
    let hint = cfg.location_hint.as_str();
    let calls = list.iter().map(|s| async move {
        let inbox = Client::new(env, s, hint).ok()?;
        match inbox.call(Method::Get, "/stats", None).await {
            Ok((200, body)) => Some(format!("{}:{body}", quote(s))),
            _ => None,
        }
    });
    let queues = cfg.mns.queues.iter().map(|q| async move {
        let body = crate::mns_puller::stats(env, &q.queue_name).await.ok()?;
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
