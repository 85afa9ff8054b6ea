//! `CompileCache`: compiled plugins on disk, so a restart or a hot swap back to a known
//! version deserializes in milliseconds instead of recompiling (Cranelift takes ~4 s for a
//! 12–18 MB Python or JavaScript component on 2 cores, 30–50 ms for Rust; docs/plugins.md
//! §8 "Compile cache", §13 "Why these numbers").
//!
//! Owns: the cache directory (default `$XDG_CACHE_HOME/shipper/components`, else
//! `~/.cache/shipper/components`), the entry key, the entry file format, atomic writes,
//! verification on read, and pruning. Does not own: compiling or checking a component
//! (plugin.rs decides what to store: only components that passed the load checks).
//!
//! **Key.** `<sha256 of the wasm>-<engine fingerprint>.cwasm`. The fingerprint hashes
//! wasmtime's `Engine::precompile_compatibility_hash` (wasmtime version, target, Cranelift
//! and ISA flags, tunables, wasm features) and [`ENTRY_FORMAT`], so an engine with another
//! config or another wasmtime never even opens an entry it cannot use; wasmtime checks the
//! same again inside `deserialize` and refuses a mismatch.
//!
//! **Entry file.** A header (magic, the key, payload length, sha256 of the payload) followed
//! by `Component::serialize`'s bytes. Written to a temporary file in the same directory,
//! synced, then renamed over the final name, so readers see a whole entry or none, even with
//! several shipper processes sharing the directory.
//!
//! **Why `Component::deserialize` is sound here** (it is `unsafe` because wasmtime maps the
//! payload as executable code after checking only its header):
//! - the directory is created `0700` and used only when it is owned by the user running
//!   shipper and not writable by group or others, and each entry must be owned by that same
//!   user and not group/other-writable: only this user's processes can have put it there,
//!   and those can already do anything this process can;
//! - the payload must match the sha256 in its header, written by [`CompileCache::store`]
//!   from `Component::serialize` output, so a torn write, a truncated file or a flipped bit
//!   is refused before wasmtime sees the bytes;
//! - wasmtime itself refuses artifacts of another version or config.
//!
//! A missing, corrupt or incompatible entry is never an error: it is a miss (with one WARN
//! for the latter two), the plugin is compiled as without a cache and the entry rewritten.
//! A cache that cannot be used at all (no home directory, unsafe permissions, read-only
//! disk) is disabled with one WARN; plugins still load.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Version of the entry format and key scheme; bump it to orphan every existing entry.
pub const ENTRY_FORMAT: u32 = 1;

/// Default cap on the cache directory's size. A Python or JS plugin's entry is ~33 MB and a
/// Rust one well under 1 MB, so this keeps a dozen large versions (enough to swap back and
/// forth) while bounding the disk used by old versions; the least recently used go first.
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 512 << 20;

/// Temporary files older than this are leftovers of a crashed write and are removed.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

const MAGIC: &[u8; 8] = b"SHPCWASM";
const EXTENSION: &str = "cwasm";

/// Where the compile cache lives.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheDir {
    /// `$XDG_CACHE_HOME/shipper/components`, else `$HOME/.cache/shipper/components`.
    #[default]
    Default,
    /// This directory (created if missing).
    Path(PathBuf),
    /// No cache: every load compiles.
    Disabled,
}

impl CacheDir {
    /// The default directory, from the environment; `None` when neither `XDG_CACHE_HOME`
    /// nor `HOME` is set to an absolute path.
    pub fn default_path() -> Option<PathBuf> {
        let absolute = |var: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        let base =
            absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".cache")))?;
        Some(base.join("shipper").join("components"))
    }
}

/// Cache activity since the engine was created (all counters only grow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads served from the cache.
    pub hits: u64,
    /// Loads that found no usable entry and compiled.
    pub misses: u64,
    /// Entries written.
    pub stores: u64,
    /// Entries refused as corrupt, foreign or incompatible (each also counted as a miss).
    pub rejected: u64,
    /// Entries that could not be written (disk full, permissions…).
    pub store_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stores: AtomicU64,
    rejected: AtomicU64,
    store_failures: AtomicU64,
}

