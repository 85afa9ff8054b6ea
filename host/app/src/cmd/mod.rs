//! The commands: each parses its own flags (clap `Args`), wires the library's parts together
//! and returns a typed [`Failure`](crate::exit::Failure). No delivery logic lives here.
//!
//! - [`run`]: `shipper run` (consumer group → plugin → sink).
//! - [`emulator`]: `shipper emulator` (the SLS-compatible server).
//! - [`plugin`]: `shipper plugin test|inspect`.

pub mod emulator;
pub mod plugin;
pub mod run;
