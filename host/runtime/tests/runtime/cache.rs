//! The compile cache through the public API (docs/plugins.md §8 "Compile cache"): a second
//! load (same engine or a restarted one) is served from disk; a damaged or foreign entry is
//! refused with a WARN and rebuilt, never a crash; an unsafe directory disables the cache;
//! `Disabled` never touches the disk; the size cap prunes the least recently used entries.
//! (Another wasmtime config never reusing an entry is a unit test in engine.rs: it needs a
//! non-default wasmtime config.)

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use shipper_runtime::{CacheDir, CacheStats, EngineSettings, Plugin, PluginEngine, PluginLimits};
use shipper_test_artifacts as artifacts;

use crate::support::{group, log, process};

fn engine_in(dir: &Path) -> PluginEngine {
    PluginEngine::with_settings(EngineSettings {
        compile_cache: CacheDir::Path(dir.to_owned()),
        ..EngineSettings::default()
    })
    .expect("engine starts")
}

fn load(engine: &PluginEngine, path: &str) -> Plugin {
    engine
        .load(&artifacts::read(path), PluginLimits::default())
        .unwrap_or_else(|e| panic!("{path} loads: {e}"))
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("cache dir exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    found.sort();
    found
}

/// The echo guest still formats a log: the deserialized code is the real thing.
async fn assert_runs(plugin: &Plugin) {
    let mut instance = plugin.instantiate("{}").await.expect("instantiates");
    let results = process(
        &mut instance,
        &group(vec![log(1_700_000_000, &[("k", "v")])]),
    )
    .await
    .expect("processes");
    assert_eq!(results.len(), 1);
    assert!(results[0].is_ok(), "{results:?}");
}

#[tokio::test]
async fn a_second_load_and_a_restart_are_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_in(dir.path());
    assert_eq!(engine.cache_dir(), Some(dir.path()));

    let first = load(&engine, artifacts::GUEST_ECHO);
    assert!(!first.metadata().from_cache, "nothing cached yet");
    let stats = engine.cache_stats();
    assert_eq!(
        (stats.misses, stats.stores, stats.hits),
        (1, 1, 0),
        "{stats:?}"
    );
    let stored = entries(dir.path());
    assert_eq!(stored.len(), 1, "{stored:?}");
    let name = stored[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(first.hash()),
        "keyed by the wasm's sha256: {name}"
    );
    let mode = std::fs::metadata(&stored[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "entries are private: {mode:o}");

    let again = load(&engine, artifacts::GUEST_ECHO);
    assert!(again.metadata().from_cache);
    assert_eq!(again.hash(), first.hash());
    assert_eq!(again.metadata().imports, first.metadata().imports);
    assert_eq!(engine.cache_stats().hits, 1);
    assert_runs(&again).await;

    // A restart: a new engine (new process in production) finds the same entry.
    let restarted = engine_in(dir.path());
    let plugin = load(&restarted, artifacts::GUEST_ECHO);
    assert!(plugin.metadata().from_cache);
    assert_eq!(
        restarted.cache_stats(),
        CacheStats {
            hits: 1,
            ..CacheStats::default()
        }
    );
    assert_runs(&plugin).await;
}

/// Damages the only entry in `dir` with `damage`, then checks a fresh engine refuses it,
/// compiles, rewrites a good entry, and the next engine hits it.
async fn refused_and_rebuilt(what: &str, damage: impl FnOnce(&Path)) {
    let dir = tempfile::tempdir().unwrap();
    load(&engine_in(dir.path()), artifacts::GUEST_ECHO);
    let entry = entries(dir.path()).pop().expect("one entry");
    damage(&entry);

    let engine = engine_in(dir.path());
    let plugin = load(&engine, artifacts::GUEST_ECHO);
    assert!(!plugin.metadata().from_cache, "{what}: must not be used");
    let stats = engine.cache_stats();
    assert_eq!(
        (stats.rejected, stats.misses, stats.stores),
        (1, 1, 1),
        "{what}: {stats:?}"
    );
    assert_runs(&plugin).await;

    let next = engine_in(dir.path());
    assert!(
        load(&next, artifacts::GUEST_ECHO).metadata().from_cache,
        "{what}: the rebuilt entry is good"
    );
}

#[tokio::test]
async fn a_corrupt_entry_is_refused_and_rebuilt() {
    refused_and_rebuilt("a flipped byte in the code", |entry| {
        let mut bytes = std::fs::read(entry).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(entry, bytes).unwrap();
    })
    .await;
    refused_and_rebuilt("a truncated file", |entry| {
        let bytes = std::fs::read(entry).unwrap();
        std::fs::write(entry, &bytes[..bytes.len() - 100]).unwrap();
    })
    .await;
    refused_and_rebuilt("a file of another program", |entry| {
        std::fs::write(entry, b"\0asm\x0d\0\x01\0 not an entry").unwrap();
    })
    .await;
    refused_and_rebuilt("an empty file", |entry| {
        std::fs::write(entry, b"").unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_entry_others_could_have_written_is_refused() {
    refused_and_rebuilt("a world-writable entry", |entry| {
        std::fs::set_permissions(entry, std::fs::Permissions::from_mode(0o666)).unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_directory_others_can_write_disables_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let engine = engine_in(dir.path());
    assert_eq!(engine.cache_dir(), None, "unsafe directory: no cache");
    let plugin = load(&engine, artifacts::GUEST_ECHO);
    assert!(!plugin.metadata().from_cache);
    assert!(entries(dir.path()).is_empty(), "nothing written there");
    assert_runs(&plugin).await;
}

#[tokio::test]
async fn a_missing_directory_is_created_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("a/b/components");
    let engine = engine_in(&dir);
    assert_eq!(engine.cache_dir(), Some(dir.as_path()));
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    load(&engine, artifacts::GUEST_ECHO);
    assert_eq!(entries(&dir).len(), 1);
}

#[tokio::test]
async fn a_disabled_cache_compiles_every_time_and_writes_nothing() {
    let engine = PluginEngine::with_settings(EngineSettings {
        compile_cache: CacheDir::Disabled,
        ..EngineSettings::default()
    })
    .unwrap();
    assert_eq!(engine.cache_dir(), None);
    for _ in 0..2 {
        assert!(!load(&engine, artifacts::GUEST_ECHO).metadata().from_cache);
    }
    assert_eq!(engine.cache_stats(), CacheStats::default());
}

#[tokio::test]
async fn past_the_size_cap_the_least_recently_used_entries_go() {
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::with_settings(EngineSettings {
        compile_cache: CacheDir::Path(dir.path().to_owned()),
        // Any entry is bigger than this: only the newest one is ever kept.
        compile_cache_max_bytes: 1,
    })
    .unwrap();
    let echo = load(&engine, artifacts::GUEST_ECHO);
    let trap = load(&engine, artifacts::GUEST_TRAP);
    let kept = entries(dir.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    let name = kept[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(trap.hash()), "the newest stays: {name}");
    assert!(!load(&engine, artifacts::GUEST_ECHO).metadata().from_cache);
    assert!(echo.metadata().compile_time > std::time::Duration::ZERO);
}
