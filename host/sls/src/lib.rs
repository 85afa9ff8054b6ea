//! `shipper-sls`: the Alibaba Cloud SLS (LogHub) wire protocol, seen from both sides.
//!
//! The consumer side (`client`, `api`, `consumer`) is what `shipper run` uses to join a
//! consumer group and pull log groups; the emulator (`shipper-emulator`) reuses the protocol
//! pieces (`proto`, `codec`, `cursor`, `sign`) so there is exactly one implementation of each,
//! checked once against the official SDK's test vectors in `shared/testdata/sls/`.
//! Reference: `shared/sls-protocol.md`.
//!
//! Layout:
//! - [`proto`]: prost types for `LogGroupList` & co., and a zero-copy group splitter.
//! - [`codec`]: raw LZ4 block bodies with a decompressed-size cap.
//! - [`cursor`]: the base64-of-decimal cursor format.
//! - [`sign`]: request signing v1 (HMAC-SHA1), credentials with redacted secrets.
#![deny(missing_docs)]

pub mod codec;
pub mod cursor;
pub mod proto;
pub mod sign;