/// The on-disk cache of one engine.
#[derive(Debug)]
pub(crate) struct CompileCache {
    dir: PathBuf,
    /// Hex fingerprint of the engine's compilation settings (part of every key).
    engine_fingerprint: String,
    /// Uid that owns the directory (and so must own every entry): this process's.
    owner: u32,
    max_bytes: u64,
    counters: Counters,
}

/// Feeds `Hash` impls into sha256, so a fingerprint is stable across processes (std's
/// `DefaultHasher` makes no such promise across Rust releases).
struct Sha256Hasher(Sha256);

impl std::hash::Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        // Only `write` is used; the digest is taken from the inner state.
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Hex fingerprint of everything that makes compiled code of `engine` usable by another
/// engine (see the module docs).
pub(crate) fn engine_fingerprint(engine: &Engine) -> String {
    use std::hash::Hash as _;
    let mut hasher = Sha256Hasher(Sha256::new());
    ENTRY_FORMAT.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

impl CompileCache {
    /// Opens (creating it `0700` if needed) the cache at `setting` for `engine`. `None`, with
    /// one WARN saying why, when the cache is disabled or cannot be used safely.
    pub(crate) fn open(setting: &CacheDir, max_bytes: u64, engine: &Engine) -> Option<Self> {
        let dir = match setting {
            CacheDir::Disabled => return None,
            CacheDir::Path(dir) => dir.clone(),
            CacheDir::Default => match CacheDir::default_path() {
                Some(dir) => dir,
                None => {
                    tracing::warn!(
                        "plugin compile cache disabled: neither XDG_CACHE_HOME nor HOME is set \
                         to an absolute path; set one, or configure a cache directory, to avoid \
                         recompiling plugins at every start"
                    );
                    return None;
                }
            },
        };
        match Self::prepare_dir(&dir) {
            Ok(owner) => Some(Self {
                dir,
                engine_fingerprint: engine_fingerprint(engine),
                owner,
                max_bytes,
                counters: Counters::default(),
            }),
            Err(why) => {
                tracing::warn!(
                    dir = %dir.display(),
                    "plugin compile cache disabled: {why}; plugins will be compiled at every load"
                );
                None
            }
        }
    }

    /// Creates the directory if missing and checks that only this user can write it;
    /// returns the owner uid.
    fn prepare_dir(dir: &Path) -> Result<u32, String> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let meta = fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{} is writable by group or others (mode {:o}), so its entries cannot be \
                 trusted as code; run `chmod go-w {}` or configure another directory",
                dir.display(),
                meta.mode() & 0o777,
                dir.display()
            ));
        }
        // There is no std call for the effective uid: a file this process creates has it.
        let probe = dir.join(format!(".probe-{}-{}", std::process::id(), unique_suffix()));
        let probe_uid = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&probe)
            .and_then(|file| file.metadata())
            .map(|m| m.uid())
            .map_err(|e| format!("cannot write in {}: {e}", dir.display()));
        let _ = fs::remove_file(&probe);
        let uid = probe_uid?;
        if uid != meta.uid() {
            return Err(format!(
                "{} belongs to uid {}, not to this user (uid {uid}), so its entries cannot be \
                 trusted as code; configure a directory of your own",
                dir.display(),
                meta.uid()
            ));
        }
        Ok(uid)
    }

    /// The cache directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            stores: c.stores.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            store_failures: c.store_failures.load(Ordering::Relaxed),
        }
    }

    fn key(&self, wasm_hash: &str) -> String {
        format!("{wasm_hash}-{}", self.engine_fingerprint)
    }

    /// Path of the entry for the wasm with sha256 `wasm_hash`.
    pub(crate) fn entry_path(&self, wasm_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{}.{EXTENSION}", self.key(wasm_hash)))
    }

    /// The cached component for `wasm_hash`, or `None` (a miss) when there is no usable
    /// entry. A corrupt, foreign or incompatible entry is removed with one WARN.
    pub(crate) fn load(&self, engine: &Engine, wasm_hash: &str) -> Option<Component> {
        let path = self.entry_path(wasm_hash);
        let found = match self.read_verified(&path, &self.key(wasm_hash)) {
            Ok(Some((bytes, start))) => {
                // SAFETY: see the module docs: the payload is `Component::serialize` output
                // this user's shipper wrote (ownership and permissions checked above), and
                // its sha256 matches the one written with it.
                match unsafe { Component::deserialize(engine, &bytes[start..]) } {
                    Ok(component) => Ok(component),
                    Err(e) => Err(format!("wasmtime refused it: {e:#}")),
                }
            }
            Ok(None) => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Err(why) => Err(why),
        };
        match found {
            Ok(component) => {
                self.counters.hits.fetch_add(1, Ordering::Relaxed);
                // Least-recently-used pruning goes by mtime: mark this entry as used.
                if let Ok(file) = fs::File::options().write(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
                Some(component)
            }
            Err(why) => {
                self.counters.misses.fetch_add(1, Ordering::Relaxed);
                self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    entry = %path.display(),
                    "ignoring a plugin compile cache entry: {why}; recompiling and rewriting it"
                );
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Reads an entry and checks owner, permissions, header and checksum: the file's bytes
    /// and where the payload starts. `Ok(None)` when there is no entry; `Err` says why an
    /// existing entry is unusable.
    fn read_verified(&self, path: &Path, key: &str) -> Result<Option<(Vec<u8>, usize)>, String> {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read it: {e}")),
        };
        if !meta.is_file() {
            return Err("it is not a regular file".into());
        }
        if meta.uid() != self.owner || meta.mode() & 0o022 != 0 {
            return Err(format!(
                "it belongs to uid {} with mode {:o}; entries must belong to uid {} and not be \
                 writable by group or others",
                meta.uid(),
                meta.mode() & 0o777,
                self.owner
            ));
        }
        let bytes = fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        let start = decode_entry(&bytes, key)?;
        Ok(Some((bytes, start)))
    }

    /// Writes the entry for `wasm_hash` (atomically), then prunes the directory. Failures
    /// are logged (WARN) and counted, never returned: the plugin works without the entry.
    pub(crate) fn store(&self, wasm_hash: &str, component: &Component) {
        match self.write_entry(wasm_hash, component) {
            Ok(()) => {
                self.counters.stores.fetch_add(1, Ordering::Relaxed);
                self.prune(&self.entry_path(wasm_hash));
            }
            Err(why) => {
                self.counters.store_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    dir = %self.dir.display(),
                    "cannot write a plugin compile cache entry: {why}; the plugin will be \
                     compiled again at the next start"
                );
            }
        }
    }

    fn write_entry(&self, wasm_hash: &str, component: &Component) -> Result<(), String> {
        let payload = component
            .serialize()
            .map_err(|e| format!("cannot serialize the compiled component: {e:#}"))?;
        let entry = encode_entry(&self.key(wasm_hash), &payload);
        let temp = self.dir.join(format!(
            ".{}.{}-{}.tmp",
            self.key(wasm_hash),
            std::process::id(),
            unique_suffix()
        ));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&entry)?;
            // Durable before it becomes visible: a crash leaves a whole entry or a temp file.
            file.sync_all()?;
            fs::rename(&temp, self.entry_path(wasm_hash))
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&temp);
            format!("writing {}: {e}", temp.display())
        })
    }

    /// Removes leftover temporary files and, while the entries exceed the size cap, the
    /// least recently used entry other than `keep`.
    fn prune(&self, keep: &Path) {
        let Ok(read) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for item in read.flatten() {
            let path = item.path();
            let Ok(meta) = item.metadata() else { continue };
            let modified = meta.modified().unwrap_or(now);
            let name = item.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                let age = now.duration_since(modified).unwrap_or_default();
                if age > STALE_TEMP_AGE {
                    let _ = fs::remove_file(&path);
                }
            } else if path.extension().is_some_and(|e| e == EXTENSION) {
                entries.push((modified, meta.len(), path));
            }
        }
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= self.max_bytes {
            return;
        }
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            if fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
                tracing::debug!(entry = %path.display(), "pruned a plugin compile cache entry");
            }
        }
    }
}

