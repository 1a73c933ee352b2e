//! Pure core of the ICC edge inbox. Nothing here imports `worker`: every rule of the product
//! (receipt types, body parsing, normalization, identity, answers, configuration, MNS protocol)
//! is plain Rust, tested with native `cargo test`.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod address;
pub mod answer;
pub mod auth;
pub mod body;
pub mod canonical_json;
pub mod config;
pub mod delivery;
pub mod error;
pub mod fetch_query;
pub mod forward;
pub mod identity;
pub mod inbox_answers;
pub mod inbox_protocol;
pub mod inbox_rules;
pub mod inbox_tally;
pub mod message_keys;
pub mod message_type;
pub mod mns;
pub mod normalize;
pub mod object_route;
pub mod push;
pub mod recording_archive;
pub mod recording_url;
pub mod redrive;
pub mod route;
pub mod schedule;
pub mod spool;
pub mod tail;
pub mod vendor_time;
pub mod waiters;
pub mod webhook;
