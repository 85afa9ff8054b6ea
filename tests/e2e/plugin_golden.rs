//! Plugin golden tests (docs/plugins.md §11.6 "Testing a plugin"): for every plugin under
//! `plugins/`, every case directory `tests/fixtures/plugins/<plugin>/<case>/` is run through
//! the real binary,
//! `shipper plugin test --plugin <wasm> [--input input.jsonl] [--config config.json]
//! [args…]`, and stdout must equal `expected` byte for byte.
//!
//! A case directory holds:
//! - `expected` (required): the exact stdout;
//! - `input.jsonl` (optional, else the built-in samples), `config.json` (optional);
//! - `args` (optional): extra flags, whitespace-separated (e.g. `--syslog-format rfc3164`);
//! - `expected.stderr` (optional): the `log N: …` lines expected on stderr; when present
//!   the command must fail (some log failed), otherwise it must succeed.
//!
//! A plugin without cases fails, and so does a fixture directory without a plugin.
//! `SHIPPER_BLESS=1 cargo test --test e2e plugin_golden` rewrites `expected` (and
//! `expected.stderr` when it exists) from the actual output, for reviewing with `git diff`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins")
}

fn bless() -> bool {
    std::env::var_os("SHIPPER_BLESS").is_some_and(|v| v == "1")
}

