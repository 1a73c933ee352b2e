//! `POST /icc/{product}[/{app}]?token=…[&type=…]`: what ICC calls. Checks the address and the
//! token before reading the body, answers a byte-identical resend from KV, otherwise plans the
//! push (pure core) and commits it in the stream's inbox within the ack deadline.

use crate::objects::inbox;
use crate::{deadline, env_config, respond};
use icc_core::address::PushAddress;
use icc_core::fetch_query::pairs;
use icc_core::identity::sha256_hex;
use icc_core::message_type::TypePin;
use icc_core::normalize::Source;
use icc_core::object_route::Counter;
use icc_core::push::{self, Arrival, TOO_LARGE_HEAD_BYTES};
use worker::{console_log, Context, Date, Env, Method, Request, Response, Result};

pub async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    rest: &str,
    arrived_ms: i64,
) -> Result<Response> {
    let cfg = env_config::load(env);
    // The product is public (it is in the console); app names are not: they are checked only
    // after the token, so an allowlist cannot be probed without it.
    let product_known = rest
        .split('/')
        .next()
        .and_then(icc_core::message_type::Product::from_path)
        .is_some();
    if !product_known {
        return respond::icc(404, "unknown product or app");
    }
    if req.method() != Method::Post {
        return respond::icc(405, "method not allowed").map(|r| respond::with_allow(r, "POST"));
    }
    let tokens = match &cfg.push_tokens {
        Ok(t) if cfg.var_problems.is_empty() => t,
        _ => return respond::icc(500, "misconfigured"),
    };
    let query = req.url()?.query().unwrap_or("").to_owned();
    let params = pairs(&query);
    let values = |key: &str| {
        params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
    };
    // A repeated token or type is ambiguous: refused, never resolved by position.
    let token = match values("token").as_slice() {
        [one] => *one,
        _ => "",
    };
    if !tokens.accepts(token) {
        return respond::icc(401, "unauthorized");
    }
    let Some(addr) = PushAddress::parse(rest, cfg.apps.as_deref()) else {
        return respond::icc(404, "unknown product or app");
    };
    let type_param = match values("type").as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => return respond::icc(400, "unknown type"),
    };
    let Some(pin) = TypePin::parse(addr.product, type_param) else {
        return respond::icc(400, "unknown type");
    };

    let body = req.bytes().await?;
    let address = addr.path();
    let arrival = Arrival {
        product: addr.product,
        pin,
        stream: addr.stream(),
        address: &address,
        received_at_ms: arrived_ms,
        offset: cfg.vendor_offset,
        source: Source::Push,
        mns_message_id: None,
    };
    let inbox = inbox::Client::new(env, addr.stream(), &cfg.location_hint)?;
    let deadline_ms = arrived_ms + cfg.ack_deadline_ms as i64;

    if body.len() > cfg.max_body_bytes {
        let head = &body[..TOO_LARGE_HEAD_BYTES.min(body.len())];
        let stub = push::too_large_stub(&arrival, body.len(), sha256_hex(&body), head);
        // The answer is 413 either way; the stub is best effort within the deadline.
        let _ = deadline::before(deadline_ms, inbox.commit(stub)).await;
        console_log!(
            "push stream={} too_large bytes={}",
            addr.stream(),
            body.len()
        );
        return respond::icc(413, "body too large");
    }

    let kv_key = push::fast_path_key(addr.product, addr.app.as_deref(), pin, &body);
    if cfg.kv_fast_path {
        if let Some(committed_ms) = crate::fast_path::lookup(env, &kv_key, cfg.kv_budget_ms).await {
            if committed_ms + cfg.retention_ms as i64 > Date::now().as_millis() as i64 {
                let inbox_later = inbox.clone();
                ctx.wait_until(async move {
                    let _ = inbox_later.count(Counter::KvAnswered).await;
                });
                return respond::icc(0, "Success");
            }
        }
    }

    let plan = push::plan(&body, &arrival);
    drop(body); // the plan owns copies of what it needs
    let (rows, quarantined) = (plan.rows.len(), plan.quarantine.len());
    let answer = match deadline::before(deadline_ms, inbox.commit(plan)).await {
        None => Err("inbox_timeout"),
        Some(Err(e)) => {
            console_log!("push stream={} inbox_error: {}", addr.stream(), e.code());
            Err(e.code())
        }
        Some(Ok(result)) => Ok(result),
    };
    match answer {
        Ok(result) => {
            console_log!(
                "push stream={} rows={} stored={} duplicate={} conflict={} quarantined={} head_seq={} ms={}",
                addr.stream(),
                rows,
                result.stored,
                result.duplicate,
                result.conflict,
                quarantined,
                result.head_seq,
                Date::now().as_millis() as i64 - arrived_ms
            );
            if cfg.kv_fast_path {
                let env2 = env.clone();
                let ttl = (cfg.retention_ms / 1000).max(60);
                let inbox_later = inbox.clone();
                ctx.wait_until(async move {
                    if !crate::fast_path::remember(&env2, &kv_key, ttl).await {
                        let _ = inbox_later.count(Counter::KvWriteFailed).await;
                    }
                });
            }
            respond::icc(0, "Success")
        }
        Err(code) => {
            console_log!(
                "push stream={} answer=503 {} rows={}",
                addr.stream(),
                code,
                rows
            );
            respond::icc(503, code)
        }
    }
}
