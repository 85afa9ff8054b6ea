//! Configuration mistakes stop `shipper run` at once: a mistyped config key, a missing SLS
//! secret, a bad endpoint list and a plugin file that is not a component exit 2 (a
//! configuration error); a wrong
//! SLS secret (the emulator answers SignatureNotMatch) and a sink that refuses us exit 3 (a
//! dependency refuses us at start-up). Each stops before shipping anything, with a message
//! that names the key or file and says how to fix it.

use std::path::Path;

use shipper_test_artifacts as artifacts;
use shipper_test_support::hec_receiver::TEST_TOKEN;

use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{AK_ID, LOGSTORE, PROJECT, SlsEnv, shipper_env};

const GROUP: &str = "e2e-config";

fn config(env: &SlsEnv, plugin: &Path) -> RunConfig {
    RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        plugin,
        &env.dir().join("dead-letter.jsonl"),
    )
    // Nothing listens here: these runs must fail before sending anything.
    .hec_sink("http://127.0.0.1:9")
}

/// How a run must fail (exit codes as `shipper --help` lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fails {
    /// Exit 2, found while the settings are checked: before the "starting" line.
    InSettings,
    /// Exit 2, found while building what the settings name (the plugin file).
    AtStart,
    /// Exit 3: a dependency refuses us at start-up.
    Dependency,
}

impl Fails {
    fn code(self) -> i32 {
        match self {
            Fails::InSettings | Fails::AtStart => 2,
            Fails::Dependency => 3,
        }
    }
}

/// Runs shipper to its exit; asserts it exits with `code` and that its final `error:` line
/// contains every one of `needles`; returns that line.
fn fails_with(
    env: &SlsEnv,
    name: &str,
    config: &RunConfig,
    shipper_env: &[(&str, &str)],
    fails: Fails,
    needles: &[&str],
) -> String {
    let mut shipper = ShipperProcess::start(env.dir(), name, config, &[], shipper_env);
    let status = shipper.wait_exit();
    assert_eq!(
        status.code(),
        Some(fails.code()),
        "{name}: must fail with {fails:?}\n{}",
        shipper.stderr_tail(20)
    );
    let stderr = shipper.stderr();
    if fails == Fails::InSettings {
        assert!(
            !stderr.contains("\"message\":\"starting\""),
            "{name}: a config error must come before the \"starting\" line\n{stderr}"
        );
    }
    // The error chain is printed last, from an `error: ` line on (it may span lines).
    let error = stderr
        .find("\nerror: ")
        .map(|i| &stderr[i + 1..])
        .or_else(|| stderr.strip_prefix("error: ").map(|_| stderr.as_str()))
        .unwrap_or_else(|| panic!("{name}: no `error:` line\n{stderr}"));
    for n in needles {
        assert!(error.contains(n), "{name}: {n:?} not in\n{error}");
    }
    error.to_owned()
}

#[test]
fn a_mistyped_config_key_is_named_with_the_valid_ones() {
    let env = SlsEnv::start("config-key", 1);
    let c = config(&env, Path::new(artifacts::PLUGIN_SPLUNK_HEC)).set("source.endpont", "x");
    let config_file = env.dir().join("typo.toml");
    fails_with(
        &env,
        "typo",
        &c,
        &shipper_env(),
        Fails::InSettings,
        &[
            config_file.to_str().expect("UTF-8"),
            "unknown field `endpont`",
            "expected one of",
            "`endpoint`",
        ],
    );
}

#[test]
fn a_missing_sls_secret_says_where_to_put_it() {
    let env = SlsEnv::start("config-no-secret", 1);
    let c = config(&env, Path::new(artifacts::PLUGIN_SPLUNK_HEC));
    fails_with(
        &env,
        "no-secret",
        &c,
        &[("SLS_AK_ID", AK_ID), ("SHIPPER_HEC_TOKEN", TEST_TOKEN)],
        Fails::InSettings,
        &["source.access_key_secret", "missing", "SLS_AK_KEY"],
    );
}

#[test]
fn a_wrong_sls_secret_fails_the_join_with_the_fix() {
    let env = SlsEnv::start("config-bad-secret", 1);
    let c = config(&env, Path::new(artifacts::PLUGIN_SPLUNK_HEC));
    let line = fails_with(
        &env,
        "bad-secret",
        &c,
        &[
            ("SLS_AK_ID", AK_ID),
            ("SLS_AK_KEY", "not-the-secret"),
            ("SHIPPER_HEC_TOKEN", TEST_TOKEN),
        ],
        Fails::Dependency,
        &[
            "cannot join consumer group",
            GROUP,
            "SignatureNotMatch",
            "check the AccessKey secret (SLS_AK_KEY)",
        ],
    );
    assert!(
        !line.contains("not-the-secret"),
        "the secret leaked: {line}"
    );
}

#[test]
fn a_plugin_that_is_not_a_component_is_refused_with_the_reason() {
    let env = SlsEnv::start("config-not-component", 1);
    for (name, reason, path) in [
        // A core wasm module (what `cargo build --target wasm32-unknown-unknown` makes).
        (
            "core-module",
            "a core WebAssembly module, not a component",
            Path::new(artifacts::GUEST_CORE_MODULE).to_owned(),
        ),
        // Not wasm at all.
        ("text", "not WebAssembly", {
            let p = env.dir().join("plugin.wasm");
            std::fs::write(&p, "this is not WebAssembly\n").expect("write");
            p
        }),
    ] {
        let line = fails_with(
            &env,
            name,
            &config(&env, &path),
            &shipper_env(),
            Fails::AtStart,
            &[
                "plugin file",
                path.to_str().expect("UTF-8"),
                reason,
                // The fix: how to build a component.
                "--target wasm32-wasip2",
            ],
        );
        assert_eq!(line.lines().count(), 1, "one line: {line}");
    }
}

