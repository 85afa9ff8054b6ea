//! Every real plugin (plugins/*) loads under the default limits, initialises (with the
//! config of its first golden case that has one, else `{}`) and formats the built-in samples
//! through the production runtime, with exactly one result per log and no trap. Exact output
//! is checked by the golden tests (tests/e2e/plugin_golden.rs).

use crate::support::{load, process};

#[allow(
    dead_code,
    reason = "unused until the first plugin exists under plugins/"
)]
async fn formats_builtin_samples(dir: &str, path: &str) {
    let config = golden_config(dir);
    let plugin = load(path);
    let mut instance = plugin
        .instantiate(&config)
        .await
        .unwrap_or_else(|e| panic!("plugin {dir} must accept config {config}: {e}"));
    for group in shipper_sls::flat::samples::builtin_groups() {
        let results = process(&mut instance, &group)
            .await
            .unwrap_or_else(|e| panic!("plugin {dir}: {e}"));
        assert_eq!(results.len(), group.logs.len(), "plugin {dir}");
    }
    assert!(!instance.is_poisoned());
}

#[allow(
    unused_macros,
    reason = "unused until the first plugin exists under plugins/"
)]
/// The config of the plugin's first golden case (sorted) that has a `config.json`, else `{}`.
#[allow(
    dead_code,
    reason = "unused until the first plugin exists under plugins/"
)]
fn golden_config(dir: &str) -> String {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/plugins")
        .join(dir);
    let mut configs: Vec<std::path::PathBuf> = std::fs::read_dir(fixtures)
        .into_iter()
        .flatten()
        .map(|entry| entry.expect("read fixtures").path().join("config.json"))
        .filter(|path| path.is_file())
        .collect();
    configs.sort();
    configs.first().map_or_else(
        || "{}".to_owned(),
        |path| std::fs::read_to_string(path).expect("read config.json"),
    )
}

#[allow(
    unused_macros,
    reason = "unused until the first plugin exists under plugins/"
)]
macro_rules! plugin_test {
    ($name:ident, $dir:literal, $path:expr) => {
        #[tokio::test]
        async fn $name() {
            formats_builtin_samples($dir, $path).await;
        }
    };
}
shipper_test_artifacts::foreach_plugin!(plugin_test);

/// The SDK's JSON escaping (SWAR, or 16-byte SIMD steps in wasm builds with `simd128`) run
/// in the real guest: a character that needs escaping at every position of strings of every
/// length up to 48 gives exactly what serde_json writes.
#[tokio::test]
async fn splunk_hec_escapes_at_every_position_like_serde_json() {
    use crate::support::{group, log};
    use shipper_runtime::{HecBody, Payload};

    let mut values = Vec::new();
    for len in 0..48usize {
        for pos in 0..len.max(1) {
            for special in ["\"", "\\", "\n", "\u{1}", "\u{1f}", "é", "😀", " "] {
                let mut v = "a".repeat(pos);
                if len > 0 {
                    v.push_str(special);
                    v.push_str(&"b".repeat(len - pos - 1));
                }
                values.push(v);
            }
        }
    }
    let plugin = load(shipper_test_artifacts::PLUGIN_SPLUNK_HEC);
    let mut instance = plugin.instantiate("{}").await.expect("instantiates");
    for chunk in values.chunks(500) {
        let logs = chunk.iter().map(|v| log(1, &[("v", v)])).collect();
        let results = process(&mut instance, &group(logs)).await.expect("formats");
        for (value, result) in chunk.iter().zip(results) {
            let emits = result.expect("no record error");
            let Payload::Hec(event) = &emits[0].payload else {
                panic!("not an HEC event")
            };
            let HecBody::Json(body) = &event.body else {
                panic!("not a JSON body")
            };
            let want = format!(
                r#"{{"__topic__":"test","__source__":"127.0.0.1","v":{}}}"#,
                serde_json::to_string(value).expect("serialises")
            );
            assert_eq!(body, &want, "value {value:?}");
        }
    }
}
