//! `shipper-sls`: the Alibaba Cloud SLS (LogHub) wire protocol, seen from both sides.
//!
//! The consumer side (`client`, `api`, `consumer`) is what `shipper run` uses to join a
//! consumer group and pull log groups; the emulator (`shipper-emulator`) reuses the protocol
//! pieces (`proto`, `codec`, `cursor`, `sign`) so there is exactly one implementation of each,
//! checked once against the official SDK's test vectors in `tests/fixtures/sls/`.
//! Reference: `docs/sls-protocol.md`.
//!
//! Layout:
//! - [`proto`]: prost types for `LogGroupList` & co., and a zero-copy group splitter.
//! - [`codec`]: raw LZ4 block bodies with a decompressed-size cap.
//! - [`cursor`]: the base64-of-decimal cursor format.
//! - [`flat`]: the flattened log form the official SDK presents (both directions) and the
//!   built-in sample logs.
//! - [`sign`]: request signing v1 (HMAC-SHA1) and v4 (HMAC-SHA256), credentials with
//!   redacted secrets.
//! - [`credentials`]: where credentials come from (providers named as Alibaba Cloud's
//!   credential tools name them) and [`RefreshingCredentials`], which keeps them fresh.
//! - [`error`]: [`SlsError`], with retryability decided when it is built.
//! - [`client`]: [`Client`] (endpoint, project, credentials, reqwest + rustls/ring) and the
//!   signed request helper.
//! - [`api`]: the API calls as `Client` methods (logs, shards, consumer groups, setup).
//! - [`consumer`]: the consumer-group worker: [`Consumer`] joins a group and heartbeats,
//!   hands out a [`ShardLease`] per assigned shard, whose prefetching [`ShardReader`] yields
//!   [`PulledBatch`]es and whose checkpoints go back through the lease; optional
//!   [`ConsumerStats`] count its retries for metrics.
#![deny(missing_docs)]

pub mod api;
pub mod client;
pub mod codec;
pub mod consumer;
pub mod credentials;
pub mod cursor;
pub mod error;
pub mod flat;
pub mod proto;
pub mod sign;

#[cfg(test)]
mod fixtures;

pub use api::consumer_group::{ConsumerGroupInfo, ShardCheckpoint};
pub use api::logs::{CursorPosition, PullRequest, PullResponse, Route};
pub use api::shards::{ShardInfo, ShardStatus};
pub use client::{Client, ClientConfig};
pub use consumer::{
    BudgetShare, Charge, Checkpointer, Consumer, ConsumerConfig, ConsumerStats, MemoryBudget,
    PulledBatch, ReadErrorKind, ReadEvent, RetriedCall, RetryCause, Revocation, RevokeReason,
    ShardLease, ShardReader, ShutdownReport,
};
pub use credentials::{CredentialStats, RefreshingCredentials};
pub use cursor::Cursor;
pub use error::{ApiError, SlsError};
