//! Secrets never leave the process in the clear (docs/threat-model.md): with every log
//! line on (`--log-level trace`, dependencies included), the SLS AccessKey secret, the STS
//! token, the HEC token and the proxy password appear in no log line, not in
//! `/proc/PID/cmdline` (and `shipper run` has no flag that would put one there), not in
//! `/metrics`, not in the dead-letter file. The run goes
//! through the paths that handle each secret: signing every SLS request (with the token),
//! a proxy with a password in its URL (the emulator answers absolute-form requests as the
//! proxy would forward them), HEC requests with the token, and HEC refusals that write
//! dead letters.

use shipper_test_artifacts as artifacts;
use shipper_test_support::hec_receiver::{Fault, TEST_TOKEN};

use crate::harness::dataset::Dataset;
use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{AK_ID, AK_SECRET, SlsEnv};

const GROUP: &str = "threat-secrets";
const STS_TOKEN: &str = "e2e-sts-token-8c1f0d";
const PROXY_PASSWORD: &str = "e2e-proxy-password-5b7e2a";

#[test]
fn secrets_stay_out_of_logs_cmdline_metrics_and_dead_letters() {
    let env = SlsEnv::start("threat-secrets", 1);
    let mut ds = Dataset::new(env.shards(), 2);
    env.load(&mut ds, 2);
    let hec = env.hec_receiver();
    // Data errors without an event number: the sink bisects to single events and
    // dead-letters them with the HEC answer as the reason.
    hec.push_fault(
        Fault::Status {
            status: 400,
            code: Some(6),
            text: "Invalid data format",
            retry_after: None,
        },
        3,
    );
    let proxy = format!("http://shipper:{PROXY_PASSWORD}@{}", env.endpoint());
    let config = env
        .run_config(GROUP, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&hec.url())
        .set("source.proxy", proxy.as_str());
    let mut shipper = ShipperProcess::start_at_level(
        env.dir(),
        "shipper",
        &config,
        "trace",
        &[
            ("SLS_AK_ID", AK_ID),
            ("SLS_AK_KEY", AK_SECRET),
            ("SLS_STS_TOKEN", STS_TOKEN),
            ("SHIPPER_HEC_TOKEN", TEST_TOKEN),
        ],
    );
    env.wait_checkpoints_at_end(GROUP);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", shipper.pid()))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .expect("the process's command line");
    let metrics = shipper.scrape().expect("metrics while running").0;
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "{}", shipper.stderr_tail(20));
    let log = shipper.stderr();
    let dead = std::fs::read_to_string(env.dir().join("dead-letter.jsonl")).unwrap_or_default();

    // The run went where the secrets are handled.
    assert!(
        shipper.log_lines().iter().any(|l| l["level"] == "TRACE"),
        "trace lines were written"
    );
    assert!(
        !dead.is_empty() && dead.contains("Invalid data format"),
        "dead letters were written: {dead}"
    );
    assert!(
        hec.requests().len() > 3,
        "HEC requests with the token went out"
    );
    assert!(
        metrics.contains("shipper_"),
        "metrics were served: {metrics}"
    );

    // No flag could put a secret on a command line: `shipper run --help` offers none.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_shipper"))
        .args(["run", "--help"])
        .output()
        .expect("shipper run --help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(flags.contains(&"--config"), "{help}");
    for flag in &flags {
        let lower = flag.to_ascii_lowercase();
        assert!(
            ![
                "token",
                "secret",
                "password",
                "passwd",
                "access-key",
                "ak-key"
            ]
            .iter()
            .any(|s| lower.contains(s)),
            "`shipper run` has a flag that takes a secret on the command line: {flag}"
        );
    }

    for (secret, what) in [
        (AK_SECRET, "the SLS AccessKey secret"),
        (STS_TOKEN, "the STS token"),
        (TEST_TOKEN, "the HEC token"),
        (PROXY_PASSWORD, "the proxy password"),
    ] {
        for (text, place) in [
            (&log, "the log"),
            (&cmdline, "/proc/PID/cmdline"),
            (&metrics, "/metrics"),
            (&dead, "the dead-letter file"),
        ] {
            if let Some(at) = text.find(secret) {
                let from = text[..at].rfind('\n').map_or(0, |n| n + 1);
                let to = text[at..].find('\n').map_or(text.len(), |n| at + n);
                panic!("{what} is in {place}: {}", &text[from..to]);
            }
        }
    }
}
