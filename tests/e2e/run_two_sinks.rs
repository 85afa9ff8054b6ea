//! `shipper run` into two SIEMs at once (`[[sinks]]`), as during a migration: Splunk HEC
//! with the splunk-hec plugin and a real rsyslog with the syslog-kv plugin, each sink with
//! its own plugin. Both receive every log. Then rsyslog is down for 20 s while more logs
//! arrive: the syslog sink holds the shards (they stop pulling), the checkpoints do not
//! move, `/metrics` and one WARN say which sink holds them, and HEC gets no more than the
//! few batches the shards had in hand. When rsyslog is back, both catch up and the
//! checkpoints reach the end: nothing lost on either side.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::rsyslog::{Rsyslog, RsyslogOptions};

use crate::harness::dataset::{Tally, hec_seqs, kv_seqs};
use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{SlsEnv, shipper_env};

const GROUP: &str = "e2e-two-sinks";
const BEFORE: u64 = 4_000;
const DURING: u64 = 16_000;
const DOWN: Duration = Duration::from_secs(20);

#[test]
fn hec_and_rsyslog_both_get_every_log_and_a_down_rsyslog_holds_the_checkpoints() {
    let (env, mut ds) = SlsEnv::start_loaded("two-sinks", 4, BEFORE);
    let hec = env.hec_receiver();
    let mut rsyslog = Rsyslog::start(RsyslogOptions {
        fixed_tcp_port: true,
        ..Default::default()
    });
    // 1,000 logs a pull and small syslog writes, so what a shard holds when rsyslog is
    // down (the pull in hand, eight writes in flight) is small next to what waits in SLS.
    let base = env
        .run_config(GROUP, artifacts::PLUGIN_SPLUNK_HEC)
        .set("source.fetch_count", 10);
    let splunk = base.clone().hec_sink(&hec.url()).sink_table("splunk");
    let mut qradar = base
        .clone()
        .syslog_sink(&format!("127.0.0.1:{}", rsyslog.port("tcp")), "tcp")
        .set("sink.batch_max_bytes", 16 * 1024)
        .sink_table("qradar");
    let mut kv = toml::Table::new();
    kv.insert("path".into(), artifacts::PLUGIN_SYSLOG_KV.into());
    kv.insert("watch".into(), false.into());
    qradar.insert("plugin".into(), kv.into());
    let config = base.sinks(vec![splunk, qradar]);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());

    let ends = env.wait_checkpoints_at_end(GROUP);
    rsyslog.wait_for("the first logs in rsyslog", |m| m.len() as u64 >= BEFORE);
    assert!(hec.event_count() as u64 >= BEFORE);

    // rsyslog goes away; more logs arrive.
    rsyslog.stop();
    env.load(&mut ds, DURING);
    let down_at = Instant::now();
    let mut hec_during = 0;
    while down_at.elapsed() < DOWN {
        shipper.assert_running();
        let cps: Vec<Option<u32>> = env.checkpoints(GROUP).into_values().collect();
        assert_eq!(
            cps,
            ends.iter().copied().map(Some).collect::<Vec<_>>(),
            "a checkpoint moved while rsyslog was down ({:?} in)",
            down_at.elapsed()
        );
        hec_during = hec.event_count() as u64 - BEFORE;
        std::thread::sleep(Duration::from_millis(500));
    }
    let m = shipper.scrape().expect("/metrics");
    assert!(
        m.sum_where("shipper_sink_blocked_shards", "sink=\"qradar\"") >= 1.0,
        "the metrics name the sink that holds the shards:\n{}",
        m.0
    );
    assert_eq!(
        m.sum_where("shipper_sink_blocked_shards", "sink=\"splunk\""),
        0.0
    );
    let warns = shipper.logs_with("sink settles nothing");
    assert!(
        warns.len() == 1 && warns[0]["sink"] == "qradar",
        "one WARN naming the sink: {warns:?}"
    );
    // Each shard holds at most its in-flight sends and the pull in hand (1,000 logs):
    // far from the 16,000 that arrived.
    assert!(
        hec_during <= 4 * 1_500,
        "{hec_during} of {DURING} new logs reached HEC while rsyslog was down: the shards kept pulling"
    );

    rsyslog.restart();
    env.wait_checkpoints_at_end(GROUP);
    eventually("every log in both SIEMs", || {
        shipper.assert_running();
        let syslog: BTreeSet<u64> = kv_seqs(&rsyslog.messages()).into_iter().collect();
        let hec_got: BTreeSet<u64> = hec_seqs(&hec.events()).into_iter().collect();
        if syslog.len() as u64 >= ds.len() && hec_got.len() as u64 >= ds.len() {
            Ok(())
        } else {
            Err(format!(
                "syslog {}, HEC {} of {}",
                syslog.len(),
                hec_got.len(),
                ds.len()
            ))
        }
    });
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");
    Tally::new(ds.len(), hec_seqs(&hec.events())).assert_exactly_once(&ds, "HEC");
    let extra = Tally::new(ds.len(), kv_seqs(&rsyslog.messages()))
        .assert_at_least_once(&ds, "rsyslog (its restart may resend the window)");
    env.assert_no_dead_letters(Some("splunk"));
    env.assert_no_dead_letters(Some("qradar"));
    eprintln!(
        "run_two_sinks: {hec_during} of {DURING} logs reached HEC while rsyslog was down; {extra} rsyslog duplicates after its restart"
    );
}