/// Sorted case directories of one plugin.
fn cases(plugin: &str) -> Vec<PathBuf> {
    let dir = fixtures_root().join(plugin);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut cases: Vec<PathBuf> = entries
        .map(|e| e.expect("read fixture dir").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// Shows bytes with invisible characters made visible, for diffs.
fn visible(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .flat_map(|c| match c {
            '\t' => "\\t".chars().collect::<Vec<_>>(),
            '\r' => "\\r".chars().collect(),
            c if c.is_control() => format!("\\u{{{:x}}}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect()
}

/// A line diff of `expected` vs `actual` (both split at `\n`), listing differing lines.
fn diff(expected: &[u8], actual: &[u8]) -> String {
    let exp: Vec<&[u8]> = expected.split(|&b| b == b'\n').collect();
    let act: Vec<&[u8]> = actual.split(|&b| b == b'\n').collect();
    let mut out = String::new();
    let mut shown = 0;
    for i in 0..exp.len().max(act.len()) {
        let (e, a) = (exp.get(i), act.get(i));
        if e == a {
            continue;
        }
        shown += 1;
        if shown > 10 {
            out.push_str("  … (more differences)\n");
            break;
        }
        out.push_str(&format!("  line {}:\n", i + 1));
        match e {
            Some(e) => out.push_str(&format!("    expected: {}\n", visible(e))),
            None => out.push_str("    expected: <no line>\n"),
        }
        match a {
            Some(a) => out.push_str(&format!("    actual:   {}\n", visible(a))),
            None => out.push_str("    actual:   <no line>\n"),
        }
    }
    out
}

/// Runs one case; returns a description of what is wrong, if anything.
fn run_case(wasm: &str, case: &Path) -> Option<String> {
    let expected_path = case.join("expected");
    let stderr_path = case.join("expected.stderr");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
    cmd.args(["--log-level", "error", "plugin", "test", "--plugin", wasm]);
    if case.join("input.jsonl").is_file() {
        cmd.arg("--input").arg(case.join("input.jsonl"));
    }
    if case.join("config.json").is_file() {
        cmd.arg("--config").arg(case.join("config.json"));
    }
    if let Ok(args) = std::fs::read_to_string(case.join("args")) {
        cmd.args(args.split_whitespace());
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run shipper: {e}"));
    let stderr_log_lines: Vec<u8> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.starts_with("log "))
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();

    if bless() {
        std::fs::write(&expected_path, &output.stdout).expect("write expected");
        if stderr_path.exists() {
            std::fs::write(&stderr_path, &stderr_log_lines).expect("write expected.stderr");
        }
        return None;
    }

    let mut problems = String::new();
    match std::fs::read(&expected_path) {
        Ok(expected) if expected == output.stdout => {}
        Ok(expected) => problems.push_str(&format!(
            "stdout differs from {}:\n{}",
            expected_path.display(),
            diff(&expected, &output.stdout)
        )),
        Err(e) => problems.push_str(&format!(
            "cannot read {}: {e} (create it, or run with SHIPPER_BLESS=1)\n",
            expected_path.display()
        )),
    }
    match std::fs::read(&stderr_path) {
        Ok(expected) => {
            if output.status.success() {
                problems.push_str("expected some log to fail (expected.stderr exists), but the command succeeded\n");
            }
            if expected != stderr_log_lines {
                problems.push_str(&format!(
                    "stderr `log N:` lines differ from {}:\n{}",
                    stderr_path.display(),
                    diff(&expected, &stderr_log_lines)
                ));
            }
        }
        Err(_) if !output.status.success() => problems.push_str(&format!(
            "the command failed ({}):\n{}\n",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )),
        Err(_) => {}
    }
    (!problems.is_empty()).then_some(problems)
}

/// Runs every case of one plugin and fails with all problems at once.
#[allow(
    dead_code,
    reason = "unused until the first plugin exists under plugins/"
)]
fn check_plugin(plugin: &str, wasm: &str) {
    let cases = cases(plugin);
    assert!(
        !cases.is_empty(),
        "plugin `{plugin}` has no golden cases: add at least one directory under {} with \
         `expected` (and `input.jsonl`/`config.json`)",
        fixtures_root().join(plugin).display()
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| run_case(wasm, case).map(|p| format!("case {}:\n{p}", case.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} golden cases of `{plugin}` failed (SHIPPER_BLESS=1 rewrites them):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[allow(
    unused_macros,
    reason = "unused until the first plugin exists under plugins/"
)]
macro_rules! golden_test {
    ($name:ident, $dir:literal, $path:expr) => {
        #[test]
        fn $name() {
            check_plugin($dir, $path);
        }
    };
}
shipper_test_artifacts::foreach_plugin!(golden_test);

#[test]
fn every_fixture_directory_belongs_to_a_plugin() {
    let entries = std::fs::read_dir(fixtures_root()).expect("tests/fixtures/plugins exists");
    for entry in entries {
        let path = entry.expect("read fixtures").path();
        // Plain files (the seed reference script, .gitattributes) are not cases.
        if !path.is_dir() {
            continue;
        }
        let name = path
            .file_name()
            .expect("named")
            .to_string_lossy()
            .into_owned();
        assert!(
            shipper_test_artifacts::PLUGINS
                .iter()
                .any(|(dir, _)| *dir == name),
            "{} has golden cases but there is no plugins/{name}",
            path.display()
        );
    }
}

#[test]
fn diff_shows_the_differing_lines_visibly() {
    let d = diff(b"a\nb\tc\n", b"a\nb c\nextra\n");
    assert_eq!(
        d,
        "  line 2:\n    expected: b\\tc\n    actual:   b c\n  line 3:\n    expected: \n    actual:   extra\n  line 4:\n    expected: <no line>\n    actual:   \n"
    );
}

/// `shipper plugin test --expect`: the assertion a plugin author runs. The golden file holds
/// the events and, as `! log N: …` lines, the expected per-log failures; a mismatch exits 1
/// with a unified diff; `--update` rewrites the file.
#[test]
fn plugin_test_expect_passes_on_its_golden_and_shows_a_diff_otherwise() {
    let dir = tempfile::tempdir().expect("temp dir");
    let golden = dir.path().join("golden.txt");
    let case = fixtures_root().join("splunk-hec/edge-values");
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
        cmd.args([
            "plugin",
            "test",
            "--plugin",
            shipper_test_artifacts::PLUGIN_SPLUNK_HEC,
        ])
        .arg("--input")
        .arg(case.join("input.jsonl"))
        .arg("--expect")
        .arg(&golden)
        .args(extra);
        if case.join("config.json").exists() {
            cmd.arg("--config").arg(case.join("config.json"));
        }
        cmd.output().expect("run shipper plugin test")
    };
    let missing = run(&[]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "no golden file yet is a usage error"
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--update"));

    let updated = run(&["--update"]);
    assert!(updated.status.success(), "{updated:?}");
    let written = std::fs::read(&golden).expect("golden written");
    assert_eq!(
        written,
        std::fs::read(case.join("expected")).expect("fixture"),
        "--update writes what plugin test prints"
    );
    let same = run(&[]);
    assert!(same.status.success(), "{same:?}");

    // One event changed in the golden file: exit 1 and a diff naming both versions.
    let text = String::from_utf8(written).expect("UTF-8");
    let first = text.lines().next().expect("an event").to_owned();
    std::fs::write(&golden, text.replacen(&first, "{\"event\":\"old\"}", 1)).expect("edit");
    let differs = run(&[]);
    assert_eq!(differs.status.code(), Some(1), "{differs:?}");
    let out = String::from_utf8_lossy(&differs.stdout);
    assert!(
        out.contains("-{\"event\":\"old\"}") && out.contains(&format!("+{first}")),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&differs.stderr).contains("rerun with --update"));
}

/// A log the plugin refuses is part of the golden output (`! log N: KIND: MESSAGE`), so the
/// expected rejection passes `--expect` and the command succeeds.
#[test]
fn plugin_test_expect_asserts_expected_rejections_too() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("input.jsonl");
    std::fs::write(
        &input,
        "{\"__time__\": 1700000000, \"seq\": \"1\"}\n{\"__time__\": 1700000001, \"seq\": \"2\", \"reject\": \"no\"}\n",
    )
    .expect("input");
    let golden = dir.path().join("golden.txt");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_shipper"))
            .args([
                "plugin",
                "test",
                "--plugin",
                shipper_test_artifacts::GUEST_POISON_JSON,
            ])
            .arg("--input")
            .arg(&input)
            .arg("--expect")
            .arg(&golden)
            .args(extra)
            .output()
            .expect("run shipper plugin test")
    };
    assert!(run(&["--update"]).status.success());
    let text = std::fs::read_to_string(&golden).expect("golden");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("\"seq\":\"1\""), "{text}");
    assert_eq!(lines[1], "! log 2: invalid-input: log seq=2 rejected: no");
    let again = run(&[]);
    assert!(again.status.success(), "{again:?}");
}
