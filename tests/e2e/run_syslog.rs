//! `shipper run` end to end into a real rsyslog, over TCP and over TLS (rsyslog's
//! GnuTLS listener, server authentication against the guard's CA), with the syslog-kv
//! plugin. Every log arrives exactly once and every received line is, byte for byte, the
//! RFC 5424 line the seed's format makes of its log (`<14>1 TIME HOST TAG - - - ||k=v…`);
//! the checkpoints reach the end of every shard.

use std::path::Path;

use serde_json::Value;
use shipper_test_artifacts as artifacts;
use shipper_test_support::rsyslog::{Rsyslog, RsyslogOptions};

use crate::harness::dataset::{Dataset, Tally};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env};

const GROUP: &str = "e2e-syslog";
/// Smaller than the HEC run: rsyslog writes two files per message.
const LOGS: u64 = 20_000;
const HOSTNAME: &str = "shipper-e2e";
const TAG: &str = "sls";

fn run(test: &str, transport: &str) {
    let env = SlsEnv::start(test, 4);
    let mut ds = Dataset::new(env.shards(), 100);
    env.load(&mut ds, LOGS);
    let rsyslog = Rsyslog::start(RsyslogOptions::default());
    let (listener, host) = match transport {
        "tcp" => ("tcp", "127.0.0.1"),
        // The server certificate names localhost; the sink verifies it against the CA.
        _ => ("tls", "localhost"),
    };
    let mut config = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        Path::new(artifacts::PLUGIN_SYSLOG_KV),
        &env.dir().join("dead-letter.jsonl"),
    )
    .syslog_sink(&format!("{host}:{}", rsyslog.port(listener)), transport)
    .set("plugin.config.hostname", HOSTNAME)
    .set("plugin.config.tag", TAG);
    if transport == "tls" {
        let ca = rsyslog.pki_dir().join("ca.pem");
        config = config.set("sink.tls.ca_file", ca.to_str().expect("UTF-8 path"));
    }
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());

    // Checkpoints follow the sink's acknowledgement (written and flushed), so once they are
    // at the end every message is on its way; then rsyslog must have written all of them.
    env.wait_checkpoints_at_end(GROUP);
    shipper.assert_running();
    rsyslog.wait_for(&format!("{LOGS} messages in rsyslog"), |m| {
        m.len() as u64 >= LOGS
    });
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");
    let messages = rsyslog.messages();

    let mut bad = Vec::new();
    let mut seqs = Vec::with_capacity(messages.len());
    for m in &messages {
        match check_message(&ds, m, listener) {
            Ok(seq) => seqs.push(seq),
            Err(why) => bad.push(why),
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} messages are not the seed's format, e.g.:\n{}",
        bad.len(),
        messages.len(),
        bad[..bad.len().min(3)].join("\n")
    );
    Tally::new(ds.len(), seqs).assert_exactly_once(&ds, &format!("rsyslog over {transport}"));
    let dead = std::fs::read_to_string(env.dir().join("dead-letter.jsonl")).unwrap_or_default();
    assert!(dead.is_empty(), "dead letters on a clean run:\n{dead}");
}

/// Checks one rsyslog record: received on `listener`, the raw line equal to the RFC 5424
/// line of its log, and rsyslog's own parse of it agreeing. Returns the seq.
fn check_message(ds: &Dataset, m: &Value, listener: &str) -> Result<u64, String> {
    let msg = m["msg"].as_str().ok_or_else(|| format!("no msg: {m}"))?;
    let seq: u64 = msg
        .split("||")
        .find_map(|kv| kv.strip_prefix("seq="))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no seq in {msg:?}"))?;
    if seq >= ds.len() {
        return Err(format!("seq {seq} was never loaded"));
    }
    let expected_msg = ds.kv_message(seq);
    let expected_raw = format!(
        "<14>1 {} {HOSTNAME} {TAG} - - - {expected_msg}",
        ds.syslog_time(seq)
    );
    let problems = [
        (m["input"] != listener).then(|| format!("input {} (want {listener})", m["input"])),
        (m["rawmsg"] != expected_raw.as_str()).then(|| {
            format!(
                "rawmsg\n    got:  {}\n    want: {expected_raw:?}",
                m["rawmsg"]
            )
        }),
        (msg != expected_msg).then(|| "msg differs from the expected MSG".to_owned()),
        (m["hostname"] != HOSTNAME || m["app_name"] != TAG || m["pri"] != "14").then(|| {
            format!(
                "header parsed as {} {} {}",
                m["pri"], m["hostname"], m["app_name"]
            )
        }),
    ];
    let problems: Vec<String> = problems.into_iter().flatten().collect();
    if problems.is_empty() {
        Ok(seq)
    } else {
        Err(format!("seq {seq}: {}", problems.join("; ")))
    }
}

#[test]
fn every_log_reaches_rsyslog_over_tcp() {
    run("syslog-tcp", "tcp");
}

#[test]
fn every_log_reaches_rsyslog_over_tls() {
    run("syslog-tls", "tls");
}
