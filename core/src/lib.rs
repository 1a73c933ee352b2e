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
pub mod error;
pub mod fetch_query;
pub mod identity;
pub mod inbox_protocol;
pub mod inbox_rules;
pub mod message_type;
pub mod mns;
pub mod normalize;
pub mod push;
pub mod route;
pub mod vendor_time;
