//! Conformance with a second official SDK: the Rust SDK (`aliyun-log-rust-sdk` 0.3.3 from
//! crates.io, unmodified) drives the real `shipper emulator` through its documented API
//! forms, as it would drive SLS (`tests/conformance/rust-sdk`, its own package outside the
//! workspace: the SDK brings a reqwest 0.12 / native-tls tree of its own). The SDK reaches
//! the emulator in proxy mode (endpoint `sls.local`, `HTTP_PROXY` = the emulator).

use std::process::Command;

use shipper_test_support::workspace_root;

use crate::harness::emulator::{EmulatorOptions, EmulatorProcess};

const AK_ID: &str = "rust-sdk-id";
const AK_SECRET: &str = "rust-sdk-secret";

#[test]
fn rust_sdk_project_logstore_logs_and_consumer_group_calls_work() {
    let root = workspace_root();
    let manifest = root.join("tests/conformance/rust-sdk/Cargo.toml");
    let target = root.join("target/rust-sdk-conformance");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(&cargo)
        .args(["build", "--locked", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .output()
        .unwrap_or_else(|e| panic!("{cargo}: {e}"));
    assert!(
        built.status.success(),
        "building the Rust SDK conformance program failed (it needs crates.io, libssl-dev \
         and pkg-config: apt-get install -y libssl-dev pkg-config):\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let emu = EmulatorProcess::start(EmulatorOptions::new(AK_ID, AK_SECRET));
    let out = Command::new(target.join("debug/shipper-rust-sdk-conformance"))
        .env("SLS_ENDPOINT", "sls.local")
        .env("SLS_AK_ID", AK_ID)
        .env("SLS_AK_KEY", AK_SECRET)
        .env("HTTP_PROXY", emu.proxy_url())
        .env("http_proxy", emu.proxy_url())
        .env("NO_PROXY", "")
        .env("no_proxy", "")
        .output()
        .expect("run the conformance program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("rust sdk conformance ok"),
        "the Rust SDK against the emulator failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{}\n--- emulator ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        emu.stderr()
    );
}
