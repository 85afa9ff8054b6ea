//! `shipper`: the delivery core of the `shipper` binary, as a library — consumer group →
//! plugin → sink → checkpoint, with its settings, metrics and commands. The binary
//! (`main.rs`) parses flags and calls [`cmd`]; everything it runs lives here, so each stage
//! can be unit-tested without a network or a wasm build. docs/architecture.md walks the
//! data path stage by stage.
//!
//! Layout:
//! - [`cli`]: the top-level clap structs and the command enum.
//! - [`exit`]: [`exit::Failure`], the typed error every command returns, and the documented
//!   exit codes it maps to.
//! - [`cmd`]: one module per command (`run`, `emulator`, `plugin`): wiring only.
//! - [`settings`]: flags + TOML file + environment → validated [`settings::Settings`], one
//!   module per config table.
//! - [`pipeline`]: one shard's loop: pull → format (bisection, breaker, passthrough) →
//!   render → send → ordered acknowledgements.
//! - [`canary`]: a new plugin version run in shadow on sampled batches, compared, never sent.
//! - [`checkpoint`]: per-shard committer of acknowledged positions.
//! - [`dead_letter`]: the dead-letter JSON-lines file.
//! - [`generation`]: the plugin generation in use (swapped atomically), the crash-loop
//!   breaker.
//! - [`reload`]: loading, self-testing and hot-swapping plugin generations.
//! - [`topology`]: one configuration generation built from the settings (sinks, plugins,
//!   dead-letter files, rate caps); [`config_reload`]: SIGHUP and watched files → the next
//!   generation, or a refusal that leaves the running one in place.
//! - [`lag`]: per-shard lag gauges and their sampler.
//! - [`ledger`]: the completeness ledger (acknowledged cursor ranges per shard and sink)
//!   that `shipper reconcile` checks, and its watermark events.
//! - [`metrics`], [`metrics_server`], [`progress`]: the Prometheus registry and its event
//!   methods, `/metrics` + `/health`, and the terminal progress line.
//! - [`convert`]: plugin output types → sink payload types.
//! - [`telemetry`]: the tracing subscriber and its reloadable filter; [`heap`]: freed heap
//!   memory given back while `shipper run` runs.
//! - [`redrive`]: a dead-letter file read back for `shipper dead-letter replay`.
//! - [`replay`]: `shipper replay`'s per-shard cursor ranges, reader and state file;
//!   [`window`]: the `--from`/`--to` window it shares with `shipper reconcile`.

pub mod canary;
pub mod checkpoint;
pub mod cli;
pub mod cmd;
pub mod config_reload;
pub mod convert;
pub mod dead_letter;
pub mod exit;
pub mod generation;
pub mod heap;
pub mod instances;
pub mod lag;
pub mod ledger;
pub mod metrics;
pub mod metrics_server;
pub mod pipeline;
pub mod progress;
pub mod redrive;
pub mod reload;
pub mod replay;
pub mod settings;
pub mod telemetry;
pub mod topology;
pub mod window;
