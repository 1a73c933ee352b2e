//! `POST /icc/{product}[/{app}]?token=…[&type=…]`: what ICC calls. Checks the address and the
//! token before reading the body, answers a byte-identical resend from KV, otherwise plans the
//! push (pure core) and commits it in the stream's inbox within the ack deadline.

use crate::objects::inbox;
use crate::{deadline, env_config, respond};
use futures::StreamExt;
use icc_core::address::PushAddress;
use icc_core::error::IccAnswer;
use icc_core::fetch_query::pairs;
use icc_core::message_type::TypePin;
use icc_core::normalize::Source;
use icc_core::object_route::Counter;
use icc_core::push::{self, Arrival, BodyRead, BodyReader};
use icc_core::route::ApiRoute;
use icc_core::spool::{self, SpoolHeader};
use worker::{console_log, Context, Date, Env, Request, Response, Result};

pub async fn handle(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    route: ApiRoute,
    arrived_ms: i64,
) -> Result<Response> {
    // The product and the method were checked by the route (the products are public); app
    // names are not: they are checked only after the token, so an allowlist cannot be probed.
    let ApiRoute::Push { rest, .. } = route else {
        return respond::icc(IccAnswer::NotFound);
    };
    let cfg = env_config::load(env);
    let tokens = match &cfg.push_tokens {
        Ok(t) if cfg.var_problems.is_empty() => t,
        _ => return respond::icc(IccAnswer::Misconfigured),
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
        return respond::icc(IccAnswer::Unauthorized);
    }
    let Some(addr) = PushAddress::parse(&rest, cfg.apps.as_deref()) else {
        return respond::icc(IccAnswer::NotFound);
    };
    let type_param = match values("type").as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => return respond::icc(IccAnswer::UnknownType),
    };
    let Some(pin) = TypePin::parse(addr.product, type_param) else {
        return respond::icc(IccAnswer::UnknownType);
    };

    let body = read_body(&mut req, cfg.max_body_bytes).await?;
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

    let body = match body {
        BodyRead::Whole(body) => body,
        BodyRead::TooLarge { size, head } => {
            let stub = push::too_large_stub(&arrival, size, &head);
            // The answer is 413 either way; the stub is committed even after the deadline.
            let stub_inbox = inbox.clone();
            let _ = deadline::before_keep_running(ctx, deadline_ms, async move {
                stub_inbox.commit(stub).await
            })
            .await;
            console_log!("push stream={} too_large bytes={}", addr.stream(), size);
            return respond::icc(IccAnswer::TooLarge);
        }
    };

    let kv_key = fast_path_key(&addr, pin, &body).await;
    let spooling = spool::should_spool(body.len(), cfg.spool_threshold_bytes);
    // The KV read is started, then the push is planned while it is in flight; a hit drops the plan.
    let (plan, remembered) = {
        let lookup = async {
            if cfg.kv_fast_path {
                crate::fast_path::lookup(env, &kv_key, cfg.kv_budget_ms).await
            } else {
                None
            }
        };
        futures::pin_mut!(lookup);
        let started = futures::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(lookup.as_mut(), cx))
        })
        .await;
        // A body over the spool threshold is not planned here: it is stored as received.
        let plan = (!spooling).then(|| push::plan(&body, &arrival));
        let remembered = match started {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => lookup.await,
        };
        (plan, remembered)
    };
    if let Some(committed_ms) = remembered {
        if committed_ms + cfg.retention_ms as i64 > Date::now().as_millis() as i64 {
            drop(plan);
            let inbox_later = inbox.clone();
            ctx.wait_until(async move {
                let _ = inbox_later.count(Counter::KvAnswered).await;
            });
            return respond::icc(IccAnswer::Success);
        }
    }

    let Some(plan) = plan else {
        // A body over SPOOL_THRESHOLD_BYTES is stored as received and drained by the inbox. Its
        // SHA-256 (the spool's dedup key) is taken by the runtime, like the KV key: these bodies
        // are the largest, and the hash is on the path that answers ICC.
        let sha256 = match crate::native_digest::sha256(&[], &body).await {
            Some(digest) => spool::body_sha256_from_digest(&digest),
            None => spool::body_sha256(&body),
        };
        let header = SpoolHeader {
            stream: addr.stream().to_owned(),
            address: address.clone(),
            product: addr.product.as_str().to_owned(),
            pin: type_param.map(str::to_owned),
            received_at_ms: arrived_ms,
            offset_s: cfg.vendor_offset.whole_seconds(),
            sha256,
        };
        let wire = spool::to_wire(&header, &body);
        let bytes = body.len();
        drop(body);
        let spool_inbox = inbox.clone();
        let spooled = deadline::before_keep_running(ctx, deadline_ms, async move {
            spool_inbox.spool(wire).await
        })
        .await;
        let code = match spooled {
            Some(Ok(new)) => {
                console_log!(
                    "push stream={} spooled={} bytes={} ms={}",
                    addr.stream(),
                    new,
                    bytes,
                    Date::now().as_millis() as i64 - arrived_ms
                );
                if cfg.kv_fast_path {
                    let env2 = env.clone();
                    let ttl = (cfg.retention_ms / 1000).max(60);
                    ctx.wait_until(async move {
                        let _ = crate::fast_path::remember(&env2, &kv_key, ttl).await;
                    });
                }
                return respond::icc(IccAnswer::Success);
            }
            None => IccAnswer::InboxTimeout,
            Some(Err(inbox::InboxError::Full)) => IccAnswer::InboxFull,
            Some(Err(inbox::InboxError::Error)) => IccAnswer::InboxError,
        };
        console_log!(
            "push stream={} answer=503 {} spool bytes={}",
            addr.stream(),
            code,
            bytes
        );
        return respond::icc(code);
    };
    drop(body); // the plan owns copies of what it needs
    let (rows, quarantined) = (plan.rows.len(), plan.quarantine.len());
    let commit_inbox = inbox.clone();
    let committed =
        deadline::before_keep_running(
            ctx,
            deadline_ms,
            async move { commit_inbox.commit(plan).await },
        )
        .await;
    let answer = match committed {
        None => Err(IccAnswer::InboxTimeout),
        Some(Err(e)) => {
            console_log!("push stream={} inbox_error: {}", addr.stream(), e.code());
            Err(match e {
                inbox::InboxError::Full => IccAnswer::InboxFull,
                inbox::InboxError::Error => IccAnswer::InboxError,
            })
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
            respond::icc(IccAnswer::Success)
        }
        Err(code) => {
            console_log!(
                "push stream={} answer=503 {} rows={}",
                addr.stream(),
                code,
                rows
            );
            respond::icc(code)
        }
    }
}

