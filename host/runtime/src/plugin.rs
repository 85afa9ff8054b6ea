//! `Plugin`: one compiled plugin version (component + `InstancePre` + sha256 + metadata),
//! and the load-time checks that turn "this file will not work" into one clear message
//! before anything runs.
//!
//! Load policy (what a plugin may import), checked in [`check_imports`]:
//! - `shipper:plugin/host` and `shipper:plugin/types` at `0.1.x` (this host's WIT);
//!
//! Which world a plugin targets is read from its exports: `process-batch` means
//! `batch-formatter` (since 0.1.1), otherwise it must export `process` (`formatter`, the
//! world of 0.1.0, still accepted: docs/plugins.md §12).
//! - WASI 0.2.x interfaces that the usual toolchains import: Rust std (`wasm32-wasip2`),
//!   componentize-py, componentize-js and the C preview1 adapter — `wasi:cli/*`,
//!   `wasi:io/*`, `wasi:clocks/*`, `wasi:random/*`, `wasi:filesystem/{types,preopens}` and
//!   `wasi:sockets/*`. Filesystem and sockets are importable only so those toolchains'
//!   output links: at run time nothing is preopened and every socket address is denied
//!   (host.rs), so such calls fail inside the guest.
//! - Anything else (e.g. `wasi:http`, WASI 0.3, unknown packages) is rejected at load time.
//!   componentize-js plugins must be built with `--disable http`.
//!
//! All plugin construction goes through [`Plugin::load`]: it asks the engine's compile
//! cache (cache.rs) for the sha256 first, compiles on a miss, and stores the compiled
//! component once it has passed every check above.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::bindings::FormatterPre;
use crate::bindings::batch::BatchFormatterPre;
use crate::counters::PluginCounters;
use crate::engine::EngineShared;
use crate::error::{LoadErrorKind, PluginError};
use crate::host::HostState;
use crate::instance::PluginInstance;
use crate::limits::PluginLimits;

/// The WIT package version this host implements.
pub const WIT_VERSION: &str = "0.1.1";

/// The per-log world (`process`), the only one before 0.1.1.
pub const WORLD: &str = "shipper:plugin/formatter@0.1.1";

/// The batch world (`process-batch`), since 0.1.1.
pub const BATCH_WORLD: &str = "shipper:plugin/batch-formatter@0.1.1";

/// WASI interfaces a plugin may import (any 0.2.x version); see the module docs.
pub const ALLOWED_WASI_INTERFACES: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Our own interfaces a plugin may import (at `0.1.x`).
const OWN_INTERFACES: &[&str] = &["shipper:plugin/host", "shipper:plugin/types"];

/// Exports a formatter of world `formatter` must have.
const REQUIRED_EXPORTS: &[&str] = &["init", "process"];

/// Exports a formatter of world `batch-formatter` must have.
const REQUIRED_BATCH_EXPORTS: &[&str] = &["init", "process-batch"];

/// The instantiation recipe of either world.
#[derive(Clone)]
pub(crate) enum WorldPre {
    /// `formatter`: one `list<emit>` per log.
    PerLog(FormatterPre<HostState>),
    /// `batch-formatter`: one packed `batch-output` per call.
    Batch(BatchFormatterPre<HostState>),
}

/// What a loaded plugin is, without running it (`shipper plugin inspect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginMetadata {
    /// Lowercase hex sha256 of the file: the plugin's identity (generation) everywhere.
    pub hash: String,
    /// File size in bytes.
    pub size: usize,
    /// The world it was checked against.
    pub world: String,
    /// Imported interface names, as in the component (with versions).
    pub imports: Vec<String>,
    /// Exported names.
    pub exports: Vec<String>,
    /// True when the compiled code came from the compile cache instead of Cranelift.
    pub from_cache: bool,
    /// Time spent obtaining the compiled code: compiling, or reading, verifying and
    /// deserializing the cache entry when `from_cache`.
    pub compile_time: Duration,
}

/// One compiled plugin version. Cheap to clone; instantiate once per shard worker.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    engine: Arc<EngineShared>,
    pre: WorldPre,
    metadata: PluginMetadata,
    limits: PluginLimits,
    counters: PluginCounters,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("metadata", &self.inner.metadata)
            .finish_non_exhaustive()
    }
}

