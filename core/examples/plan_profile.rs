//! A fixed amount of push planning work for an instruction-counting profiler: the KV key, the
//! plan (parse, type, identity, normalize) and the commit wire of one push body, `n` times.
//!
//! ```sh
//! cargo build --release -p icc-core --example plan_profile
//! valgrind --tool=callgrind --callgrind-out-file=cg.out \
//!     target/release/examples/plan_profile <body.json> [n]
//! callgrind_annotate --inclusive=yes cg.out | head -60
//! ```
//!
//! Instruction counts are repeatable on a busy machine where wall-clock timings are not. Prints
//! the number of rows, quarantined pieces and wire bytes of the last round (a checksum of the
//! work, so nothing is optimized away).
//!
//! A third argument runs one stage alone, `n` times, on inputs prepared once beforehand:
//! `prep` (preparation only, the baseline to subtract), `key`, `parse`, `type`, `fields`, `id`,
//! `hash`, `normalize`, `wire`. `scripts/profile_core.sh` runs them all and prints the table.

use icc_core::body::{self, Element};
use icc_core::identity::{self, RawFields};
use icc_core::message_type::{Product, TypePin};
use icc_core::normalize::{self, Context, Source};
use icc_core::push::{self, Arrival};
use icc_core::vendor_time::parse_offset;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let body = std::fs::read(args.first().expect("usage: plan_profile <body.json> [n]"))
        .expect("read body file");
    let n: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let arrival = Arrival {
        product: Product::Llm,
        pin: TypePin::parse(Product::Llm, None).expect("no pin"),
        stream: "bench",
        address: "/icc/llm/bench",
        received_at_ms: 1_736_150_000_000,
        offset: parse_offset("+08:00").expect("offset"),
        source: Source::Push,
        mns_message_id: None,
    };
    if let Some(stage) = args.get(2) {
        stage_alone(stage, &body, &arrival, n);
        return;
    }
    let mut last = (0, 0, 0, 0);
    for _ in 0..n {
        let key = push::fast_path_key(Product::Llm, Some("bench"), arrival.pin, &body);
        let plan = std::hint::black_box(push::plan(&body, &arrival));
        let wire = plan.to_wire();
        last = (
            plan.rows.len(),
            plan.quarantine.len(),
            wire.len(),
            key.len(),
        );
    }
    println!(
        "rows {} quarantined {} wire_bytes {} key_len {}",
        last.0, last.1, last.2, last.3
    );
}

/// Runs one stage of the plan `n` times over the whole body (see the module comment).
fn stage_alone(stage: &str, body: &[u8], a: &Arrival, n: u32) {
    let received_at = icc_core::vendor_time::format_utc_ms(a.received_at_ms);
    let parsed: Vec<(&str, serde_json::Map<String, serde_json::Value>)> = body::parse(body)
        .into_iter()
        .filter_map(|e| match e {
            Element::Message(m) => Some((m.raw, m.object)),
            Element::Bad { .. } => None,
        })
        .collect();
    let types: Vec<_> = parsed
        .iter()
        .map(|(_, o)| a.pin.type_of(a.product, o).expect("typed"))
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
    let plan = push::plan(body, a);
    let mut sum = 0usize;
    for _ in 0..n {
        sum += match stage {
            "prep" => 0,
            "key" => push::fast_path_key(Product::Llm, Some("bench"), a.pin, body).len(),
            "parse" => body::parse(body).len(),
            "type" => parsed
                .iter()
                .filter(|(_, o)| a.pin.type_of(a.product, o).is_some())
                .count(),
            "fields" => parsed
                .iter()
                .filter_map(|(raw, _)| RawFields::parse(raw))
                .count(),
            "id" => types
                .iter()
                .zip(&fields)
                .zip(&parsed)
                .map(|((t, f), (raw, _))| {
                    identity::receipt_id(*t, &identity::components(*t, f, raw)).len()
                })
                .sum(),
            "hash" => parsed
                .iter()
                .map(|(raw, _)| identity::content_hash_parsed(raw).len())
                .sum(),
            "normalize" => parsed
                .iter()
                .zip(&types)
                .zip(&fields)
                .zip(&ids)
                .map(|((((_, o), t), f), id)| {
                    let cx = Context {
                        stream: a.stream,
                        product: a.product,
                        source: a.source,
                        offset: a.offset,
                        received_at: &received_at,
                        mns_message_id: None,
                        raw_fields: Some(f),
                    };
                    let n = normalize::normalize(*t, id.clone(), o, &cx);
                    serde_json::to_string(&n).map(|s| s.len()).unwrap_or(0)
                })
                .sum(),
            "wire" => plan.to_wire().len(),
            other => panic!("unknown stage {other}"),
        };
        std::hint::black_box(sum);
    }
    println!("stage {stage} n {n} checksum {sum}");
}
