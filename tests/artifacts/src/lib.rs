//! Paths of the plugins (`plugins/*`) and test guests (`tests/guests/*`), compiled from
//! source to `wasm32-wasip2` components by this crate's build script, for tests and
//! benchmarks. No prebuilt `.wasm` is committed anywhere: a binary could not be reviewed.
//!
//! - `PLUGIN_<NAME>` / `GUEST_<NAME>`: absolute path of each artifact (`NAME` is the
//!   directory name in shouty snake case).
//! - [`PLUGINS`] / [`GUESTS`]: `(directory name, path)` of every artifact.
//! - `foreach_plugin!(mac)` / `foreach_guest!(mac)`: call `mac!(ident, "dir", PATH)` for
//!   each one, so a test suite can assert at compile time that every artifact has a test
//!   (wasmtime's `crates/test-programs` trick).
//!
//! - `LANG_PLUGIN_<NAME>` / [`LANG_PLUGINS`]: the plugins written in Python, JavaScript and
//!   C (`plugins/<dir>/build.sh`), built into `<target>/lang-plugins/`; each is a
//!   [`LangPlugin`] whose [`LangPlugin::path`] fails loudly, with the install command, when
//!   its toolchain was missing. `foreach_lang_plugin!(mac)` calls `mac!(ident, "dir",
//!   LANG_PLUGIN)` for each.
//!
//! The build script compiles into its own target directory (`<target>/wasm-artifacts`,
//! shared by the test, clippy and bench builds so each change compiles once) and reruns
//! only when `wit/`, `sdk/`, `plugins/`, `tests/guests/` or the root manifest/lock change.

#![deny(missing_docs)]

/// A plugin written in another language, built by its `build.sh`.
#[derive(Debug, Clone, Copy)]
pub struct LangPlugin {
    /// Directory name under `plugins/` (`python-splunk-hec`).
    pub dir: &'static str,
    /// The component's path, or the build script's message (with the install command).
    pub wasm: Result<&'static str, &'static str>,
}

impl LangPlugin {
    /// The component's path; panics with the build failure (toolchain missing: the message
    /// says what to install) so a test that needs it fails loudly instead of skipping.
    pub fn path(&self) -> &'static str {
        match self.wasm {
            Ok(path) => path,
            Err(message) => panic!(
                "\n\nthe `{}` plugin could not be built, so this test cannot run:\n\n{message}\n\n\
                 (`.ci/run` installs every toolchain; the build retries at the next `cargo test`)\n",
                self.dir
            ),
        }
    }

    /// The component's bytes (see [`LangPlugin::path`]).
    pub fn read(&self) -> Vec<u8> {
        read(self.path())
    }
}

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// Reads an artifact, with a message naming it when it is missing.
pub fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read wasm artifact {path}: {e}"))
}
