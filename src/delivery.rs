//! The queue consumers. `icc-receipts`: each receipt is POSTed to `WEBHOOK_URL` per Standard
//! Webhooks (at most `MAX_CONCURRENT_REQUESTS` at once); a retryable failure is re-sent to the
//! same queue with its attempt count and a delay (Workers queues expose no attempt counter),
//! what is given up goes to `icc-receipts-dlq`. `icc-receipts-dlq`: each given-up receipt is
//! recorded in its stream's inbox. Every message is acked or retried; the handler never fails.
//! Rules: `icc_core::webhook`, `icc_core::delivery`.

use crate::env_config;
use crate::objects::inbox::Client;
use futures::future::{select, Either};
use futures::StreamExt;
use icc_core::delivery::{
    incoming, Attempted, DeadLetter, DeliveryConfig, Incoming, ReceiptKeys, Report,
};
use icc_core::webhook::{self, Attempt, Next, Verdict};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::time::Duration;
use wasm_bindgen::JsValue;
use worker::{
    AbortController, Context, Date, Delay, Env, Fetch, Headers, MessageBatch, MessageExt, Method,
    QueueContentType, QueueRetryOptionsBuilder, RawMessage, RawMessageBuilder, Request,
    RequestInit,
};

/// The dead-letter queue's name (its consumer records what it receives).
pub const DLQ_NAME: &str = "icc-receipts-dlq";
/// The producer binding of the dead-letter queue.
const DLQ_BINDING: &str = "RECEIPTS_DLQ";
/// A message that cannot be handled now (no usable secret, inbox unreachable) waits this long.
const HOLD_S: u32 = 60;

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

fn hold(m: &RawMessage, delay_s: u32) {
    m.retry_with_options(
        &QueueRetryOptionsBuilder::new()
            .with_delay_seconds(delay_s)
            .build(),
    );
}

/// The text of a message (sent as text; a JSON body is stringified).
fn body_text(m: &RawMessage) -> Option<String> {
    let b = m.body();
    b.as_string()
        .or_else(|| js_sys::JSON::stringify(&b).ok().and_then(|s| s.as_string()))
}

async fn send_text(env: &Env, binding: &str, text: String, delay_s: u32) -> worker::Result<()> {
    let mut msg = RawMessageBuilder::new(JsValue::from_str(&text));
    if delay_s > 0 {
        msg = msg.delay_seconds(delay_s);
    }
    env.queue(binding)?
        .send_raw(msg.build_with_content_type(QueueContentType::Text))
        .await
}

pub async fn consume(batch: MessageBatch<JsValue>, env: Env, _ctx: Context) {
    let messages: Vec<RawMessage> = batch.raw_iter().collect();
    if batch.queue() == DLQ_NAME {
        dead_letters(messages, &env).await;
    } else {
        webhook_batch(messages, &env).await;
    }
}

/// What one message's delivery did, for the stream's report.
struct Outcome {
    stream: Option<String>,
    delivered: bool,
    retried: bool,
    redelivered: Option<i64>,
}

