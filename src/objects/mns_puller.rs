//! MNS consumption mode: one `MnsPuller` Durable Object per configured queue drains it into the
//! same inbox as the push path. Its alarm loop long-polls BatchReceiveMessage, commits each batch
//! in the stream's inbox, and deletes the messages only once the commit is durable; a failed
//! commit leaves them to reappear after the queue's visibility timeout. A cron trigger kicks
//! every puller each minute so the loop restarts by itself after any failure.
//!
//! Routes: [`PullerRoute`]. Its `settings` table is a [`Meta`] (queue name, token expiry).

use crate::objects::call;
use crate::objects::inbox::Client;
use crate::objects::meta::Meta;
use crate::{env_config, respond};
use icc_core::config::{Config, MnsConfig};
use icc_core::mns::consume::plan_batch;
use icc_core::mns::{
    batch_delete_request, batch_receive_request, parse_batch_delete_error_body, parse_error,
    parse_messages, parse_query_token_response, query_token_signed_query, BatchDeleteErrorBody,
    MnsCredentials, MnsErrorKind, MnsRequest, MnsToken, QueryTokenParams, QueueBinding, MAX_BATCH,
};
use icc_core::object_route::{PullerRoute, QUEUE_HEADER};
use serde::Deserialize;
use serde_json::json;
use std::cell::RefCell;
use wasm_bindgen::JsValue;
use worker::{
    durable_object, Date, DurableObject, Env, Fetch, Headers, Method, Request, RequestInit,
    Response, Result, SqlStorageValue, State,
};

/// The puller's key/value table.
const SETTINGS: &str = "settings";
const QUEUE: &str = "queue";
const TOKEN_EXPIRE_MS: &str = "token_expire_ms";

const BINDING: &str = "MNS_PULLER";
/// Pause after an error before the next poll.
const ERROR_BACKOFF_MS: i64 = 5_000;
/// Pause after an empty poll (the poll itself already waited `MNS_WAIT_S`).
const IDLE_MS: i64 = 250;

const COUNTERS: [&str; 9] = [
    "polls",
    "received",
    "stored",
    "duplicate",
    "deleted",
    "delete_failed",
    "errors",
    "quarantined",
    "token_refreshes",
];

/// Counters kept under an older name: (stored name, reported name).
const RENAMED: [(&str, &str); 1] = [("duplicates", "duplicate")];

/// Asks the puller of `queue` to make sure its loop runs.
pub async fn kick(env: &Env, queue: &str) -> Result<()> {
    send(env, queue, PullerRoute::Kick).await.map(|_| ())
}

/// The counters of the puller of `queue`, as JSON text.
pub async fn stats(env: &Env, queue: &str) -> Result<String> {
    send(env, queue, PullerRoute::Stats).await
}

async fn send(env: &Env, queue: &str, route: PullerRoute) -> Result<String> {
    let stub = env.durable_object(BINDING)?.get_by_name(queue)?;
    let name = Some((QUEUE_HEADER, queue));
    let path = (route.verb(), route.path());
    Ok(call::call(&stub, "mns", path, name, None).await?.body)
}

#[durable_object]
pub struct MnsPuller {
    state: State,
    env: Env,
    token: RefCell<Option<MnsToken>>,
}

/// What one poll cycle did.
#[derive(Default)]
struct Cycle {
    received: i64,
    stored: i64,
    duplicate: i64,
    deleted: i64,
    delete_failed: i64,
    quarantined: i64,
    error: Option<String>,
}

fn err(msg: impl Into<String>) -> worker::Error {
    worker::Error::RustError(msg.into())
}

impl MnsPuller {
    fn add(&self, name: &str, n: i64) {
        if n == 0 {
            return;
        }
        let _ = self.state.storage().sql().exec(
            "INSERT INTO counters(name, v) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET v = v + excluded.v",
            vec![SqlStorageValue::from(name), SqlStorageValue::from(n)],
        );
    }

    fn settings(&self) -> Meta {
        Meta::new(self.state.storage().sql(), SETTINGS)
    }

    fn queue_name(&self) -> Result<Option<String>> {
        self.settings().text(QUEUE)
    }

    fn binding(&self, cfg: &Config) -> Option<QueueBinding> {
        let name = self.queue_name().ok()??;
        cfg.mns
            .queues
            .iter()
            .find(|q| q.queue_name == name)
            .cloned()
    }

