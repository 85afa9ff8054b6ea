//! Paths of the plugins (`plugins/*`) and test guests (`tests/guests/*`), compiled from
//! source to `wasm32-wasip2` components by this crate's build script, for tests and
//! benchmarks. No prebuilt `.wasm` is committed anywhere (style.md §3.5).
//!
//! - `PLUGIN_<NAME>` / `GUEST_<NAME>`: absolute path of each artifact (`NAME` is the
//!   directory name in shouty snake case).
//! - [`PLUGINS`] / [`GUESTS`]: `(directory name, path)` of every artifact.
//! - `foreach_plugin!(mac)` / `foreach_guest!(mac)`: call `mac!(ident, "dir", PATH)` for
//!   each one, so a test suite can assert at compile time that every artifact has a test
//!   (wasmtime's `crates/test-programs` trick).
//!
//! The build script compiles into its own target directory (`<target>/wasm-artifacts`,
//! shared by the test, clippy and bench builds so each change compiles once) and reruns
//! only when `wit/`, `sdk/`, `plugins/`, `tests/guests/` or the root manifest/lock change.

#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// Reads an artifact, with a message naming it when it is missing.
pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read wasm artifact {path}: {e}"))
}