/// A wrong HEC token and a URL that is not a Splunk HEC endpoint are configuration mistakes
/// (retrying cannot fix them, docs/rendering.md §3.12 "Start-up check"): shipper stops at
/// start-up with the reason and the fix, instead of retrying forever with logs piling up.
#[test]
fn a_wrong_hec_token_or_a_non_hec_url_stops_at_start_up() {
    let env = SlsEnv::start("config-bad-hec", 1);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hec = rt.block_on(shipper_test_support::hec_receiver::HecReceiver::start_default());
    let plugin = Path::new(artifacts::PLUGIN_SPLUNK_HEC);
    let creds = |token| {
        [
            ("SLS_AK_ID", AK_ID),
            ("SLS_AK_KEY", crate::harness::sls::AK_SECRET),
            ("SHIPPER_HEC_TOKEN", token),
        ]
    };
    let wrong = "99999999-0000-0000-0000-000000000000";
    let line = fails_with(
        &env,
        "bad-token",
        &config(&env, plugin).hec_sink(&hec.url()),
        &creds(wrong),
        Fails::Dependency,
        &[
            "sink start-up check failed",
            "refused the token",
            "SHIPPER_HEC_TOKEN",
        ],
    );
    assert!(!line.contains(wrong), "the token leaked: {line}");
    assert_eq!(hec.event_count(), 0, "nothing shipped with a bad token");

    // The SLS emulator speaks HTTP but is not HEC.
    fails_with(
        &env,
        "not-hec",
        &config(&env, plugin).hec_sink(&format!("http://{}", env.endpoint())),
        &creds(TEST_TOKEN),
        Fails::Dependency,
        &[
            "sink start-up check failed",
            "without an HEC JSON body: this is not an HEC endpoint; check `endpoint`",
        ],
    );
}

/// Bad credentials and proxy input: a malformed credentials file (exit 2), an unreachable
/// metadata service (exit 3) and proxy URLs without a scheme (exit 2, before "starting")
/// each name the key and the fix.
#[test]
fn bad_credentials_and_proxy_input_name_the_key_and_the_fix() {
    let env = SlsEnv::start("config-credentials", 1);
    let plugin = Path::new(artifacts::PLUGIN_SPLUNK_HEC);
    let hec_only = [("SHIPPER_HEC_TOKEN", TEST_TOKEN)];
    let file = env.dir().join("credentials.json");
    std::fs::write(&file, "{\"AccessKeyId\": \"STS.x\", \"AccessKeySecret\": ").expect("write");
    fails_with(
        &env,
        "malformed-file",
        &config(&env, plugin)
            .set("source.credentials.type", "file")
            .set("source.credentials.path", file.to_str().expect("UTF-8")),
        &hec_only,
        Fails::AtStart,
        &[
            file.to_str().expect("UTF-8"),
            "source.credentials.path",
            "AccessKeyId",
        ],
    );
    let closed = shipper_test_support::ports::reserve_port();
    let metadata = format!("http://127.0.0.1:{}", closed.port());
    fails_with(
        &env,
        "no-metadata",
        &config(&env, plugin)
            .set("source.credentials.type", "ecs_ram_role")
            .set("source.credentials.metadata_endpoint", metadata.as_str()),
        &hec_only,
        Fails::Dependency,
        &[&metadata, "source.credentials.metadata_endpoint"],
    );
    fails_with(
        &env,
        "proxy-no-scheme",
        &config(&env, plugin)
            .set("source.proxy", "proxy.example:3128")
            .set("sink.proxy", "proxy.example:3128"),
        &shipper_env(),
        Fails::InSettings,
        &["source.proxy", "sink.proxy", "http://proxy.example:3128"],
    );
}

/// A bad HEC endpoint list (empty, a URL that is not one, mixed schemes) and a bad syslog
/// address list stop `shipper run` before it starts, each naming the element.
#[test]
fn a_bad_endpoint_list_is_refused_naming_the_element() {
    let env = SlsEnv::start("config-endpoints", 1);
    let plugin = Path::new(artifacts::PLUGIN_SPLUNK_HEC);
    let list = |urls: &[&str]| toml::Value::Array(urls.iter().map(|&u| u.into()).collect());
    for (name, urls, needles) in [
        ("empty", list(&[]), &["`sink.endpoints`", "is empty"][..]),
        (
            "bad-url",
            list(&["https://idx1:8088", "https://idx2:8088", "idx3 port 8088"]),
            &["`sink.endpoints[2]`", "is not a URL"][..],
        ),
        (
            "mixed",
            list(&["https://idx1:8088", "http://idx2:8088"]),
            &["`sink.endpoints[1]`", "one scheme"][..],
        ),
    ] {
        let c = config(&env, plugin)
            .remove("sink.endpoint")
            .set("sink.endpoints", urls);
        fails_with(&env, name, &c, &shipper_env(), Fails::InSettings, needles);
    }
    let c = config(&env, plugin)
        .remove("sink")
        .syslog_sink("", "tls")
        .remove("sink.address")
        .set("sink.addresses", list(&["siem-a:6514", "siem-b"]));
    fails_with(
        &env,
        "bad-address",
        &c,
        &shipper_env(),
        Fails::InSettings,
        &["`sink.addresses[1]`", "not host:port"],
    );
}
