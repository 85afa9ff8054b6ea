//! `PluginEngine`: the one wasmtime `Engine` of the process (Cranelift, epoch interruption),
//! the one `Linker` (our `host` interface + locked-down WASI p2), the compile cache
//! ([`EngineSettings::compile_cache`]) and the epoch ticker thread. Plugins keep the shared
//! part alive, so the ticker runs as long as any plugin or instance exists and stops
//! (joined) when the last one is dropped.
//!
//! Not here: compiling a plugin and checking its imports/exports (plugin.rs); the cache's
//! files (cache.rs).

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::Formatter;
use crate::cache::{CacheDir, CacheStats, CompileCache, DEFAULT_CACHE_MAX_BYTES};
use crate::error::PluginError;
use crate::host::HostState;
use crate::limits::PluginLimits;
use crate::plugin::Plugin;

/// Interval of the epoch ticker: the granularity of call deadlines and of yields to the
/// async executor (Spin's default; docs/plugins.md §6.4 "Time budget").
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Process-wide plugin settings (what `[plugin]` in shipper's config can change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    /// Where compiled plugins are cached on disk, keyed by the plugin's sha256 and the
    /// engine's compilation settings; [`CacheDir::Disabled`] compiles at every load.
    /// Default: [`CacheDir::Default`] (`$XDG_CACHE_HOME/shipper/components`, else
    /// `~/.cache/shipper/components`).
    pub compile_cache: CacheDir,
    /// Size cap of the cache directory in bytes; past it the least recently used entries
    /// are deleted. Default: [`DEFAULT_CACHE_MAX_BYTES`].
    pub compile_cache_max_bytes: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            compile_cache: CacheDir::Default,
            compile_cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
        }
    }
}

/// What plugins share: the engine, the linker, the compile cache and the ticker.
pub(crate) struct EngineShared {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) cache: Option<CompileCache>,
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
    /// Creates the engine with [`EngineSettings::default`] (compile cache in the user's
    /// cache directory), links the host interfaces and starts the epoch ticker.
    pub fn new() -> Result<Self, PluginError> {
        Self::with_settings(EngineSettings::default())
    }

    /// Creates the engine with `settings`, links the host interfaces and starts the epoch
    /// ticker. A compile cache that cannot be used is disabled with a WARN, not an error.
    pub fn with_settings(settings: EngineSettings) -> Result<Self, PluginError> {
        Self::build(&wasmtime_config(), &settings)
    }

    /// [`with_settings`](Self::with_settings) with a given wasmtime config (tests use it to
    /// show that another config never reuses a cache entry).
    pub(crate) fn build(config: &Config, settings: &EngineSettings) -> Result<Self, PluginError> {
        let engine = Engine::new(config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let cache = CompileCache::open(
            &settings.compile_cache,
            settings.compile_cache_max_bytes,
            &engine,
        );

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
                cache,
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

    /// The compile cache directory in use; `None` when the cache is disabled or unusable.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.shared.cache.as_ref().map(CompileCache::dir)
    }

    /// Compile cache activity since this engine was created (all zero without a cache).
    pub fn cache_stats(&self) -> CacheStats {
        self.shared
            .cache
            .as_ref()
            .map(CompileCache::stats)
            .unwrap_or_default()
    }
}

/// The wasmtime config every plugin engine uses.
pub(crate) fn wasmtime_config() -> Config {
    let mut config = Config::new();
    // Profiling plugins: `SHIPPER_WASM_PERFMAP=1` writes /tmp/perf-PID.map so `perf report`
    // names the guest's functions (build the plugin unstripped to get its symbol names).
    if std::env::var_os("SHIPPER_WASM_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    // Readable trap reports (function names and offsets in the guest).
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Enable);
    config
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CompileCache, encode_entry_for_tests};

    fn cached_in(dir: &Path) -> EngineSettings {
        EngineSettings {
            compile_cache: CacheDir::Path(dir.to_owned()),
            ..EngineSettings::default()
        }
    }

    fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        found.sort();
        found
    }

    #[test]
    fn another_wasmtime_config_never_reuses_an_entry() {
        let dir = tempfile::tempdir().unwrap();
        let wasm = shipper_test_artifacts::read(shipper_test_artifacts::GUEST_ECHO);
        let load = |engine: &PluginEngine| {
            engine
                .load(&wasm, PluginLimits::default())
                .expect("the echo guest loads")
                .metadata()
                .from_cache
        };
        let usual = PluginEngine::build(&wasmtime_config(), &cached_in(dir.path())).unwrap();
        // Fuel metering (a deterministic bench mode) changes the generated code.
        let mut other_config = wasmtime_config();
        other_config.consume_fuel(true);
        let other = PluginEngine::build(&other_config, &cached_in(dir.path())).unwrap();

        assert!(!load(&usual), "first load compiles");
        assert!(!load(&other), "another config must not use that entry");
        assert_eq!(entries(dir.path()).len(), 2, "one entry per engine config");
        assert!(load(&usual));
        assert!(load(&other));

        // Even an entry that claims the other engine's key (a copy, or a fingerprint
        // collision) is refused by wasmtime's own check, then rebuilt: no crash.
        let usual_cache = usual.shared.cache.as_ref().unwrap();
        let other_cache: &CompileCache = other.shared.cache.as_ref().unwrap();
        let hash = usual
            .load(&wasm, PluginLimits::default())
            .unwrap()
            .hash()
            .to_owned();
        let payload = {
            let component =
                wasmtime::component::Component::new(&usual.shared.engine, &wasm).unwrap();
            component.serialize().unwrap()
        };
        let forged = encode_entry_for_tests(other_cache, &hash, &payload);
        std::fs::write(other_cache.entry_path(&hash), forged).unwrap();
        let before = other.cache_stats();
        assert!(
            !load(&other),
            "wasmtime refuses code compiled for another config"
        );
        let after = other.cache_stats();
        assert_eq!(after.rejected, before.rejected + 1);
        assert_eq!(after.stores, before.stores + 1, "the entry is rebuilt");
        assert!(load(&other));
        assert!(usual_cache.entry_path(&hash).is_file());
    }
}
