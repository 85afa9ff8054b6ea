//! Poison logs and rejected events go to the dead-letter file, their neighbours are delivered
//! (docs/plugins.md §5, §5.7). The formatter is the `poison_json` test guest: the json
//! plugin's output (plus a `formatter` field), a trap on a log with a `poison` content, a
//! record error for a log with a `reject` content. The HEC receiver refuses (400, code 6)
//! any event containing a marker. Each of those logs gets one dead-letter entry with the
//! stage, the reason, the plugin's hash, shard, cursor, index and the log itself; every
//! other log arrives exactly once; the checkpoints reach the end.

use std::path::Path;

use serde_json::json;
use sha2::Digest as _;
use shipper_test_artifacts as artifacts;

use crate::harness::dataset::{Dataset, Tally, dead_letters_by_seq};
use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{LOGSTORE, PROJECT, SlsEnv, shipper_env, wait_for_events};

const GROUP: &str = "e2e-dead-letter";
const LOGS: u64 = 10_000;
const HEC_MARKER: &str = "hec-refuses-this";

#[test]
fn poison_and_rejected_logs_are_dead_lettered_and_their_neighbours_delivered() {
    let env = SlsEnv::start("dead-letter", 4);
    let mut ds = Dataset::new(env.shards(), 50);
    // Two poison logs (in different shards, mid-group), a record error, an HEC rejection.
    let poison = [1_234, 7_777];
    let reject = 4_321;
    let refused = 9_001;
    for seq in poison {
        ds.mark(seq, "poison", "yes");
    }
    ds.mark(reject, "reject", "malformed record");
    ds.mark(refused, "note", HEC_MARKER);
    env.load(&mut ds, LOGS);
    let hec = env.hec_receiver();
    hec.set_bad_event_marker(Some(HEC_MARKER));
    let dead_letter = env.dir().join("dead-letter.jsonl");
    let config = RunConfig::new(
        &env.endpoint(),
        PROJECT,
        LOGSTORE,
        GROUP,
        Path::new(artifacts::GUEST_POISON_JSON),
        &dead_letter,
    )
    .hec_sink(&hec.url())
    .set("plugin.config.sourcetype", "sls:e2e")
    .set("plugin.config.index", "main");
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());

    let failed = [poison[0], poison[1], reject, refused];
    let delivered_n = LOGS - failed.len() as u64;
    wait_for_events(&mut shipper, &hec, delivered_n);
    env.wait_checkpoints_at_end(GROUP);
    let metrics = shipper.scrape().expect("metrics");
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");

    // Delivered: everything else, exactly once, formatted by the guest.
    let events = hec.events();
    let fields = json!({"formatter": "poison_json"});
    let mut seqs = Vec::new();
    for e in &events {
        let seq = ds
            .check_hec(
                &e.text,
                &e.envelope,
                &[("sourcetype", "sls:e2e"), ("index", "main")],
                Some(&fields),
            )
            .unwrap_or_else(|why| panic!("{why}"));
        assert!(
            !failed.contains(&seq),
            "seq {seq} should not have been delivered"
        );
        seqs.push(seq);
    }
    let mut all = seqs.clone();
    all.extend(failed);
    Tally::new(ds.len(), all).assert_exactly_once(&ds, "delivered + dead-lettered");

    // Dead letters: one entry per failed log, with everything needed to replay it.
    let (text, entries) = dead_letters_by_seq(&dead_letter);
    assert_eq!(
        text.lines().count(),
        failed.len(),
        "one entry per failed log:\n{text}"
    );
    assert_eq!(entries.keys().copied().collect::<Vec<_>>(), {
        let mut f = failed.to_vec();
        f.sort_unstable();
        f
    });
    let hash = hex::encode(sha2::Sha256::digest(artifacts::read(
        artifacts::GUEST_POISON_JSON,
    )));
    for (&seq, e) in &entries {
        let p = ds.placement(seq);
        let cursor = e["cursor"].as_str().expect("cursor");
        assert_eq!(
            (
                &e["project"],
                &e["logstore"],
                &e["shard"],
                env.position(p.shard, cursor),
                &e["log_index"],
                &e["plugin"],
            ),
            (
                &json!(PROJECT),
                &json!(LOGSTORE),
                &json!(p.shard),
                p.group,
                &json!(p.log),
                &json!(hash),
            ),
            "seq {seq}: where it came from: {e}"
        );
        assert_eq!(e["log"], ds.flattened(seq), "seq {seq}: the original log");
        let reason = e["reason"].as_str().expect("reason");
        match seq {
            s if poison.contains(&s) => {
                assert_eq!(e["stage"], "plugin_trap", "{e}");
                assert!(
                    reason.contains(&format!("poison log seq={seq}")) && reason.contains(&hash),
                    "the trap message and the plugin hash: {reason}"
                );
            }
            s if s == reject => {
                assert_eq!(e["stage"], "plugin", "{e}");
                assert!(
                    reason.contains("log seq=4321 rejected: malformed record"),
                    "the plugin's record error: {reason}"
                );
            }
            _ => {
                assert_eq!(e["stage"], "sink", "{e}");
                assert!(
                    reason.contains("Invalid data format"),
                    "HEC's reason: {reason}"
                );
            }
        }
    }
    assert_eq!(
        metrics.sum("shipper_dead_lettered_total"),
        failed.len() as f64
    );
    let traps = shipper.logs_with("plugin trapped on one log");
    assert_eq!(
        traps.len(),
        poison.len(),
        "one WARN per poison log: {traps:?}"
    );
}
