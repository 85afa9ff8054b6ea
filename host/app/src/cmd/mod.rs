//! The commands: each parses its own flags (clap `Args`), wires the library's parts together
//! and returns a typed [`Failure`](crate::exit::Failure). No delivery logic lives here.
//!
//! - [`run`]: `shipper run` (consumer group → plugin → sink).
//! - [`emulator`]: `shipper emulator` (the SLS-compatible server); [`emulator_faults`] its
//!   test-only fault file.
//! - [`plugin`]: `shipper plugin new|test|inspect`; [`scaffold`] is `plugin new`.
//! - [`receive`]: `shipper receive hec|syslog`, a development receiver.
//! - [`reconcile`]: `shipper reconcile`, a time window checked against the ledger.
//! - [`sls`]: credentials and SLS clients, shared by the commands that talk to SLS.
//! - [`validate`]: `shipper validate`, every problem of a configuration without shipping.
//! - [`replay`]: `shipper replay`, a time window sent again without the consumer group.
//! - [`dead_letter`]: `shipper dead-letter replay`, a dead-letter file re-driven.

pub mod dead_letter;
pub mod emulator;
pub mod emulator_faults;
pub mod plugin;
pub mod receive;
pub mod reconcile;
pub mod replay;
pub mod run;
pub mod scaffold;
pub mod sls;
pub mod validate;