/// The KV fast-path key of `body` (`push::fast_path_key`), hashed by the runtime's native
/// SHA-256 when it has one.
async fn fast_path_key(addr: &PushAddress, pin: TypePin, body: &[u8]) -> String {
    let (product, app) = (addr.product, addr.app.as_deref());
    let prefix = push::fast_path_key_prefix(product, app, pin);
    match crate::native_digest::sha256(&prefix, body).await {
        Some(digest) => push::fast_path_key_from_digest(&digest),
        None => push::fast_path_key(product, app, pin, body),
    }
}

/// The body, read chunk by chunk up to `max` bytes: a `Content-Length` over `max` is refused
/// after reading only the stub's head, and reading stops at the limit otherwise, so a body over
/// the limit is never held whole.
async fn read_body(req: &mut Request, max: usize) -> Result<BodyRead> {
    let declared = req.headers().get("content-length")?;
    let mut reader = BodyReader::new(max, declared.as_deref());
    // A declared length within the limit is read in one go (the runtime holds the body to it).
    if reader.declared_within_limit() {
        reader.push(&req.bytes().await?);
        return Ok(reader.finish());
    }
    // No body at all (`req.stream()` refuses a request without one): an empty body.
    let Ok(mut stream) = req.stream() else {
        return Ok(reader.finish());
    };
    while reader.wants_more() {
        match stream.next().await {
            Some(chunk) => reader.push(&chunk?),
            None => break,
        }
    }
    // Dropping the stream cancels whatever the client still sends.
    drop(stream);
    Ok(reader.finish())
}
