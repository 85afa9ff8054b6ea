//! The Python, JavaScript and C splunk-hec plugins through the real binary (docs/plugins.md
//! §11.2–§11.4):
//! `shipper plugin test` on every splunk-hec golden case must print the case's `expected`
//! byte for byte, as the Rust plugin does (tests/e2e/plugin_golden.rs). The in-process
//! comparison with the Rust plugin on many more inputs is in host/runtime's
//! `lang_plugins` tests. Each plugin's `build.sh` must name the install command when its
//! toolchain is missing (tests never skip; they fail with that command).

use std::path::{Path, PathBuf};
use std::process::Command;

use shipper_test_artifacts::{self as artifacts, LangPlugin};

fn golden_cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins/splunk-hec");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("fixture entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(
        !cases.is_empty(),
        "no splunk-hec golden cases in {}",
        dir.display()
    );
    cases
}

fn check(lang: LangPlugin) {
    let wasm = lang.path();
    let mut failures = Vec::new();
    let cases = golden_cases();
    for case in &cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
        cmd.args(["--log-level", "error", "plugin", "test", "--plugin", wasm]);
        for (flag, file) in [("--input", "input.jsonl"), ("--config", "config.json")] {
            if case.join(file).is_file() {
                cmd.arg(flag).arg(case.join(file));
            }
        }
        let output = cmd.output().expect("run shipper");
        let expected = std::fs::read(case.join("expected")).expect("read expected");
        if !output.status.success() || output.stdout != expected {
            failures.push(format!(
                "{}: status {}\n--- expected\n{}--- got\n{}--- stderr\n{}",
                case.display(),
                output.status,
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} splunk-hec golden cases differ for {}:\n\n{}",
        failures.len(),
        cases.len(),
        lang.dir,
        failures.join("\n")
    );
}

macro_rules! golden_test {
    ($name:ident, $dir:literal, $plugin:expr) => {
        #[test]
        fn $name() {
            check($plugin);
        }
    };
}
artifacts::foreach_lang_plugin!(golden_test);

/// Runs a plugin's build.sh with `env` set and returns (exit code, stderr).
fn build_with(dir: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let temp = tempfile::tempdir().expect("temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("plugins/{dir}/build.sh"));
    let output = Command::new("bash")
        .arg(script)
        .arg(temp.path().join("out.wasm"))
        .envs(env.iter().copied())
        .output()
        .expect("run bash");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_missing_toolchain_is_reported_with_its_install_command() {
    let (code, stderr) = build_with(
        "python-splunk-hec",
        &[("COMPONENTIZE_PY", "/nonexistent/componentize-py")],
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("pip install -r tests/requirements.txt"),
        "{stderr}"
    );

    let (code, stderr) = build_with("c-splunk-hec", &[("CC_WASM", "no-such-clang")]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("apt-get install clang-14"), "{stderr}");

    let (code, stderr) = build_with(
        "c-splunk-hec",
        &[("SHIPPER_PREVIEW1_ADAPTER", "/nonexistent/adapter.wasm")],
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("preview1 reactor adapter"), "{stderr}");
}
