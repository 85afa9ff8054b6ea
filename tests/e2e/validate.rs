//! `shipper validate`: a good configuration is valid (exit 0); one with one problem and one
//! with several name each problem by its full key (exit 2, every problem listed, also as
//! JSON); with `--connect`, a wrong SLS secret or an unreachable sink is exit 3.

use std::path::Path;
use std::process::{Command, Output};

use shipper_test_artifacts as artifacts;
use shipper_test_support::hec_receiver::{HecReceiver, TEST_TOKEN};

use crate::harness::shipper::{RunConfig, describe_output as text};
use crate::harness::sls::{AK_ID, AK_SECRET, LOGSTORE, PROJECT, SlsEnv};

/// Writes `config` and runs `shipper validate --config FILE ARGS` with `env` only.
fn validate(
    env: &SlsEnv,
    name: &str,
    config: &RunConfig,
    args: &[&str],
    vars: &[(&str, &str)],
) -> Output {
    let file = env.dir().join(format!("{name}.toml"));
    std::fs::write(&file, config.render()).expect("write config");
    Command::new(env!("CARGO_BIN_EXE_shipper"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", env.dir())
        .envs(vars.iter().copied())
        .args(["validate", "--config"])
        .arg(&file)
        .args(args)
        .output()
        .expect("run shipper validate")
}

fn creds(secret: &str) -> [(&str, &str); 3] {
    [
        ("SLS_AK_ID", AK_ID),
        ("SLS_AK_KEY", secret),
        ("SHIPPER_HEC_TOKEN", TEST_TOKEN),
    ]
}

#[test]
fn validate_names_every_problem_and_reaches_dependencies_with_connect() {
    let env = SlsEnv::start("validate", 1);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hec = rt.block_on(HecReceiver::start_default());
    let good = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        "validate",
        Path::new(artifacts::PLUGIN_SPLUNK_HEC),
        &env.dir().join("dl/dead-letter.jsonl"),
    )
    .hec_sink(&hec.url());

    let o = validate(&env, "good", &good, &[], &creds(AK_SECRET));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "valid",
        "{}",
        text(&o)
    );
    assert!(
        !env.dir().join("dl").exists(),
        "validate created the dead-letter directory"
    );
    let o = validate(
        &env,
        "good-connect",
        &good,
        &["--connect"],
        &creds(AK_SECRET),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // One problem.
    let one = good.clone().set("sink.batch_max_bytes", -5);
    let o = validate(&env, "one", &one, &[], &creds(AK_SECRET));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(out.lines().count(), 1, "{}", text(&o));
    assert!(
        out.contains("`sink.batch_max_bytes`: -5 is not a byte count"),
        "{}",
        text(&o)
    );

    // Several problems, each named; the plugin file and the secret file too.
    let several = good
        .clone()
        .set("source.fetch_count", 5000)
        .set("source.start", "yesterday")
        .set("metrics.listen", "nowhere");
    let o = validate(
        &env,
        "several",
        &several,
        &["--format", "json"],
        &[("SHIPPER_HEC_TOKEN", TEST_TOKEN)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON output");
    assert_eq!(doc["valid"], false);
    let keys: Vec<&str> = doc["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["key"].as_str().expect("key"))
        .collect();
    for key in [
        "source.fetch_count",
        "source.start",
        "metrics.listen",
        "source.access_key_id",
        "source.access_key_secret",
    ] {
        assert!(keys.contains(&key), "{key} not in {keys:?}\n{}", text(&o));
    }
    let missing_files = good
        .clone()
        .set(
            "plugin.path",
            env.dir().join("missing.wasm").to_str().expect("UTF-8"),
        )
        .set("source.access_key_secret_file", "/nonexistent/secret")
        .set("sink.tls.ca_file", "/nonexistent/ca.pem")
        .set("sink.endpoint", "https://127.0.0.1:9");
    let o = validate(
        &env,
        "files",
        &missing_files,
        &[],
        &[("SLS_AK_ID", AK_ID), ("SHIPPER_HEC_TOKEN", TEST_TOKEN)],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for needle in [
        // The credentials problem is reported under `source.credentials`, naming the file key.
        "`source.credentials`",
        "source.access_key_secret_file",
        "/nonexistent/secret",
        "`sink`",
        "ca.pem",
        "`plugin.path`",
        "missing.wasm",
    ] {
        assert!(out.contains(needle), "{needle} not in {}", text(&o));
    }

    // --connect: a wrong secret, then an unreachable sink: valid settings, exit 3.
    let o = validate(
        &env,
        "bad-secret",
        &good,
        &["--connect"],
        &creds("not-the-secret"),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("SignatureNotMatch"),
        "{}",
        text(&o)
    );
    let down = good.clone().set("sink.endpoint", "http://127.0.0.1:9");
    let o = validate(&env, "down", &down, &["--connect"], &creds(AK_SECRET));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = validate(&env, "down-offline", &down, &[], &creds(AK_SECRET));
    assert_eq!(
        o.status.code(),
        Some(0),
        "without --connect nothing is reached: {}",
        text(&o)
    );
}
