//! `PluginEngine`: the one wasmtime `Engine` of the process (Cranelift, epoch interruption),
//! the one `Linker` (our `host` interface + locked-down WASI p2), and the epoch ticker
//! thread. Plugins keep the shared part alive, so the ticker runs as long as any plugin or
//! instance exists and stops (joined) when the last one is dropped.
//!
//! Not here: compiling a plugin and checking its imports/exports (plugin.rs).

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::Formatter;
use crate::error::PluginError;
use crate::host::HostState;
use crate::limits::PluginLimits;
use crate::plugin::Plugin;

/// Interval of the epoch ticker: the granularity of call deadlines and of yields to the
/// async executor (Spin's default; wasm-hosts.md §4a).
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What plugins share: the engine, the linker and the ticker.
pub(crate) struct EngineShared {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    _ticker: EpochTicker,
}

/// The plugin engine; one per process. Cheap to clone.
#[derive(Clone)]
pub struct PluginEngine {
    shared: Arc<EngineShared>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine").finish_non_exhaustive()
    }
}

impl PluginEngine {
    /// Creates the engine, links the host interfaces and starts the epoch ticker.
    pub fn new() -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        // Readable trap reports (function names and offsets in the guest).
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| PluginError::Engine(format!("linking WASI: {e:#}")))?;
        Formatter::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
            .map_err(|e| PluginError::Engine(format!("linking the host interface: {e:#}")))?;

        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Self {
            shared: Arc::new(EngineShared {
                engine,
                linker,
                _ticker: ticker,
            }),
        })
    }

    /// Compiles `wasm` and checks it is a formatter plugin this host can run: a component,
    /// of world `shipper:plugin/formatter@0.1.x`, importing only allowed interfaces.
    /// Compile once per plugin version and instantiate many times.
    pub fn load(&self, wasm: &[u8], limits: PluginLimits) -> Result<Plugin, PluginError> {
        Plugin::load(self.shared.clone(), wasm, limits)
    }

    /// The wasmtime engine (for tools that inspect components).
    pub fn wasmtime_engine(&self) -> &Engine {
        &self.shared.engine
    }
}

/// A thread that increments the engine's epoch every [`EPOCH_TICK`]; stopped and joined on
/// drop. Waiting on a channel with a timeout makes the stop immediate (no sleep to finish).
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Self, PluginError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Dropping the sender disconnects the channel, which ends the loop at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
