//! Every real plugin (plugins/*) loads under the default limits, initialises with an empty
//! config and formats the built-in samples through the production runtime, with exactly one
//! result per log. Exact output is checked by the golden tests (tests/e2e/plugin_golden.rs).

use shipper_runtime::samples;

use crate::support::{load, process};

#[allow(
    dead_code,
    reason = "unused until the first plugin exists under plugins/"
)]
async fn formats_builtin_samples(dir: &str, path: &str) {
    let plugin = load(path);
    let mut instance = plugin
        .instantiate("{}")
        .await
        .unwrap_or_else(|e| panic!("plugin {dir} must accept an empty config: {e}"));
    for group in samples::builtin_groups() {
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
macro_rules! plugin_test {
    ($name:ident, $dir:literal, $path:expr) => {
        #[tokio::test]
        async fn $name() {
            formats_builtin_samples($dir, $path).await;
        }
    };
}
shipper_test_artifacts::foreach_plugin!(plugin_test);
