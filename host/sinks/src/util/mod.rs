//! The delivery toolkit both sinks share (style.md habit 13): batching triggers
//! ([`batch`]), backoff with full jitter ([`retry`]) and rustls client configs from files
//! ([`tls`]). Each sink supplies only its defaults and its response classifier.

pub mod batch;
pub mod retry;
pub mod tls;