async fn webhook_batch(messages: Vec<RawMessage>, env: &Env) {
    let cfg = env_config::load(env);
    let delivery = cfg.delivery;
    if delivery.webhook_url.is_none() {
        // No webhook: this Worker's consumer has nothing to do with the receipts.
        for m in &messages {
            m.ack();
        }
        return;
    }
    let outcomes: Vec<Outcome> = futures::stream::iter(messages.iter())
        .map(|m| deliver(m, env, &delivery))
        .buffer_unordered(webhook::MAX_CONCURRENT_REQUESTS)
        .collect()
        .await;
    let mut reports: BTreeMap<String, Report> = BTreeMap::new();
    for o in outcomes {
        let Some(stream) = o.stream else { continue };
        let r = reports.entry(stream).or_default();
        r.delivered += u32::from(o.delivered);
        r.retried += u32::from(o.retried);
        r.redelivered.extend(o.redelivered);
    }
    for (stream, r) in reports {
        let body = serde_json::to_string(&r).unwrap_or_default();
        let sent = match Client::new(env, &stream, &cfg.location_hint) {
            Ok(c) => c.delivery_report(body).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if sent.is_err() {
            worker::console_error!("webhook report to the inbox failed");
        }
    }
}

/// One attempt of one message; acks it, re-sends it for a retry, or hands it to the DLQ.
async fn deliver(m: &RawMessage, env: &Env, cfg: &DeliveryConfig) -> Outcome {
    let mut out = Outcome {
        stream: None,
        delivered: false,
        retried: false,
        redelivered: None,
    };
    let Some(text) = body_text(m) else {
        worker::console_error!("receipts queue: a message without a body was dropped");
        m.ack();
        return out;
    };
    let now = now_ms();
    let (receipt, before, first_at, redelivery) = match incoming(&text) {
        Some(Incoming::Fresh(r)) => (r, 0, now, false),
        Some(Incoming::Retry(a)) => (
            a.receipt.get(),
            a.attempts,
            a.first_attempt_at_ms,
            a.redelivery,
        ),
        None => {
            worker::console_error!("receipts queue: an unreadable retry was dropped");
            m.ack();
            return out;
        }
    };
    let Ok(keys) = serde_json::from_str::<ReceiptKeys>(receipt) else {
        worker::console_error!("receipts queue: a message that is not a receipt was dropped");
        m.ack();
        return out;
    };
    out.stream = Some(keys.stream.clone());
    let Some((url, secret)) = cfg.webhook() else {
        // Configured without a usable secret (/healthz says so): nothing is sent unsigned.
        hold(m, HOLD_S);
        return out;
    };
    let body = webhook::envelope(&keys.message_type, &keys.received_at, receipt);
    let attempt = post(url, secret, &keys.id, &body, cfg.timeout_ms).await;
    let attempts = before + 1;
    let (status, error) = match attempt {
        Attempt::Status(s) => (Some(s), None),
        Attempt::Timeout => (None, Some("timeout")),
        Attempt::ConnectionError => (None, Some("connection error")),
    };
    let verdict = webhook::verdict(attempt);
    if verdict == Verdict::Delivered {
        out.delivered = true;
        if redelivery {
            out.redelivered = Some(keys.seq);
        }
        m.ack();
        return out;
    }
    let Ok(raw) = RawValue::from_string(receipt.to_owned()) else {
        m.ack();
        return out;
    };
    let error = error
        .map(str::to_owned)
        .or_else(|| status.map(|s| format!("HTTP {s}")));
    let next = Attempted {
        receipt: &raw,
        attempts,
        first_attempt_at_ms: first_at,
        last_attempt_at_ms: now_ms(),
        last_status: status,
        last_error: error,
        redelivery,
    };
    let next_text = serde_json::to_string(&next).unwrap_or_default();
    let sent = match webhook::next_after_failure(verdict, attempts, cfg.max_retries) {
        Next::RetryIn(_) => {
            out.retried = true;
            let wait = cfg.backoff_s(attempts);
            send_text(env, crate::objects::inbox::QUEUE_BINDING, next_text, wait).await
        }
        Next::DeadLetter => send_text(env, DLQ_BINDING, next_text, 0).await,
    };
    match sent {
        Ok(()) => m.ack(),
        Err(_) => {
            worker::console_error!("receipts queue: re-sending a failed delivery failed");
            out.retried = false;
            hold(m, cfg.backoff_s(attempts));
        }
    }
    out
}

/// One POST; its outcome as the retry rules see it.
async fn post(
    url: &str,
    secret: &webhook::Secret,
    id: &str,
    body: &str,
    timeout_ms: u64,
) -> Attempt {
    let ts = now_ms() / 1000;
    let headers = Headers::new();
    let signature = secret.sign(id, ts, body.as_bytes());
    for (k, v) in [
        ("content-type", "application/json"),
        ("webhook-id", id),
        ("webhook-timestamp", &ts.to_string()),
        ("webhook-signature", &signature),
    ] {
        if headers.set(k, v).is_err() {
            return Attempt::ConnectionError;
        }
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(body)));
    let Ok(req) = Request::new_with_init(url, &init) else {
        return Attempt::ConnectionError;
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(req);
    let send = Box::pin(fetch.send_with_signal(&signal));
    let timer = Delay::from(Duration::from_millis(timeout_ms));
    let outcome = match select(send, timer).await {
        Either::Left((Ok(resp), _)) => Attempt::Status(resp.status_code()),
        Either::Left((Err(_), _)) => Attempt::ConnectionError,
        Either::Right(_) => Attempt::Timeout,
    };
    if outcome == Attempt::Timeout {
        controller.abort();
    }
    outcome
}

/// The dead-letter queue: each message recorded in its stream's inbox, then acked.
async fn dead_letters(messages: Vec<RawMessage>, env: &Env) {
    let cfg = env_config::load(env);
    let mut per_stream: BTreeMap<String, (Vec<DeadLetter>, Vec<&RawMessage>)> = BTreeMap::new();
    let now = now_ms();
    for m in &messages {
        let Some(text) = body_text(m) else {
            m.ack();
            continue;
        };
        let (receipt, d) = match incoming(&text) {
            Some(Incoming::Retry(a)) => (
                a.receipt.get().to_owned(),
                (
                    a.attempts,
                    a.last_status,
                    a.last_error.clone(),
                    a.first_attempt_at_ms,
                    a.last_attempt_at_ms,
                ),
            ),
            // A receipt the runtime itself gave up (its consumer failed every try).
            Some(Incoming::Fresh(r)) => (
                r.to_owned(),
                (0, None, Some("consumer failed".to_owned()), now, now),
            ),
            None => {
                m.ack();
                continue;
            }
        };
        let Ok(keys) = serde_json::from_str::<ReceiptKeys>(&receipt) else {
            m.ack();
            continue;
        };
        let entry = per_stream.entry(keys.stream).or_default();
        entry.0.push(DeadLetter {
            seq: keys.seq,
            id: keys.id,
            message_type: keys.message_type,
            attempts: d.0,
            last_status: d.1,
            last_error: d.2,
            first_attempt_at_ms: d.3,
            last_attempt_at_ms: d.4,
        });
        entry.1.push(m);
    }
    for (stream, (items, msgs)) in per_stream {
        let body = serde_json::to_string(&items).unwrap_or_default();
        let recorded = match Client::new(env, &stream, &cfg.location_hint) {
            Ok(c) => matches!(c.dead_letter_add(body).await, Ok(a) if a.status == 200),
            Err(_) => false,
        };
        for m in msgs {
            if recorded {
                m.ack();
            } else {
                hold(m, 5);
            }
        }
        if !recorded {
            worker::console_error!("dead letters could not be recorded in their inbox");
        }
    }
}
