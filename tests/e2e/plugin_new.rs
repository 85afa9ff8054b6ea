//! `shipper plugin new` (docs/plugins.md §11.7): each language's project is generated into a temporary directory
//! outside the repository (so nothing in it can reach the repository's `wit/`, `sdk/` or
//! scripts) and checked the way its author would check it: `./test.sh` runs the native unit
//! tests where the language has them, builds `NAME.wasm` with the language's toolchain and
//! compares `shipper plugin test` output with the golden file, through the real binary.
//!
//! The toolchains are the ones `.ci/run` installs; a missing one fails with the build
//! script's install command. What the tests share with the repository is only a cache: the
//! Rust projects build into `<target>/scaffold-rust` (the registry crates compile once, not
//! per run), and the JavaScript and C projects use the example plugin's `node_modules`
//! instead of downloading their own.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::shipper::describe_output as text;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace's target directory: this test binary is `<target>/<profile>/deps/e2e-…`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .map_or_else(|| repo().join("target"), Path::to_path_buf)
}

fn shipper() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shipper"))
}

/// A temporary directory that is not inside the repository.
fn outside_repo(lang: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("shipper-plugin-new-{lang}-"))
        .tempdir_in(std::env::temp_dir())
        .expect("temp dir");
    let real = dir.path().canonicalize().expect("canonical temp dir");
    let repo = repo().canonicalize().expect("canonical repository path");
    assert!(
        !real.starts_with(&repo),
        "{} is inside the repository; set TMPDIR to a directory outside it",
        real.display()
    );
    dir
}

/// `shipper plugin new --lang LANG NAME --dir PARENT`.
fn plugin_new(lang: &str, name: &str, parent: &Path) -> Output {
    shipper()
        .args(["plugin", "new", "--lang", lang, name, "--dir"])
        .arg(parent)
        .output()
        .expect("run shipper plugin new")
}

/// [`plugin_new`], which must succeed; returns the project directory.
fn generate(lang: &str, name: &str, parent: &Path) -> PathBuf {
    let output = plugin_new(lang, name, parent);
    assert!(output.status.success(), "plugin new: {}", text(&output));
    parent.join(name)
}

/// Runs the project's `./test.sh` with `SHIPPER` pointing at the binary under test.
fn run_test_sh(dir: &Path, env: &[(&str, OsString)]) {
    let output = Command::new("bash")
        .arg("test.sh")
        .current_dir(dir)
        .env("SHIPPER", env!("CARGO_BIN_EXE_shipper"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run bash test.sh");
    assert!(
        output.status.success(),
        "{}/test.sh failed (.ci/run installs the toolchains): {}",
        dir.display(),
        text(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ok: the output matches samples/golden.txt"),
        "{}",
        text(&output)
    );
}

/// Generates a `lang` project outside the repository and runs its `test.sh` with `env`;
/// with `node_modules`, the example JavaScript plugin's modules (componentize-js, jco) are
/// linked into the project first, as `npm ci` would install them.
fn generate_and_test(lang: &str, node_modules: bool, env: &[(&str, OsString)]) {
    let temp = outside_repo(lang);
    let dir = generate(lang, "acme-audit", temp.path());
    if node_modules {
        let modules = repo().join("plugins/js-splunk-hec/node_modules");
        assert!(
            modules.join(".bin/jco").is_file(),
            "no jco in {}: run `npm ci --prefix plugins/js-splunk-hec`",
            modules.display()
        );
        std::os::unix::fs::symlink(&modules, dir.join("node_modules"))
            .expect("symlink node_modules");
    }
    run_test_sh(&dir, env);
}

#[test]
fn the_rust_project_builds_and_passes_its_test_outside_the_repository() {
    let target = target_dir().join("scaffold-rust");
    // The crates it needs (wit-bindgen 0.61.1, itoa) are the workspace's own, already
    // downloaded: no network.
    let offline = ("CARGO_NET_OFFLINE", "true".into());
    generate_and_test(
        "rust",
        false,
        &[("CARGO_TARGET_DIR", target.into()), offline],
    );
}

#[test]
fn the_python_project_builds_and_passes_its_test_outside_the_repository() {
    let componentize_py = repo().join("target/test-venv/bin/componentize-py");
    generate_and_test(
        "python",
        false,
        &[("COMPONENTIZE_PY", componentize_py.into())],
    );
}

#[test]
fn the_javascript_project_builds_and_passes_its_test_outside_the_repository() {
    generate_and_test("js", true, &[]);
}

#[test]
fn the_c_project_builds_and_passes_its_test_outside_the_repository() {
    generate_and_test("c", true, &[]);
}

#[test]
fn a_bad_name_or_a_non_empty_directory_is_refused_with_the_fix_and_exit_2() {
    let temp = outside_repo("refused");
    let refused = |lang: &str, name: &str, message: &str| {
        let output = plugin_new(lang, name, temp.path());
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{stderr}");
    };
    refused("rust", "My Plugin", "`my-plugin`");

    let dir = temp.path().join("taken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    refused("c", "taken", "already exists and is not empty");
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
}