/// WebAssembly magic number.
const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Version + layer bytes of a core module (version 1).
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

impl Plugin {
    pub(crate) fn load(
        engine: Arc<EngineShared>,
        wasm: &[u8],
        limits: PluginLimits,
    ) -> Result<Self, PluginError> {
        limits.validate()?;
        if wasm.len() > limits.max_wasm_bytes {
            return Err(PluginError::load(
                LoadErrorKind::TooLarge,
                format!(
                    "the file is {} bytes, over the limit of {} bytes (limits.max_wasm_bytes); \
                     raise the limit if this plugin is really that big",
                    wasm.len(),
                    limits.max_wasm_bytes
                ),
            ));
        }
        check_header(wasm)?;
        let hash = hex::encode(Sha256::digest(wasm));

        let started = Instant::now();
        let cached = engine
            .cache
            .as_ref()
            .and_then(|cache| cache.load(&engine.engine, &hash));
        let from_cache = cached.is_some();
        let component = match cached {
            Some(component) => component,
            None => Component::new(&engine.engine, wasm).map_err(|e| {
                PluginError::load(
                    LoadErrorKind::Compile,
                    format!(
                        "wasmtime could not compile the component: {e:#}; \
                         rebuild it with `cargo build --release --target wasm32-wasip2`"
                    ),
                )
            })?,
        };
        let compile_time = started.elapsed();

        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&engine.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let exports: Vec<(String, bool)> = ty
            .exports(&engine.engine)
            .map(|(name, item)| {
                let is_func = matches!(item.ty, ComponentItem::ComponentFunc(_));
                (name.to_owned(), is_func)
            })
            .collect();
        check_imports(&imports)?;
        let batch = check_exports(&exports)?;
        let world = if batch { BATCH_WORLD } else { WORLD };

        let instance_pre = engine.linker.instantiate_pre(&component).map_err(|e| {
            PluginError::load(
                LoadErrorKind::WrongWorld,
                format!(
                    "the plugin does not link against this host: {e:#}; it was probably built \
                     against a different WIT than {world}"
                ),
            )
        })?;
        let wrong_exports = |e: wasmtime::Error| {
            PluginError::load(
                LoadErrorKind::WrongWorld,
                format!(
                    "the plugin's exports do not match {world}: {e:#}; rebuild it with an SDK \
                     for shipper:plugin@{WIT_VERSION}"
                ),
            )
        };
        let pre = if batch {
            WorldPre::Batch(BatchFormatterPre::new(instance_pre).map_err(wrong_exports)?)
        } else {
            WorldPre::PerLog(FormatterPre::new(instance_pre).map_err(wrong_exports)?)
        };

        // Only a component that passed every check is worth keeping.
        if !from_cache && let Some(cache) = &engine.cache {
            cache.store(&hash, &component);
        }
        tracing::debug!(
            plugin = %hash,
            from_cache,
            compile_ms = compile_time.as_secs_f64() * 1e3,
            "plugin compiled"
        );

        let metadata = PluginMetadata {
            hash,
            size: wasm.len(),
            world: world.to_owned(),
            imports,
            exports: exports.into_iter().map(|(name, _)| name).collect(),
            from_cache,
            compile_time,
        };
        let counters = PluginCounters::new(limits.max_counters);
        Ok(Self {
            inner: Arc::new(PluginInner {
                engine,
                pre,
                metadata,
                limits,
                counters,
            }),
        })
    }

    /// Lowercase hex sha256 of the plugin file.
    pub fn hash(&self) -> &str {
        &self.inner.metadata.hash
    }

    /// What the plugin is (hash, size, imports, exports).
    pub fn metadata(&self) -> &PluginMetadata {
        &self.inner.metadata
    }

    /// The limits every instance of this plugin runs under.
    pub fn limits(&self) -> &PluginLimits {
        &self.inner.limits
    }

    /// Counters the plugin's instances added (`counter-add`), shared by all instances.
    pub fn counters(&self) -> &PluginCounters {
        &self.inner.counters
    }

    /// A short label for log lines before `init` names the plugin: `sha256:<12 hex>`.
    pub fn short_hash_label(&self) -> String {
        format!("sha256:{}", &self.inner.metadata.hash[..12])
    }

