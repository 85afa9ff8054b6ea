//! The emulator over HTTP, in-process on 127.0.0.1:0, driven by a minimal signed client
//! (`client.rs`). The official Python SDK drives the same server in the root package's e2e
//! suite (`tests/e2e/emulator_sdk.rs`); these tests pin behaviour from the Rust side,
//! including the error paths an SDK never takes.

mod client;
mod faults;
mod groups;
mod logs;
mod misc;

use client::{AK_ID, AK_SECRET, Client};
use shipper_emulator::{Emulator, EmulatorConfig, EmulatorHandle, LogstoreSpec};

/// An emulator with `proj/store:4` and a client for `proj`.
pub async fn start() -> (EmulatorHandle, Client) {
    let config = EmulatorConfig::new(AK_ID, AK_SECRET)
        .with_logstore(LogstoreSpec::try_new("proj", "store", 4).unwrap());
    let emu = Emulator::start(config).await.unwrap();
    let client = Client::new(emu.addr(), "proj");
    (emu, client)
}

/// Polls `check` until it returns `Some`, failing after a deadline (raised by
/// `SHIPPER_TEST_DEADLINE_SECS`).
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let secs = std::env::var("SHIPPER_TEST_DEADLINE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let start = tokio::time::Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(secs),
            "{what}: not true after {:?} ({attempts} attempts)",
            start.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A small LogGroup for tests that only count.
pub fn logs_group() -> shipper_sls::proto::LogGroup {
    shipper_sls::proto::LogGroup {
        logs: vec![shipper_sls::proto::Log {
            time: 1_700_000_000,
            contents: vec![shipper_sls::proto::Content {
                key: "k".into(),
                value: b"v".to_vec(),
            }],
            time_ns: None,
        }],
        ..Default::default()
    }
}
