//! The fetch API under `/v1`: what downstream systems call, with `Authorization: Bearer`.
//! The token is checked before anything else (a refused route is answered only after it); the
//! route and its query are validated in the core and handed to the stream's inbox or the
//! directory.

use crate::inbox_object::Client;
use crate::{directory_object, env_config, respond};
use icc_core::auth::bearer;
use icc_core::error::ApiError;
use icc_core::fetch_query;
use icc_core::inbox_protocol::ReadRequest;
use icc_core::route::{ApiRoute, ConsumerOp};
use worker::{Env, Method, Request, Response, Result};

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
    if !bearer(auth.as_deref()).is_some_and(|t| tokens.accepts(t)) {
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

fn json(status: u16, body: String) -> std::result::Result<Response, ApiError> {
    respond::json(status, body).map_err(unexpected)
}

fn to_json<T: serde::Serialize>(v: &T) -> std::result::Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| unexpected(worker::Error::RustError(e.to_string())))
}

async fn answer(
    mut req: Request,
    env: &Env,
    cfg: &icc_core::config::Config,
    route: ApiRoute,
    query: &str,
) -> std::result::Result<Response, ApiError> {
    let inbox = |stream: &str| Client::new(env, stream, &cfg.location_hint).map_err(unexpected);
    match route {
        ApiRoute::Streams => streams(env, query).await,
        ApiRoute::AllStats => all_stats(env, cfg, query).await,
        ApiRoute::Receipts { stream } => {
            let read = fetch_query::receipts(&stream, query, cfg.max_wait_s)?;
            let inbox = inbox(&stream)?;
            let body = to_json(&read)?;
            match inbox.call(Method::Post, "/read", Some(body)).await {
                Ok((status, body)) => json(status, body),
                // A long poll interrupted (object reset or moved) is a page, never 5xx: the read
                // is asked again without waiting, and answered as an empty page if that fails too.
                Err(_) if read.wait_ms > 0 => {
                    let again = to_json(&ReadRequest {
                        wait_ms: 0,
                        ..read.clone()
                    })?;
                    match inbox.call(Method::Post, "/read", Some(again)).await {
                        Ok((status, body)) => json(status, body),
                        Err(_) => json(200, interrupted_page(read.after)),
                    }
                }
                Err(_) => Err(ApiError::Unavailable),
            }
        }
        ApiRoute::Quarantine { stream } => {
            fetch_query::quarantine(query)?;
            let inbox = inbox(&stream)?;
            pass(
                inbox
                    .call(Method::Get, &format!("/quarantine?{query}"), None)
                    .await,
            )
        }
        ApiRoute::StreamStats { stream } => {
            fetch_query::no_parameters(query)?;
            let inbox = inbox(&stream)?;
            let (status, body) = inbox
                .call(Method::Get, "/stats", None)
                .await
                .map_err(|_| ApiError::Unavailable)?;
            if status != 200 {
                return json(status, body);
            }
            json(
                200,
                format!("{{\"streams\":{{{}:{body}}}}}", quote(&stream)),
            )
        }
        ApiRoute::Consumer { stream, name, op } => {
            fetch_query::no_parameters(query)?;
            let inbox = inbox(&stream)?;
            let (method, body) = match op {
                ConsumerOp::Get => (Method::Get, None),
                ConsumerOp::Put => (Method::Put, Some(req.text().await.map_err(unexpected)?)),
                ConsumerOp::Delete => (Method::Delete, None),
            };
            pass(
                inbox
                    .call(method, &format!("/consumers/{name}"), body)
                    .await,
            )
        }
        ApiRoute::Health | ApiRoute::Push { .. } => Err(ApiError::NotFound),
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

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The inbox's answer as it is; a failed call is `503 unavailable`.
fn pass(answer: Result<(u16, String)>) -> std::result::Result<Response, ApiError> {
    match answer {
        Ok((status, body)) => json(status, body),
        Err(_) => Err(ApiError::Unavailable),
    }
}

async fn streams(env: &Env, query: &str) -> std::result::Result<Response, ApiError> {
    let after = fetch_query::stream_page(query)?;
    let (list, more) = directory_object::list(env, &after)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    let next = if more { list.last().cloned() } else { None };
    json(
        200,
        serde_json::json!({ "streams": list, "next_stream": next }).to_string(),
    )
}

async fn all_stats(
    env: &Env,
    cfg: &icc_core::config::Config,
    query: &str,
) -> std::result::Result<Response, ApiError> {
    let after = fetch_query::stream_page(query)?;
    let (list, more) = directory_object::list(env, &after)
        .await
        .map_err(|_| ApiError::Unavailable)?;
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
    let body = format!(
        "{{\"streams\":{{{}}},\"next_stream\":{next},\"mns\":{{{}}}}}",
        parts.join(","),
        mns.join(",")
    );
    json(200, body)
}
