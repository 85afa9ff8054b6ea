//! `shipper run` end to end into Splunk HEC: 100k logs in a 4-shard emulator,
//! the real binary with the splunk-hec plugin, the in-process HEC receiver. Every log
//! arrives exactly once, formatted the way the seed script formats it, and the consumer
//! group's checkpoints reach the end of every shard.

use std::path::Path;

use shipper_test_artifacts as artifacts;

use crate::harness::dataset::{Dataset, Tally};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env, wait_for_events};

const GROUP: &str = "e2e-hec";
const LOGS: u64 = 100_000;
const SOURCETYPE: &str = "aliyun:actiontrail";
const INDEX: &str = "sls_e2e";

#[test]
fn every_log_reaches_hec_once_formatted_as_the_seed_does() {
    let env = SlsEnv::start("run-hec", 4);
    let mut ds = Dataset::new(env.shards(), 100);
    env.load(&mut ds, LOGS);
    let hec = env.hec_receiver();
    let dead_letter = env.dir().join("dead-letter.jsonl");
    let config = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        Path::new(artifacts::PLUGIN_SPLUNK_HEC),
        &dead_letter,
    )
    .hec_sink(&hec.url())
    .set("plugin.config.sourcetype", SOURCETYPE)
    .set("plugin.config.index", INDEX);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());

    wait_for_events(&mut shipper, &hec, LOGS);
    let ends = env.wait_checkpoints_at_end(GROUP);
    assert_eq!(
        ends,
        ds.groups_per_shard(),
        "every loaded group is in the shards"
    );

    // A graceful stop (Ctrl-C; the restart tests use SIGTERM); nothing can arrive after the
    // exit, so the tally below is final.
    shipper.signal("INT");
    let status = shipper.wait_exit();
    assert!(
        status.success() && shipper.stderr().contains("SIGINT received"),
        "exit after SIGINT: {status}\n{}",
        shipper.stderr_tail(40)
    );

    let events = hec.events();
    let mut bad = Vec::new();
    let seqs: Vec<u64> = events
        .iter()
        .filter_map(|e| {
            match ds.check_hec(
                &e.text,
                &e.envelope,
                &[("sourcetype", SOURCETYPE), ("index", INDEX)],
                None,
            ) {
                Ok(seq) => Some(seq),
                Err(why) => {
                    bad.push(why);
                    None
                }
            }
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} events are not what the seed would send, e.g.:\n{}",
        bad.len(),
        events.len(),
        bad[..bad.len().min(3)].join("\n")
    );
    Tally::new(ds.len(), seqs).assert_exactly_once(&ds, "HEC");
    let dead = std::fs::read_to_string(&dead_letter).unwrap_or_default();
    assert!(dead.is_empty(), "dead letters on a clean run:\n{dead}");
}
