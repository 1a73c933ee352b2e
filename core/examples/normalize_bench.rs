//! Native throughput of the push planning step (the same `icc_core` code the Worker runs in
//! wasm): body bytes → parsed messages → type → identity → normalized receipt → commit wire.
//!
//! ```sh
//! cargo run --release -p icc-core --example normalize_bench -- <body.json> [seconds] [max_iterations]
//! ```
//!
//! `body.json` is one push body (a JSON array of messages), e.g. the 1,000-message batch that
//! `npm run bench` writes. Without it, a 1,000-message batch is generated from the
//! LlmSmartCallReport fixture. Runs each step for at most `seconds` (default 2) and at most
//! `max_iterations` (default 100,000) batches, single-threaded, and prints one JSON line.

use icc_core::body::{self, Element};
use icc_core::identity::{self, RawFields};
use icc_core::message_type::{Product, TypePin};
use icc_core::normalize::{self, Context, Source};
use icc_core::push::{self, Arrival};
use icc_core::vendor_time::parse_offset;
use std::time::{Duration, Instant};

fn generated_body() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/icc/llm/LlmSmartCallReport.json"
    );
    let text = std::fs::read_to_string(path).expect("read fixture");
    let fixture: Vec<serde_json::Value> = serde_json::from_str(&text).expect("fixture parses");
    let mut msgs = Vec::with_capacity(1000);
    for i in 0..1000 {
        let mut m = fixture[0].clone();
        m["call_id"] = serde_json::Value::String(format!("bench-native-{i}"));
        msgs.push(m);
    }
    serde_json::to_vec(&msgs).expect("serialize")
}

struct Measured {
    iterations: u64,
    seconds: f64,
    /// Fastest single batch, ms.
    min_ms: f64,
    /// Median batch, ms.
    p50_ms: f64,
}

