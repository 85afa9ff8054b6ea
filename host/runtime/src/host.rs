//! `HostState`, the data of one plugin `Store`: the locked-down WASI context, the resource
//! limiter, the log sink, the counters and the per-call epoch budget; plus the
//! implementation of the `shipper:plugin/host` imports on it.
//!
//! The WASI context is the sandbox policy in code (docs/plugins.md §6.2 "The WASI context"):
//! no preopened directories, no environment, no arguments, stdin closed, TCP/UDP/name lookup
//! denied, stdout/stderr captured into the host log. Clocks and random stay available (Rust
//! std, componentize-py and componentize-js need them); filesystem and socket functions may
//! be imported but every call fails inside the guest because nothing is granted.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::shipper::plugin::host::{self, Level};
use crate::counters::PluginCounters;
use crate::guest_log::{self, GuestLog};
use crate::limits::{PluginLimits, StoreLimiter};

/// The data of one plugin store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: StoreLimiter,
    pub(crate) log: GuestLog,
    counters: PluginCounters,
    /// Epoch ticks left in the current call's budget; the deadline callback counts down.
    pub(crate) ticks_left: u64,
}

impl HostState {
    pub(crate) fn new(label: String, limits: &PluginLimits, counters: PluginCounters) -> Self {
        let log = GuestLog::new(
            label,
            limits.log_lines_per_second,
            limits.max_log_line_bytes,
        );
        let wasi = WasiCtx::builder()
            .stdout(log.stdout())
            .stderr(log.stderr())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: StoreLimiter::new(limits.clone()),
            log,
            counters,
            ticks_left: 0,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl host::Host for HostState {
    fn log(&mut self, level: Level, message: String) {
        self.log.log(level, &message);
    }

    fn log_enabled(&mut self, level: Level) -> bool {
        guest_log::level_enabled(level)
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        if !self.counters.add(&name, delta) {
            self.log.log(
                Level::Debug,
                &format!("counter `{name}` refused (name cap or invalid name); added to overflow"),
            );
        }
    }
}

impl crate::bindings::shipper::plugin::types::Host for HostState {}
