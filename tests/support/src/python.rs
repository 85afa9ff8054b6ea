//! Locates the test venv's python (official SLS SDK, splunk-data-sender). Env
//! `SHIPPER_TEST_PYTHON` wins; default `<workspace>/target/test-venv/bin/python`. Missing →
//! the test fails with the command that creates the venv (never skips).

use std::path::PathBuf;

/// Environment variable naming the python to use.
pub const PYTHON_ENV: &str = "SHIPPER_TEST_PYTHON";

/// The command that creates the default venv.
pub fn install_command() -> String {
    "python3 -m venv target/test-venv && target/test-venv/bin/pip install -r tests/requirements.txt"
        .to_owned()
}

/// The python interpreter of the test venv.
pub fn python() -> PathBuf {
    let path = std::env::var_os(PYTHON_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target/test-venv/bin/python"));
    assert!(
        path.exists(),
        "test python {} not found: create the venv from the workspace root with `{}` (or set {PYTHON_ENV})",
        path.display(),
        install_command()
    );
    path
}
