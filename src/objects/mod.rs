//! The Durable Objects, one folder or file each, and what they share: the internal call
//! ([`call`]), the key/value table ([`meta`]), synchronous transactions ([`storage_tx`]) and
//! held long polls ([`waiters`]).
//! Their routes are enums in `icc_core::object_route`.

pub mod call;
pub mod directory;
pub mod inbox;
pub mod meta;
pub mod mns_puller;
pub mod storage_tx;
pub mod waiters;
