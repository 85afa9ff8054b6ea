//! `PluginError`: what can go wrong loading, instantiating or calling a plugin, with
//! messages that quote the numbers involved and say what to do.
//!
//! The split is by cause, which decides what the caller does (refuse the file, re-create the
//! instance, retry the batch) and what it reports: *load* errors (the file is not a usable
//! plugin), *trap* errors (the instance is poisoned and must be re-created), *guest* errors
//! (the plugin failed the whole batch on purpose) and *output* errors (the plugin broke the
//! contract).
//! Per-log failures are not errors here: they are `RecordError`s inside the `Ok` result.

use crate::limits::LimitsError;

/// Why a trap happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// The call ran past its time budget and was interrupted (epoch deadline).
    Timeout,
    /// A memory or table grow went past the store's limit.
    Memory,
    /// The guest aborted: a Rust panic (panic = abort on wasm32-wasip2), `unreachable`,
    /// or an explicit abort from another language's runtime.
    Panic,
    /// Any other trap (out-of-bounds access, stack overflow, a host function error, …).
    Other,
}

impl std::fmt::Display for TrapKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrapKind::Timeout => "timeout",
            TrapKind::Memory => "memory limit",
            TrapKind::Panic => "panic",
            TrapKind::Other => "trap",
        })
    }
}

/// Why a file could not be loaded as a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// Larger than `PluginLimits::max_wasm_bytes`.
    TooLarge,
    /// Not WebAssembly at all.
    NotWasm,
    /// A core WebAssembly module, not a component.
    CoreModule,
    /// wasmtime could not compile or validate the component.
    Compile,
    /// Built against another major/minor version of `shipper:plugin`.
    WrongVersion,
    /// Lacks `init` or `process`, or their types differ from this host's WIT.
    WrongWorld,
    /// Imports something outside the allowed set.
    DisallowedImport,
}

/// Everything that can go wrong with a plugin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The limits themselves are invalid.
    #[error(transparent)]
    Limits(#[from] LimitsError),

    /// The file is not a usable plugin; nothing was instantiated.
    #[error("cannot load plugin: {message}")]
    Load {
        /// What kind of problem.
        kind: LoadErrorKind,
        /// What is wrong and what to do.
        message: String,
    },

    /// The wasmtime engine could not be created.
    #[error("cannot start the plugin engine: {0}")]
    Engine(String),

    /// The config given to `init` was refused before the plugin saw it.
    #[error("plugin config rejected: {0}")]
    Config(String),

    /// The plugin's `init` returned `err`: it rejects this config.
    #[error("plugin `{plugin}` rejected its config: {message} (fix the [plugin.config] table)")]
    Init {
        /// Plugin label (name from `init`, or a hash prefix before it).
        plugin: String,
        /// The plugin's own message.
        message: String,
    },

    /// The instance trapped; it is poisoned and must be re-instantiated.
    #[error("{message}")]
    Trap {
        /// Why it trapped.
        kind: TrapKind,
        /// What happened, with the numbers, and what to do.
        message: String,
    },

    /// The plugin's `process` returned `err(string)`: it failed the whole batch on purpose.
    #[error("plugin `{plugin}` failed the batch: {message}")]
    Guest {
        /// Plugin label.
        plugin: String,
        /// The plugin's own message.
        message: String,
    },

    /// The plugin returned something that breaks the contract (wrong number of results,
    /// output over the per-call cap). The instance is still usable.
    #[error("plugin `{plugin}` returned invalid output: {message}")]
    Output {
        /// Plugin label.
        plugin: String,
        /// What was wrong, with the numbers.
        message: String,
    },

    /// `process` was called on an instance that trapped before.
    #[error(
        "plugin instance of `{plugin}` is poisoned by an earlier trap ({reason}); \
         instantiate a new one"
    )]
    Poisoned {
        /// Plugin label.
        plugin: String,
        /// The earlier trap's kind.
        reason: TrapKind,
    },
}

impl PluginError {
    /// True for traps: the instance that returned it refuses further calls and the caller
    /// must instantiate a fresh one (`Plugin::instantiate`).
    pub fn is_trap(&self) -> bool {
        matches!(self, PluginError::Trap { .. })
    }

    /// The trap kind, for traps.
    pub fn trap_kind(&self) -> Option<TrapKind> {
        match self {
            PluginError::Trap { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The load problem, for load errors.
    pub fn load_kind(&self) -> Option<LoadErrorKind> {
        match self {
            PluginError::Load { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    pub(crate) fn load(kind: LoadErrorKind, message: impl Into<String>) -> Self {
        PluginError::Load {
            kind,
            message: message.into(),
        }
    }
}
