//! Compiles every `plugins/*` crate and every `tests/guests/*` cdylib to `wasm32-wasip2`
//! (release) with a nested `cargo build` into a separate target directory, builds every
//! plugin written in another language (`plugins/<dir>/build.sh`, no `Cargo.toml`; its SDK
//! comes from `sdk/<language>`) into `<target>/lang-plugins/`, then writes
//! `$OUT_DIR/artifacts.rs` with a path constant per artifact and `foreach_*` macros.
//!
//! A language plugin whose toolchain is missing does not fail this build (every Rust test
//! would fail with it): its entry in `LANG_PLUGINS` carries the build script's message,
//! install command included, and the tests that use that plugin fail with it. The build
//! script then reruns at every build until the plugin builds.

use std::fmt::Write as _;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";

/// One crate to compile.
struct Crate {
    /// Directory name (`splunk-hec`, `spin_loop`).
    dir: String,
    /// Cargo package name.
    package: String,
    /// File stem of the produced `.wasm` (the lib name).
    lib_name: String,
}

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("tests/artifacts sits two levels below the workspace root")
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));

    for path in [
        "wit",
        "sdk",
        "plugins",
        "tests/guests",
        "host/app/templates",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=SHIPPER_WASM_TARGET_DIR");
    // Toolchain overrides read by plugins/*/build.sh.
    for var in ["COMPONENTIZE_PY", "CC_WASM"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    check_target_installed();
    let target_dir = wasm_target_dir(&out_dir);

    let plugins = discover(&root.join("plugins"));
    let guests = discover(&root.join("tests/guests"));

    if !plugins.is_empty() {
        let mut cmd = cargo(&target_dir);
        cmd.arg("--manifest-path").arg(root.join("Cargo.toml"));
        for plugin in &plugins {
            cmd.arg("-p").arg(&plugin.package);
        }
        run(cmd, "plugins");
    }
    if !guests.is_empty() {
        let mut cmd = cargo(&target_dir);
        cmd.arg("--manifest-path")
            .arg(root.join("tests/guests/Cargo.toml"));
        for guest in &guests {
            cmd.arg("-p").arg(&guest.package);
        }
        run(cmd, "test guests");
    }

    let wasm_dir = target_dir.join(WASM_TARGET).join("release");
    let mut code = String::new();
    write_kind(&mut code, "PLUGIN", "plugin", &plugins, &wasm_dir);
    write_kind(&mut code, "GUEST", "guest", &guests, &wasm_dir);

    let lang_dir = lang_plugins_dir(&target_dir);
    let built: Vec<(String, Result<PathBuf, String>)> = discover_lang(&root.join("plugins"))
        .into_iter()
        .map(|dir| {
            let result = build_lang(&root, &lang_dir, &dir);
            (dir, result)
        })
        .collect();
    write_lang(&mut code, &built);
    std::fs::write(out_dir.join("artifacts.rs"), code).expect("write artifacts.rs");
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// Fails with the fix when the wasm target's standard library is not installed.
fn check_target_installed() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{rustc} --print sysroot`: {e}"));
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let lib = Path::new(&sysroot).join("lib/rustlib").join(WASM_TARGET);
    if !lib.is_dir() {
        panic!(
            "\n\nthe Rust target `{WASM_TARGET}` is not installed (no {}).\n\
             Plugins and test guests are compiled to it. Install it with:\n\n    \
             rustup target add {WASM_TARGET}\n\n",
            lib.display()
        );
    }
}

/// `<target>/wasm-artifacts`: one directory shared by every build profile of this crate
/// (test, clippy, bench) so a change compiles once; `SHIPPER_WASM_TARGET_DIR` overrides it.
/// Falls back to `$OUT_DIR/wasm-target` when the target root cannot be found.
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    if let Ok(dir) = std::env::var("SHIPPER_WASM_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // One wasm build shared by every profile and every build-script run (check, clippy,
    // test, doc): `<target>/wasm-artifacts`. The target directory is found by its
    // CACHEDIR.TAG, which cargo writes only when it creates the directory itself; where
    // something else created it first (a Python venv under target/), it is found by OUT_DIR's
    // shape, `<target>/<profile>/build/<package>-<hash>/out`.
    let target = out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .or_else(|| {
            let profile = out_dir.ancestors().nth(3)?;
            let build = out_dir.ancestors().nth(2)?;
            (build.file_name()? == "build").then_some(profile.parent()?)
        });
    target.map_or_else(
        || out_dir.join("wasm-target"),
        |target| target.join("wasm-artifacts"),
    )
}

/// Every immediate subdirectory of `dir` whose `Cargo.toml` builds a `cdylib`, sorted.
fn discover(dir: &Path) -> Vec<Crate> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut crates = Vec::new();
    for entry in entries {
        let path = entry.expect("read_dir entry").path();
        let manifest = path.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml::Table = text
            .parse()
            .unwrap_or_else(|e| panic!("{} is not valid TOML: {e}", manifest.display()));
        let Some(package) = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
        else {
            continue;
        };
        let lib = doc.get("lib");
        let is_cdylib = lib
            .and_then(|l| l.get("crate-type"))
            .and_then(|t| t.as_array())
            .is_some_and(|types| types.iter().any(|t| t.as_str() == Some("cdylib")));
        if !is_cdylib {
            continue;
        }
        let lib_name = lib
            .and_then(|l| l.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or(package)
            .replace('-', "_");
        crates.push(Crate {
            dir: path
                .file_name()
                .expect("directory entry has a name")
                .to_string_lossy()
                .into_owned(),
            package: package.to_owned(),
            lib_name,
        });
    }
    crates.sort_by(|a, b| a.dir.cmp(&b.dir));
    crates
}

/// A nested `cargo build --release --target wasm32-wasip2` into `target_dir`, with the
/// outer build's per-target settings removed (host RUSTFLAGS, clippy's wrapper).
fn cargo(target_dir: &Path) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", WASM_TARGET])
        .env("CARGO_TARGET_DIR", target_dir)
        // Smaller artifacts; the name section still gives readable wasm backtraces.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    cmd
}

fn run(mut cmd: Command, what: &str) {
    eprintln!("building {what}: {cmd:?}");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the {what}: {e}"));
    if !status.success() {
        panic!("building the {what} for {WASM_TARGET} failed ({status}); see the output above");
    }
}

fn write_kind(code: &mut String, prefix: &str, kind: &str, crates: &[Crate], wasm_dir: &Path) {
    let mut list = String::new();
    let mut arms = String::new();
    for c in crates {
        let path = wasm_dir.join(format!("{}.wasm", c.lib_name));
        assert!(path.is_file(), "cargo did not produce {}", path.display());
        let ident = c.dir.replace('-', "_");
        let konst = format!("{prefix}_{}", ident.to_uppercase());
        let path = path.to_str().expect("UTF-8 target path");
        writeln!(code, "/// The `{}` {kind} (`{}`).", c.dir, c.package).unwrap();
        writeln!(code, "pub const {konst}: &str = {path:?};").unwrap();
        writeln!(list, "    ({:?}, {konst}),", c.dir).unwrap();
        writeln!(
            arms,
            "        $mac!({ident}, {:?}, $crate::{konst});",
            c.dir
        )
        .unwrap();
    }
    let plural = format!("{prefix}S");
    writeln!(code, "/// Every {kind}: (directory name, wasm path).").unwrap();
    writeln!(code, "pub const {plural}: &[(&str, &str)] = &[\n{list}];").unwrap();
    writeln!(
        code,
        "/// Calls `$mac!(ident, \"dir\", PATH)` for every {kind}.\n#[macro_export]\n\
         macro_rules! foreach_{kind} {{\n    ($mac:ident) => {{\n{arms}    }};\n}}"
    )
    .unwrap();
}

/// `<target>/lang-plugins` (next to `wasm-artifacts`), shared by every profile.
fn lang_plugins_dir(wasm_target_dir: &Path) -> PathBuf {
    wasm_target_dir.parent().map_or_else(
        || wasm_target_dir.join("lang-plugins"),
        |t| t.join("lang-plugins"),
    )
}

/// Every immediate subdirectory of `plugins/` with a `build.sh` and no `Cargo.toml`, sorted.
fn discover_lang(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<String> = entries
        .map(|e| e.expect("read_dir entry").path())
        .filter(|p| p.join("build.sh").is_file() && !p.join("Cargo.toml").exists())
        .map(|p| {
            p.file_name()
                .expect("directory entry has a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    dirs.sort();
    dirs
}

/// Hashes the plugin's sources (not `node_modules`, not `__pycache__`), the language SDKs
/// under `sdk/`, the project templates (a build.sh may run a template's build script, as
/// the C plugin's does), the WIT and the adapter: when the stamp next to the built component
/// matches, nothing is rebuilt.
fn source_stamp(root: &Path, plugin_dir: &Path) -> u64 {
    fn walk(dir: &Path, hasher: &mut std::hash::DefaultHasher) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.expect("read_dir entry").path()).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if matches!(name.as_deref(), Some("node_modules" | "__pycache__")) {
                continue;
            }
            if path.is_dir() {
                walk(&path, hasher);
            } else if let Ok(bytes) = std::fs::read(&path) {
                path.hash(hasher);
                bytes.hash(hasher);
            }
        }
    }
    let mut hasher = std::hash::DefaultHasher::new();
    walk(plugin_dir, &mut hasher);
    // The SDK a plugin compiles in lives in `sdk/<language>` (`python`, `js`, `c`); which one
    // is up to its build.sh, so every one counts. `sdk/src` is the Rust SDK: not theirs.
    let mut sdks: Vec<PathBuf> = std::fs::read_dir(root.join("sdk"))
        .into_iter()
        .flatten()
        .map(|e| e.expect("read_dir entry").path())
        .filter(|p| p.is_dir() && !p.ends_with("src"))
        .collect();
    sdks.sort();
    for sdk in &sdks {
        walk(sdk, &mut hasher);
    }
    walk(&root.join("host/app/templates"), &mut hasher);
    walk(&root.join("wit"), &mut hasher);
    ADAPTER.hash(&mut hasher);
    hasher.finish()
}

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER as ADAPTER;

/// Builds one language plugin with its `build.sh` (skipped when the stamp matches): the
/// component's path, or the script's message.
fn build_lang(root: &Path, out: &Path, dir: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    // The C plugin is wrapped with wasmtime's own preview1 adapter, from its crate.
    let adapter = out.join("wasi_snapshot_preview1.reactor.wasm");
    if std::fs::read(&adapter).ok().as_deref() != Some(ADAPTER) {
        let temp = out.join(format!(".adapter.{}.tmp", std::process::id()));
        std::fs::write(&temp, ADAPTER)
            .and_then(|()| std::fs::rename(&temp, &adapter))
            .map_err(|e| format!("cannot write {}: {e}", adapter.display()))?;
    }

    let plugin_dir = root.join("plugins").join(dir);
    let wasm = out.join(format!("{dir}.wasm"));
    let stamp_path = out.join(format!("{dir}.stamp"));
    // Builds of other profiles (test, clippy, bench) may run at the same time: one at a time.
    let lock = std::fs::File::create(out.join(format!(".{dir}.lock")))
        .map_err(|e| format!("cannot create the build lock in {}: {e}", out.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", out.display()))?;
    let stamp = source_stamp(root, &plugin_dir).to_string();
    if wasm.is_file() && std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(&stamp) {
        return Ok(wasm);
    }
    let _ = std::fs::remove_file(&stamp_path);
    let temp = out.join(format!(".{dir}.{}.wasm", std::process::id()));
    eprintln!("building language plugin {dir}: bash plugins/{dir}/build.sh");
    let output = Command::new("bash")
        .arg(plugin_dir.join("build.sh"))
        .arg(&temp)
        .env("SHIPPER_PREVIEW1_ADAPTER", &adapter)
        .output()
        .map_err(|e| format!("cannot run bash plugins/{dir}/build.sh: {e}"))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&temp);
        // Retry at every build until the toolchain is there: this path never exists.
        println!(
            "cargo:rerun-if-changed={}",
            out.join(format!(".{dir}.build-failed")).display()
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        return Err(format!(
            "building plugins/{dir} failed ({}):\n{}{}",
            output.status,
            stdout.trim_end(),
            stderr.trim_end()
        ));
    }
    std::fs::rename(&temp, &wasm)
        .map_err(|e| format!("cannot move the built {dir} to {}: {e}", wasm.display()))?;
    std::fs::write(&stamp_path, stamp)
        .map_err(|e| format!("cannot write {}: {e}", stamp_path.display()))?;
    Ok(wasm)
}

fn write_lang(code: &mut String, built: &[(String, Result<PathBuf, String>)]) {
    let mut list = String::new();
    let mut arms = String::new();
    for (dir, result) in built {
        let ident = dir.replace('-', "_");
        let konst = format!("LANG_PLUGIN_{}", ident.to_uppercase());
        let value = match result {
            Ok(path) => format!("Ok({:?})", path.to_str().expect("UTF-8 target path")),
            Err(message) => format!("Err({message:?})"),
        };
        writeln!(
            code,
            "/// The `{dir}` plugin (not Rust): its component, or why it could not be built."
        )
        .unwrap();
        writeln!(
            code,
            "pub const {konst}: LangPlugin = LangPlugin {{ dir: {dir:?}, wasm: {value} }};"
        )
        .unwrap();
        writeln!(list, "    {konst},").unwrap();
        writeln!(arms, "        $mac!({ident}, {dir:?}, $crate::{konst});").unwrap();
    }
    writeln!(code, "/// Every plugin written in another language.").unwrap();
    writeln!(code, "pub const LANG_PLUGINS: &[LangPlugin] = &[\n{list}];").unwrap();
    writeln!(
        code,
        "/// Calls `$mac!(ident, \"dir\", LANG_PLUGIN)` for every language plugin.\n\
         #[macro_export]\nmacro_rules! foreach_lang_plugin {{\n    ($mac:ident) => {{\n{arms}    }};\n}}"
    )
    .unwrap();
}