fn measure(budget: Duration, max_iter: u64, mut f: impl FnMut() -> usize) -> Measured {
    // Warm-up (allocator, caches) outside the measurement.
    for _ in 0..3 {
        std::hint::black_box(f());
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while (times.len() as u64) < max_iter && start.elapsed() < budget {
        let t = Instant::now();
        std::hint::black_box(f());
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let seconds = start.elapsed().as_secs_f64();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Measured {
        iterations: times.len() as u64,
        seconds,
        min_ms: times.first().copied().unwrap_or(0.0),
        p50_ms: times.get(times.len() / 2).copied().unwrap_or(0.0),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let body = match args.first() {
        Some(p) if p != "-" => std::fs::read(p).expect("read body file"),
        _ => generated_body(),
    };
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let max_iter: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let budget = Duration::from_secs_f64(secs);

    let offset = parse_offset("+08:00").expect("offset");
    let arrival = Arrival {
        product: Product::Llm,
        pin: TypePin::parse(Product::Llm, None).expect("no pin"),
        stream: "bench",
        address: "/icc/llm/bench",
        received_at_ms: 1_736_150_000_000,
        offset,
        source: Source::Push,
        mns_message_id: None,
    };

    let probe = push::plan(&body, &arrival);
    let messages = probe.rows.len();
    let quarantined = probe.quarantine.len();
    let wire_bytes = probe.to_wire().len();

    // What the Worker does per push before the inbox call: KV key (SHA-256 of the body),
    // plan (parse, infer type, identity, normalize), and the commit wire serialization.
    let full = measure(budget, max_iter, || {
        let key = push::fast_path_key(Product::Llm, Some("bench"), arrival.pin, &body);
        let plan = push::plan(&body, &arrival);
        key.len() + plan.to_wire().len()
    });
    // The plan alone (parse + normalize + identity).
    let plan_only = measure(budget, max_iter, || push::plan(&body, &arrival).rows.len());

    // Where the time goes: each step of the plan alone, over the whole batch (each step's
    // inputs prepared outside its timing). Step budgets are a fifth of the total budget.
    let step_budget = budget / 5;
    let received_at = icc_core::vendor_time::format_utc_ms(arrival.received_at_ms);
    let parsed: Vec<(&str, serde_json::Map<String, serde_json::Value>)> = body::parse(&body)
        .into_iter()
        .filter_map(|e| match e {
            Element::Message(m) => Some((m.raw, m.object)),
            Element::Bad { .. } => None,
        })
        .collect();
    let types: Vec<_> = parsed
        .iter()
        .map(|(_, o)| arrival.pin.type_of(arrival.product, o).expect("typed"))
        .collect();
    let fields: Vec<RawFields> = parsed
        .iter()
        .map(|(raw, _)| RawFields::parse(raw).expect("object"))
        .collect();
    let ids: Vec<String> = types
        .iter()
        .zip(&fields)
        .zip(&parsed)
        .map(|((t, f), (raw, _))| identity::receipt_id(*t, &identity::components(*t, f, raw)))
        .collect();
    let steps: Vec<(&str, Measured)> = vec![
        (
            "body::parse (array split + each message to a serde_json Map)",
            measure(step_budget, max_iter, || body::parse(&body).len()),
        ),
        (
            "type inference",
            measure(step_budget, max_iter, || {
                parsed
                    .iter()
                    .filter(|(_, o)| arrival.pin.type_of(arrival.product, o).is_some())
                    .count()
            }),
        ),
        (
            "Map clone into Value (row_for)",
            measure(step_budget, max_iter, || {
                parsed
                    .iter()
                    .map(|(_, o)| match serde_json::Value::Object(o.clone()) {
                        serde_json::Value::Object(m) => m.len(),
                        _ => 0,
                    })
                    .sum::<usize>()
            }),
        ),
        (
            "RawFields::parse (second parse of each message)",
            measure(step_budget, max_iter, || {
                parsed
                    .iter()
                    .filter_map(|(raw, _)| RawFields::parse(raw))
                    .count()
            }),
        ),
        (
            "identity id (components + SHA-256)",
            measure(step_budget, max_iter, || {
                types
                    .iter()
                    .zip(&fields)
                    .zip(&parsed)
                    .map(|((t, f), (raw, _))| {
                        identity::receipt_id(*t, &identity::components(*t, f, raw)).len()
                    })
                    .sum::<usize>()
            }),
        ),
        (
            "content_hash (RFC 8785 canonical JSON + SHA-256)",
            measure(step_budget, max_iter, || {
                parsed
                    .iter()
                    .map(|(raw, _)| identity::content_hash(raw).len())
                    .sum::<usize>()
            }),
        ),
        (
            "normalize + serialize normalized receipt",
            measure(step_budget, max_iter, || {
                parsed
                    .iter()
                    .zip(&types)
                    .zip(&fields)
                    .zip(&ids)
                    .map(|((((_, o), t), f), id)| {
                        let cx = Context {
                            stream: arrival.stream,
                            product: arrival.product,
                            source: arrival.source,
                            offset: arrival.offset,
                            received_at: &received_at,
                            mns_message_id: None,
                            raw_fields: Some(f),
                        };
                        let n = normalize::normalize(*t, id.clone(), o, &cx);
                        serde_json::to_string(&n).map(|s| s.len()).unwrap_or(0)
                    })
                    .sum::<usize>()
            }),
        ),
        (
            "to_wire (commit request JSON)",
            measure(step_budget, max_iter, || probe.to_wire().len()),
        ),
        (
            "fast_path_key (SHA-256 of the body)",
            measure(step_budget, max_iter, || {
                push::fast_path_key(Product::Llm, Some("bench"), arrival.pin, &body).len()
            }),
        ),
    ];
    let step_json: Vec<serde_json::Value> = steps
        .iter()
        .map(|(what, m)| serde_json::json!({ "step": what, "batch_ms_p50": m.p50_ms, "batch_ms_min": m.min_ms, "iterations": m.iterations }))
        .collect();

    let per_s = |m: &Measured| m.iterations as f64 * messages as f64 / m.seconds;
    let mb_s = |m: &Measured| m.iterations as f64 * body.len() as f64 / m.seconds / 1e6;
    println!(
        "{}",
        serde_json::json!({
            "body_bytes": body.len(),
            "messages": messages,
            "quarantined": quarantined,
            "wire_bytes": wire_bytes,
            "full": {
                "what": "fast_path_key + plan + to_wire",
                "iterations": full.iterations,
                "seconds": full.seconds,
                "batch_ms_p50": full.p50_ms,
                "batch_ms_min": full.min_ms,
                "messages_per_s": per_s(&full),
                "mb_per_s": mb_s(&full),
            },
            "plan": {
                "what": "plan (parse, type, identity, normalize)",
                "iterations": plan_only.iterations,
                "seconds": plan_only.seconds,
                "batch_ms_p50": plan_only.p50_ms,
                "batch_ms_min": plan_only.min_ms,
                "messages_per_s": per_s(&plan_only),
                "mb_per_s": mb_s(&plan_only),
            },
            "steps": step_json,
        })
    );
}
