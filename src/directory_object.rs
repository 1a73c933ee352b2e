//! The stream directory: one Durable Object that records each stream on its first write, so the
//! fetch API can list streams and gather stats across them.

use crate::respond;
use icc_core::address::is_stream;
use icc_core::error::ApiError;
use serde::Deserialize;
use serde_json::json;
use wasm_bindgen::JsValue;
use worker::{
    durable_object, Date, DurableObject, Env, Method, Request, Response, Result, SqlStorageValue,
    State,
};

const BINDING: &str = "DIRECTORY";
const NAME: &str = "directory";
pub const PAGE: u32 = 50;

async fn call(
    env: &Env,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<(u16, String)> {
    let stub = env.durable_object(BINDING)?.get_by_name(NAME)?;
    let body = body.map(|b| JsValue::from_str(&b));
    crate::object_call::call(&stub, "directory", method, path, None, body).await
}

/// Records `stream` (idempotent).
pub async fn register(env: &Env, stream: &str) -> Result<()> {
    match call(
        env,
        Method::Post,
        "/register",
        Some(json!({ "stream": stream }).to_string()),
    )
    .await?
    {
        (200, _) => Ok(()),
        (s, _) => Err(worker::Error::RustError(format!("directory answered {s}"))),
    }
}

/// Streams after `after` (by name), at most `PAGE`, and whether more follow.
pub async fn list(env: &Env, after: &str) -> Result<(Vec<String>, bool)> {
    #[derive(Deserialize)]
    struct L {
        streams: Vec<String>,
        more: bool,
    }
    let q = icc_core::fetch_query::encode(&[("after", after)]);
    let (_, text) = call(env, Method::Get, &format!("/list?{q}"), None).await?;
    let l: L = serde_json::from_str(&text).map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok((l.streams, l.more))
}

#[durable_object]
pub struct Directory {
    state: State,
}

impl DurableObject for Directory {
    fn new(state: State, _env: Env) -> Self {
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS streams (name TEXT PRIMARY KEY, first_seen_ms INTEGER NOT NULL)",
            None,
        );
        Directory { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let sql = self.state.storage().sql();
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/register") => {
                #[derive(Deserialize)]
                struct R {
                    stream: String,
                }
                let r: R = req.json().await?;
                if !is_stream(&r.stream) {
                    return respond::error(&ApiError::bad("invalid stream name"));
                }
                sql.exec(
                    "INSERT INTO streams(name, first_seen_ms) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                    vec![SqlStorageValue::from(r.stream), SqlStorageValue::from(Date::now().as_millis() as i64)],
                )?;
                respond::json(200, "{}".to_owned())
            }
            (Method::Get, "/list") => {
                let query = req.url()?.query().unwrap_or("").to_owned();
                let after = icc_core::fetch_query::pairs(&query)
                    .into_iter()
                    .find(|(k, _)| k == "after")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                #[derive(Deserialize)]
                struct N {
                    name: String,
                }
                let rows: Vec<N> = sql
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
            _ => respond::error(&ApiError::NotFound),
        }
    }
}