    /// Creates a fresh instance (own store, limits, deadline) and runs `init(config_json)`.
    /// Call it at start, after any trap, and to recycle an instance. Must run inside a tokio
    /// runtime with the time driver enabled (the budget has a wall-clock backstop).
    pub async fn instantiate(&self, config_json: &str) -> Result<PluginInstance, PluginError> {
        let limits = &self.inner.limits;
        if config_json.len() > limits.max_config_bytes {
            return Err(PluginError::Config(format!(
                "the config is {} bytes, over the limit of {} bytes (limits.max_config_bytes)",
                config_json.len(),
                limits.max_config_bytes
            )));
        }
        let state = HostState::new(self.short_hash_label(), limits, self.inner.counters.clone());
        let store = wasmtime::Store::new(&self.inner.engine.engine, state);
        PluginInstance::start(self.clone(), store, &self.inner.pre, config_json).await
    }
}

/// Rejects files that are not components, with the fix for each common case.
fn check_header(wasm: &[u8]) -> Result<(), PluginError> {
    if wasm.len() < 8 || &wasm[..4] != WASM_MAGIC {
        let shown: Vec<String> = wasm.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(PluginError::load(
            LoadErrorKind::NotWasm,
            format!(
                "the file is not WebAssembly (it starts with `{}`, not `00 61 73 6d`); \
                 pass the `.wasm` file built with `cargo build --release --target wasm32-wasip2`",
                shown.join(" ")
            ),
        ));
    }
    if wasm[4..8] == CORE_MODULE_VERSION {
        return Err(PluginError::load(
            LoadErrorKind::CoreModule,
            "the file is a core WebAssembly module, not a component; build the plugin with \
             `--target wasm32-wasip2` (which emits a component), or wrap a wasip1 module with \
             `wasm-tools component new --adapt wasi_snapshot_preview1.reactor.wasm`",
        ));
    }
    Ok(())
}

/// Splits `ns:pkg/iface@version` into (`ns:pkg/iface`, version).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((base, version)) => (base, Some(version)),
        None => (name, None),
    }
}