    /// A fresh token for the queue's MessageType: cached until 2 minutes before `ExpireTime`.
    async fn token(&self, mns: &MnsConfig, binding: &QueueBinding) -> Result<MnsToken> {
        let now = Date::now().as_millis() as i64;
        if let Some(t) = self.token.borrow().as_ref().filter(|t| t.is_fresh(now)) {
            return Ok(t.clone());
        }
        let (Some(id), Some(secret)) = (&mns.access_key_id, &mns.access_key_secret) else {
            return Err(err("MNS credentials are not configured"));
        };
        let nonce = format!("{:x}{:x}", now, (js_sys::Math::random() * 1e15) as u64);
        let query = query_token_signed_query(&QueryTokenParams {
            access_key_id: id,
            access_key_secret: secret,
            message_type: binding.message_type,
            queue_name: Some(&binding.queue_name),
            nonce: &nonce,
            unix_secs: now / 1000,
        })
        .map_err(|e| err(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post);
        let req = Request::new_with_init(&mns.endpoints.dybaseapi_url(&query), &init)?;
        let mut resp = Fetch::Request(req).send().await?;
        let body = resp.text().await?;
        let token = parse_query_token_response(&body)
            .map_err(|e| err(format!("QueryTokenForMnsQueue: {e}")))?
            .token;
        self.add("token_refreshes", 1);
        let _ = self
            .settings()
            .set_text(TOKEN_EXPIRE_MS, &token.expire_time_ms.to_string());
        *self.token.borrow_mut() = Some(token.clone());
        Ok(token)
    }

    async fn send(&self, mns: &MnsConfig, r: &MnsRequest) -> Result<(u16, String)> {
        let mut init = RequestInit::new();
        init.with_method(if r.method == "DELETE" {
            Method::Delete
        } else {
            Method::Get
        });
        let headers = Headers::new();
        for (k, v) in &r.headers {
            headers.set(k, v)?;
        }
        init.with_headers(headers);
        if let Some(b) = &r.body {
            init.with_body(Some(JsValue::from_str(b)));
        }
        let req = Request::new_with_init(&mns.endpoints.mns_url(&r.path_and_query), &init)?;
        let mut resp = Fetch::Request(req).send().await?;
        let text = resp.text().await?;
        Ok((resp.status_code(), text))
    }

    /// One cycle: receive a batch, commit it, delete what is durable.
    async fn cycle(&self) -> Cycle {
        let cfg = env_config::load(&self.env);
        let mut c = Cycle::default();
        let Some(binding) = self.binding(&cfg) else {
            c.error = Some("queue is not configured in MNS_QUEUES".into());
            return c;
        };
        if let Err(e) = self.cycle_inner(&cfg, &binding, &mut c).await {
            c.error = Some(e.to_string());
        }
        self.add("polls", 1);
        self.add("received", c.received);
        self.add("stored", c.stored);
        self.add("duplicate", c.duplicate);
        self.add("deleted", c.deleted);
        self.add("delete_failed", c.delete_failed);
        self.add("quarantined", c.quarantined);
        if let Some(e) = &c.error {
            self.add("errors", 1);
            worker::console_error!("mns queue={} error: {}", binding.queue_name, e);
        } else if c.received > 0 {
            worker::console_log!(
                "mns queue={} received={} stored={} duplicate={} deleted={}",
                binding.queue_name,
                c.received,
                c.stored,
                c.duplicate,
                c.deleted
            );
        }
        c
    }

    async fn cycle_inner(&self, cfg: &Config, binding: &QueueBinding, c: &mut Cycle) -> Result<()> {
        let mns = &cfg.mns;
        let token = self.token(mns, binding).await?;
        let creds = MnsCredentials {
            access_key_id: &token.access_key_id,
            access_key_secret: &token.access_key_secret,
            security_token: Some(&token.security_token),
        };
        let now_s = Date::now().as_millis() as i64 / 1000;
        let receive = batch_receive_request(
            &creds,
            &binding.queue_name,
            MAX_BATCH,
            Some(mns.wait_s),
            now_s,
        )
        .map_err(|e| err(e.to_string()))?;
        let (status, body) = self.send(mns, &receive).await?;
        if status != 200 {
            let e = parse_error(&body)
                .map_err(|_| err(format!("BatchReceiveMessage answered {status}")))?;
            return match e.kind() {
                MnsErrorKind::MessageNotExist => Ok(()),
                MnsErrorKind::Credentials | MnsErrorKind::AccessDenied => {
                    *self.token.borrow_mut() = None;
                    Err(err(format!(
                        "BatchReceiveMessage: {} (token dropped)",
                        e.code
                    )))
                }
                _ => Err(err(format!("BatchReceiveMessage: {}", e.code))),
            };
        }
        let messages =
            parse_messages(&body).map_err(|e| err(format!("BatchReceiveMessage XML: {e}")))?;
        c.received = messages.len() as i64;
        if messages.is_empty() {
            return Ok(());
        }
        let (plan, handles) = plan_batch(
            binding,
            &messages,
            Date::now().as_millis() as i64,
            cfg.vendor_offset,
        );
        c.quarantined = plan.quarantine.len() as i64;
        let inbox = Client::new(&self.env, &plan.stream, &cfg.location_hint)?;
        let result = inbox
            .commit(plan)
            .await
            .map_err(|e| err(format!("inbox: {}", e.code())))?;
        c.stored = i64::from(result.stored);
        c.duplicate = i64::from(result.duplicate);
        // Durable: now the messages may go.
        let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
        let now_s = Date::now().as_millis() as i64 / 1000;
        let delete = batch_delete_request(&creds, &binding.queue_name, &refs, now_s)
            .map_err(|e| err(e.to_string()))?;
        let (status, body) = self.send(mns, &delete).await?;
        if (200..300).contains(&status) {
            c.deleted = refs.len() as i64;
            return Ok(());
        }
        match parse_batch_delete_error_body(&body) {
            Ok(BatchDeleteErrorBody::Partial(failures)) => {
                c.deleted = refs.len() as i64 - failures.len() as i64;
                c.delete_failed = failures.len() as i64;
                for f in &failures {
                    // A stale handle's message reappears and is absorbed by dedup.
                    worker::console_log!("mns delete entry failed: {}", f.error_code);
                }
                Ok(())
            }
            Ok(BatchDeleteErrorBody::Whole(e)) => {
                Err(err(format!("BatchDeleteMessage: {}", e.code)))
            }
            Err(_) => Err(err(format!("BatchDeleteMessage answered {status}"))),
        }
    }

    fn stats(&self) -> Result<Response> {
        #[derive(Deserialize)]
        struct C {
            name: String,
            v: f64,
        }
        let rows: Vec<C> = self
            .state
            .storage()
            .sql()
            .exec("SELECT name, v FROM counters", None)?
            .to_array()?;
        let mut out = serde_json::Map::new();
        for name in COUNTERS {
            let v: i64 = rows
                .iter()
                .filter(|r| {
                    r.name == name
                        || RENAMED
                            .iter()
                            .any(|&(old, new)| new == name && r.name == old)
                })
                .map(|r| r.v as i64)
                .sum();
            out.insert(name.to_owned(), json!(v));
        }
        let expiry = self
            .settings()
            .text(TOKEN_EXPIRE_MS)?
            .and_then(|v| v.parse::<i64>().ok())
            .map(icc_core::vendor_time::format_utc_ms);
        out.insert("token_expires_at".into(), json!(expiry));
        out.insert("queue".into(), json!(self.queue_name()?));
        respond::json(200, serde_json::Value::Object(out).to_string())
    }

    async fn arm(&self, in_ms: i64) {
        let _ = self.state.storage().set_alarm(in_ms.max(0)).await;
    }
}

impl DurableObject for MnsPuller {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, v INTEGER NOT NULL)",
            None,
        );
        let _ = sql.exec(
            "CREATE TABLE IF NOT EXISTS settings (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
            None,
        );
        MnsPuller {
            state,
            env,
            token: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        if let Some(q) = req.headers().get(QUEUE_HEADER)? {
            if self.queue_name()?.as_deref() != Some(q.as_str()) {
                self.settings().set_text(QUEUE, &q)?;
            }
        }
        let route = call::verb(&req.method()).and_then(|v| PullerRoute::parse(v, &req.path()));
        match route {
            Some(PullerRoute::Poll) => {
                let c = self.cycle().await;
                respond::json(
                    200,
                    json!({"received": c.received, "stored": c.stored, "duplicate": c.duplicate,
                           "deleted": c.deleted, "delete_failed": c.delete_failed,
                           "quarantined": c.quarantined, "error": c.error})
                    .to_string(),
                )
            }
            Some(PullerRoute::Kick) => {
                if self.state.storage().get_alarm().await?.is_none() {
                    self.arm(0).await;
                }
                respond::json(200, "{}".to_owned())
            }
            Some(PullerRoute::Stats) => self.stats(),
            None => respond::error(&icc_core::error::ApiError::NotFound),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let cfg = env_config::load(&self.env);
        if !cfg.mns.enabled() || self.binding(&cfg).is_none() {
            // Mode turned off or queue removed: the loop stops; the cron restarts it if needed.
            return Response::ok("mns off");
        }
        let c = self.cycle().await;
        let next = if c.error.is_some() {
            ERROR_BACKOFF_MS
        } else if c.received > 0 {
            0
        } else {
            IDLE_MS
        };
        self.arm(next).await;
        Response::ok("polled")
    }
}
