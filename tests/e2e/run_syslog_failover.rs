//! `shipper run` into two real rsyslog instances over TLS in failover mode
//! (`addresses = [primary, secondary]`): the primary is killed (SIGKILL) mid-run, the sink
//! moves to the secondary and resends what it had written but not seen confirmed; the
//! primary comes back on the same port and traffic returns to it. 15k logs, paced at
//! 1,000 events/s by the sink's rate cap so the run outlasts the outage: nothing is lost.

use std::collections::BTreeSet;
use std::time::Duration;

use shipper_test_artifacts as artifacts;
use shipper_test_support::certs::TestPki;
use shipper_test_support::eventually::eventually;
use shipper_test_support::rsyslog::{Rsyslog, RsyslogOptions};

use crate::harness::dataset::{Tally, kv_seqs};
use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{SlsEnv, shipper_env};

const GROUP: &str = "e2e-syslog-failover";
const LOGS: u64 = 15_000;

#[test]
fn tls_failover_to_the_secondary_and_back_to_the_restarted_primary_loses_nothing() {
    let (env, ds) = SlsEnv::start_loaded("syslog-failover", 4, LOGS);
    let pki = TestPki::generate();
    let start = |fixed| {
        Rsyslog::start(RsyslogOptions {
            pki: Some(&pki),
            fixed_tls_port: fixed,
            ..Default::default()
        })
    };
    let mut primary = start(true);
    let secondary = start(false);
    // The server certificate names localhost; both share the test CA.
    let addresses: Vec<toml::Value> = [&primary, &secondary]
        .iter()
        .map(|r| format!("localhost:{}", r.port("tls")).into())
        .collect();
    let config = env
        .run_config(GROUP, artifacts::PLUGIN_SYSLOG_KV)
        .syslog_sink("", "tls")
        .remove("sink.address")
        .set("sink.addresses", toml::Value::Array(addresses))
        .set("sink.mode", "failover")
        .set("sink.tls.ca_file", pki.ca().to_str().expect("UTF-8 path"))
        .set("sink.max_events_per_sec", 1_000);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());

    let before = primary.wait_for("the primary to receive", |m| m.len() >= 2_000);
    assert!(
        secondary.messages().is_empty(),
        "nothing goes to the secondary while the primary works"
    );
    primary.kill();
    secondary.wait_for("the secondary to take over", |m| !m.is_empty());
    eprintln!(
        "run_syslog_failover: primary killed after {} messages; the secondary took over",
        before.len()
    );
    std::thread::sleep(Duration::from_secs(3));
    shipper.assert_running();
    // Back on the same port: the writer tries the primary again and moves back to it.
    let first_life = primary.messages();
    primary.restart();
    let at_restart = secondary.messages().len();
    primary.wait_for("traffic back on the primary", |m| {
        m.len() > first_life.len()
    });
    env.wait_checkpoints_at_end(GROUP);
    eventually("every log written by rsyslog", || {
        shipper.assert_running();
        let got: BTreeSet<u64> = kv_seqs(&primary.messages())
            .into_iter()
            .chain(kv_seqs(&secondary.messages()))
            .collect();
        if got.len() as u64 >= LOGS {
            Ok(())
        } else {
            Err(format!("{} of {LOGS}", got.len()))
        }
    });
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");

    let on_primary = kv_seqs(&primary.messages());
    let on_secondary = kv_seqs(&secondary.messages());
    let tally = Tally::new(ds.len(), on_primary.iter().chain(&on_secondary).copied());
    let extra = tally.assert_at_least_once(&ds, "failover over TLS");
    let after_return = secondary.messages().len() - at_restart;
    assert!(
        on_primary.len() > first_life.len(),
        "the primary receives again after it recovers"
    );
    assert!(
        shipper.log_lines().iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("traffic moved back"))),
        "the move back is logged"
    );
    env.assert_no_dead_letters(None);
    eprintln!(
        "run_syslog_failover: primary {} (first life {}), secondary {} ({} after the primary's restart), {extra} duplicates",
        on_primary.len(),
        first_life.len(),
        on_secondary.len(),
        after_return
    );
}
