//! Every golden case under `tests/fixtures/plugins/syslog-kv/` formatted natively by the plugin
//! must equal the independent Python reference (`tests/fixtures/plugins/seed_reference.py`:
//! the seed script's own formatting code run on logs flattened by the official SDK),
//! and the reference rendered by the rules of docs/rendering.md §2 must equal the case's
//! `expected`, which `shipper plugin test` must print through the real runtime (tests/e2e).
//!
//! Needs the test venv's python (`SHIPPER_TEST_PYTHON`, default `target/test-venv/bin/python`);
//! fails with the install command when it is missing.

use shipper_plugin_syslog_kv::SyslogKv;

#[test]
fn golden_cases_match_the_reference() {
    let root = shipper_test_support::workspace_root().join("tests/fixtures/plugins");
    let python = shipper_test_support::python::python();
    let cases = shipper_sdk::testing::golden_cases(&root.join("syslog-kv"));
    assert!(!cases.is_empty(), "no golden cases for syslog-kv");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            shipper_sdk::testing::check_golden_case::<SyslogKv>(
                &python,
                &root.join("seed_reference.py"),
                case,
            )
            .err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
