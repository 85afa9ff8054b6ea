//! Helpers shared by the runtime tests: one engine per process, loading artifacts, and
//! building log groups.

use std::sync::OnceLock;

use shipper_runtime::{
    BatchInfo, Payload, Plugin, PluginEngine, PluginInstance, PluginLimits, RecordResult,
};
use shipper_sls::proto::{Content, Log, LogGroup};

/// The process-wide engine (one per process, as in production).
pub fn engine() -> &'static PluginEngine {
    static ENGINE: OnceLock<PluginEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PluginEngine::new().expect("engine starts"))
}

/// Loads an artifact with the given limits.
pub fn load_with(path: &str, limits: PluginLimits) -> Plugin {
    engine()
        .load(&shipper_test_artifacts::read(path), limits)
        .unwrap_or_else(|e| panic!("{path} loads: {e}"))
}

/// Loads an artifact with default limits.
pub fn load(path: &str) -> Plugin {
    load_with(path, PluginLimits::default())
}

/// Limits with short call budgets, so timeout tests finish quickly.
pub fn fast_timeout_limits() -> PluginLimits {
    PluginLimits {
        call_budget_base: std::time::Duration::from_millis(50),
        call_budget_per_log: std::time::Duration::from_millis(1),
        ..PluginLimits::default()
    }
}

/// A log with the given time and contents.
pub fn log(time: u32, contents: &[(&str, &str)]) -> Log {
    Log {
        time,
        contents: contents
            .iter()
            .map(|(k, v)| Content {
                key: (*k).into(),
                value: v.as_bytes().to_vec(),
            })
            .collect(),
        time_ns: None,
    }
}

/// A group of logs with a topic.
pub fn group(logs: Vec<Log>) -> LogGroup {
    LogGroup {
        logs,
        reserved: None,
        topic: Some("test".into()),
        source: Some("127.0.0.1".into()),
        machine_uuid: None,
        log_tags: Vec::new(),
    }
}

/// The sample batch info.
pub fn batch() -> BatchInfo {
    shipper_runtime::BatchInfo::sample()
}

/// Runs `process` on a group.
pub async fn process(
    instance: &mut PluginInstance,
    group: &LogGroup,
) -> Result<Vec<RecordResult>, shipper_runtime::PluginError> {
    let bytes = shipper_sls::proto::encode_group(group);
    instance.process(&batch(), &bytes, group.logs.len()).await
}

/// Asserts the echo guest works on a fresh instance of `plugin`-independent echo: proves
/// the host is still healthy after a hostile guest did its worst.
pub async fn assert_host_still_works() {
    let echo = load(shipper_test_artifacts::GUEST_ECHO);
    let mut instance = echo.instantiate("{}").await.expect("echo instantiates");
    let group = group(vec![log(1_700_000_000, &[("k", "v")])]);
    let results = process(&mut instance, &group)
        .await
        .expect("echo processes");
    assert_eq!(results.len(), 1);
    let emits = results[0].as_ref().expect("echo formats the log");
    assert!(matches!(emits[0].payload, Payload::Raw(_)));
}
