//! The wasmtime component host for shipper formatter plugins.
//!
//! A plugin is a WebAssembly component of world `shipper:plugin/formatter@0.1.x` or, since
//! 0.1.1, `shipper:plugin/batch-formatter` (`wit/shipper.wit`; the runtime detects which
//! from the exports). The pipeline hands it one SLS `LogGroup` at a time as protobuf bytes
//! and gets back one result per log: the emits (HEC events, syslog messages, raw bytes) or a
//! per-log error. This crate compiles and checks plugins, runs them in a sandbox (no files,
//! no network, no environment; memory cap; time budget per call) and validates what they
//! return.
//!
//! ```text
//! PluginEngine::new()            one per process: Engine, Linker, compile cache, epoch ticker
//!   └─ load(wasm, limits)        → Plugin (sha256 → cache hit, or compile + store; checks)
//!        └─ instantiate(config)  → PluginInstance (own Store; runs `init`)
//!             └─ process(batch, group_bytes, log_count) → Vec<Result<Vec<Emit>, RecordError>>
//! ```
//!
//! Layout:
//! - `bindings`: the one `bindgen!` over `wit/`; its public types are re-exported here.
//! - `engine`: [`PluginEngine`] and [`EngineSettings`] (engine, linker, epoch ticker).
//! - `cache`: the on-disk compile cache ([`CacheDir`], [`CacheStats`]).
//! - `plugin`: [`Plugin`] and the load-time checks (component? right world? allowed imports?).
//! - `packed`: a `batch-output` unpacked into the same per-log results, checked.
//! - `instance`: [`PluginInstance`] (store, deadline, call, output validation, poisoning).
//! - `limits`: [`PluginLimits`] with the `DEFAULT_*` values and the store's resource limiter.
//! - `host`: the store data, the sandboxed WASI context and the `host` imports.
//! - `guest_log`: plugin log lines and stdout/stderr into `tracing` (bounded).
//! - `counters`: [`PluginCounters`] (`counter-add`, capped).
//! - `error`: [`PluginError`].

#![deny(missing_docs)]

mod bindings;
mod cache;
mod counters;
mod engine;
mod error;
mod guest_log;
mod host;
mod instance;
pub mod limits;
mod packed;
mod plugin;

pub use bindings::shipper::plugin::host::Level;
pub use bindings::shipper::plugin::types::{
    BatchInfo, Emit, ErrorKind, Field, HecBody, HecEvent, Payload, PluginInfo, RecordError,
    SdElement, Severity, SyslogMessage, Timestamp,
};
pub use cache::{CacheDir, CacheStats, DEFAULT_CACHE_MAX_BYTES, ENTRY_FORMAT};
pub use counters::{OVERFLOW_COUNTER, PluginCounters};
pub use engine::{EPOCH_TICK, EngineSettings, PluginEngine};
pub use error::{LoadErrorKind, PluginError, TrapKind};
pub use instance::{PluginInstance, RecordResult, emit_size};
pub use limits::PluginLimits;
pub use plugin::{
    ALLOWED_WASI_INTERFACES, BATCH_WORLD, Plugin, PluginMetadata, WIT_VERSION, WORLD,
};
