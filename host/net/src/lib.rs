//! `shipper-net`: what every network client in shipper shares, so each concept has one home.
//! The SLS client and consumer (`shipper-sls`), the sinks (`shipper-sinks`) and the delivery
//! core (the `shipper` library) all depend on it; it depends on nothing of theirs.
//!
//! Layout:
//! - [`backoff`]: [`Backoff`], capped exponential backoff with equal jitter, the one retry
//!   schedule of every retry loop (SLS calls, sink requests and reconnects, checkpoint
//!   commits, a failing plugin batch).
//! - [`proxy`]: which HTTP proxy a connection uses ([`proxy::route`]), HTTP `CONNECT`
//!   tunnels for raw TCP clients, and failure explanations that name the proxy.
#![deny(missing_docs)]

pub mod backoff;
pub mod proxy;

pub use backoff::Backoff;