/// True when `version` is `<major>.<minor>.<anything>` with the given major/minor.
fn version_matches(version: Option<&str>, major_minor: &str) -> bool {
    version.is_some_and(|v| {
        v.strip_prefix(major_minor)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

pub(crate) fn check_imports(imports: &[String]) -> Result<(), PluginError> {
    let own_minor = WIT_VERSION
        .rsplit_once('.')
        .map_or(WIT_VERSION, |(mm, _)| mm);
    let mut disallowed = Vec::new();
    for name in imports {
        let (base, version) = split_version(name);
        if base.starts_with("shipper:plugin/") {
            if !OWN_INTERFACES.contains(&base) {
                disallowed.push(format!("`{name}` (not an interface of {WORLD})"));
            } else if !version_matches(version, own_minor) {
                return Err(PluginError::load(
                    LoadErrorKind::WrongVersion,
                    format!(
                        "the plugin was built for shipper:plugin@{} (it imports `{name}`), but \
                         this shipper runs shipper:plugin@{WIT_VERSION}; rebuild the plugin \
                         with an SDK for {WIT_VERSION} or use a shipper that supports {}",
                        version.unwrap_or("<unversioned>"),
                        version.unwrap_or("<unversioned>")
                    ),
                ));
            }
        } else if ALLOWED_WASI_INTERFACES.contains(&base) {
            if !version_matches(version, "0.2") {
                disallowed.push(format!("`{name}` (only WASI 0.2.x is provided)"));
            }
        } else {
            disallowed.push(format!("`{name}`"));
        }
    }
    if disallowed.is_empty() {
        return Ok(());
    }
    Err(PluginError::load(
        LoadErrorKind::DisallowedImport,
        format!(
            "the plugin imports {}, which the shipper sandbox does not provide; a formatter \
             may import only shipper:plugin/host and WASI 0.2 cli, io, clocks, random, \
             filesystem and sockets (the last two are denied at run time). Remove the \
             dependency that pulls it in (for componentize-js: build with `--disable http`)",
            disallowed.join(", ")
        ),
    ))
}

/// Checks the exports of either world; `Ok(true)` for `batch-formatter`.
pub(crate) fn check_exports(exports: &[(String, bool)]) -> Result<bool, PluginError> {
    let has = |required: &str| {
        exports
            .iter()
            .any(|(name, is_func)| name == required && *is_func)
    };
    let batch = has("process-batch");
    let required = if batch {
        REQUIRED_BATCH_EXPORTS
    } else {
        REQUIRED_EXPORTS
    };
    let missing: Vec<&str> = required.iter().copied().filter(|r| !has(r)).collect();
    if missing.is_empty() {
        return Ok(batch);
    }
    let found: Vec<&str> = exports.iter().map(|(name, _)| name.as_str()).collect();
    Err(PluginError::load(
        LoadErrorKind::WrongWorld,
        format!(
            "the plugin does not export {} (it exports: {}); a formatter must target world \
             {WORLD} and export `init` and `process`, or world {BATCH_WORLD} and export \
             `init` and `process-batch` — with the Rust SDK, add the `export!` line",
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(" and "),
            if found.is_empty() {
                "nothing".to_owned()
            } else {
                found.join(", ")
            }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rust_std_imports_are_allowed() {
        check_imports(&names(&[
            "wasi:cli/environment@0.2.6",
            "wasi:io/streams@0.2.6",
            "wasi:filesystem/preopens@0.2.6",
            "shipper:plugin/types@0.1.0",
            "shipper:plugin/host@0.1.3",
        ]))
        .unwrap();
    }

    #[test]
    fn unknown_and_wasi_03_imports_are_rejected_by_name() {
        let err = check_imports(&names(&[
            "wasi:http/outgoing-handler@0.2.6",
            "wasi:cli/environment@0.3.0",
            "evil:net/dial",
        ]))
        .unwrap_err();
        assert_eq!(err.load_kind(), Some(LoadErrorKind::DisallowedImport));
        let msg = err.to_string();
        assert!(msg.contains("`wasi:http/outgoing-handler@0.2.6`"), "{msg}");
        assert!(
            msg.contains("`wasi:cli/environment@0.3.0` (only WASI 0.2.x"),
            "{msg}"
        );
        assert!(msg.contains("`evil:net/dial`"), "{msg}");
        assert!(msg.contains("--disable http"), "{msg}");
    }

    #[test]
    fn another_wit_version_is_reported_as_such() {
        let err = check_imports(&names(&["shipper:plugin/types@0.2.0"])).unwrap_err();
        assert_eq!(err.load_kind(), Some(LoadErrorKind::WrongVersion));
        assert!(
            err.to_string().contains("built for shipper:plugin@0.2.0"),
            "{err}"
        );
        // 0.10.x is not 0.1.x.
        let err = check_imports(&names(&["shipper:plugin/host@0.10.0"])).unwrap_err();
        assert_eq!(err.load_kind(), Some(LoadErrorKind::WrongVersion));
    }

    #[test]
    fn missing_exports_are_named() {
        let err = check_exports(&[("init".to_owned(), true)]).unwrap_err();
        assert_eq!(err.load_kind(), Some(LoadErrorKind::WrongWorld));
        assert!(
            err.to_string().contains("does not export `process`"),
            "{err}"
        );
        // `process-batch` selects world `batch-formatter`, which needs `init` too.
        let batch = ("process-batch".to_owned(), true);
        let err = check_exports(std::slice::from_ref(&batch)).unwrap_err();
        assert!(err.to_string().contains("does not export `init`"), "{err}");
        assert!(check_exports(&[("init".to_owned(), true), batch]).unwrap());
        let per_log = [("init".to_owned(), true), ("process".to_owned(), true)];
        assert!(!check_exports(&per_log).unwrap());
    }

    #[test]
    fn headers_are_classified() {
        let err = check_header(b"hello world").unwrap_err();
        assert_eq!(err.load_kind(), Some(LoadErrorKind::NotWasm));
        assert!(err.to_string().contains("68 65 6c 6c"), "{err}");
        let err = check_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert_eq!(err.load_kind(), Some(LoadErrorKind::CoreModule));
        check_header(b"\0asm\x0d\0\x01\0").unwrap();
    }
}