/// A suffix that differs between calls in one process (temp and probe file names).
fn unique_suffix() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    (NEXT.fetch_add(1, Ordering::Relaxed) << 32) | nanos
}

/// `MAGIC | key length (u16 LE) | key | payload length (u64 LE) | sha256(payload) | payload`.
fn encode_entry(key: &str, payload: &[u8]) -> Vec<u8> {
    let key_len = u16::try_from(key.len()).expect("keys are ~81 bytes");
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + key.len() + 8 + 32 + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

/// Where the payload of an entry starts, after checking magic, key, length and checksum.
fn decode_entry(bytes: &[u8], key: &str) -> Result<usize, String> {
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or("it does not start with the entry magic (not written by this shipper)")?;
    let (key_len, rest) = rest.split_at_checked(2).ok_or("its header is truncated")?;
    let key_len = usize::from(u16::from_le_bytes([key_len[0], key_len[1]]));
    let (stored_key, rest) = rest
        .split_at_checked(key_len)
        .ok_or("its header is truncated")?;
    if stored_key != key.as_bytes() {
        return Err(format!(
            "its header names key `{}`, not `{key}`",
            String::from_utf8_lossy(stored_key)
        ));
    }
    let (len, rest) = rest.split_at_checked(8).ok_or("its header is truncated")?;
    let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
    let (digest, payload) = rest.split_at_checked(32).ok_or("its header is truncated")?;
    if payload.len() as u64 != len {
        return Err(format!(
            "it holds {} payload bytes, its header says {len} (truncated or torn write)",
            payload.len()
        ));
    }
    if Sha256::digest(payload).as_slice() != digest {
        return Err("its checksum does not match (the file is corrupt)".into());
    }
    Ok(bytes.len() - payload.len())
}

/// An entry for `wasm_hash` in `cache`'s key with an arbitrary payload (tests forge
/// entries that pass every check but wasmtime's).
#[cfg(test)]
pub(crate) fn encode_entry_for_tests(
    cache: &CompileCache,
    wasm_hash: &str,
    payload: &[u8],
) -> Vec<u8> {
    encode_entry(&cache.key(wasm_hash), payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_every_damage_is_named() {
        let entry = encode_entry("abc-01", b"payload bytes");
        let start = decode_entry(&entry, "abc-01").unwrap();
        assert_eq!(&entry[start..], b"payload bytes");

        let err = decode_entry(&entry, "abc-02").unwrap_err();
        assert!(err.contains("names key `abc-01`"), "{err}");
        let err = decode_entry(&entry[..entry.len() - 1], "abc-01").unwrap_err();
        assert!(err.contains("torn write"), "{err}");
        let mut flipped = entry.clone();
        *flipped.last_mut().unwrap() ^= 1;
        let err = decode_entry(&flipped, "abc-01").unwrap_err();
        assert!(err.contains("checksum"), "{err}");
        let err = decode_entry(b"\0asm\x0d\0\x01\0", "abc-01").unwrap_err();
        assert!(err.contains("magic"), "{err}");
        let err = decode_entry(&entry[..12], "abc-01").unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn the_fingerprint_follows_the_engine_config() {
        let default = Engine::new(&wasmtime::Config::new()).unwrap();
        let again = Engine::new(&wasmtime::Config::new()).unwrap();
        let mut other = wasmtime::Config::new();
        other.cranelift_opt_level(wasmtime::OptLevel::None);
        let other = Engine::new(&other).unwrap();
        assert_eq!(engine_fingerprint(&default), engine_fingerprint(&again));
        assert_ne!(engine_fingerprint(&default), engine_fingerprint(&other));
        assert_eq!(engine_fingerprint(&default).len(), 16);
    }
}
