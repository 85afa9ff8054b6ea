//! Event IDs (`event_id = true`) make at-least-once delivery de-duplicable: `shipper run`
//! is killed with SIGKILL three times under load (each time while sends are in flight),
//! restarted, and finally runs to the end. The receiver then holds duplicates (the batches
//! each killed run had in flight past its last checkpoint), and de-duplicating its events
//! by the `shipper_event_id` indexed field leaves exactly the written logs: each ID is one
//! log, each log has one ID, none is missing.

use std::collections::BTreeMap;
use std::time::Duration;

use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::Fault;

use crate::harness::dataset::{Tally, hec_seq, hec_seqs};
use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{SlsEnv, shipper_env, wait_for_events};

const GROUP: &str = "e2e-event-ids";
const LOGS: u64 = 20_000;
const KILLS: usize = 3;
const FIELD: &str = "shipper_event_id";

#[test]
fn three_kill_9s_then_dedup_by_event_id_gives_exactly_the_written_logs() {
    let (env, ds) = SlsEnv::start_loaded("event-ids", 4, LOGS);
    let hec = env.hec_receiver();
    let config = env
        .run_config(GROUP, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&hec.url())
        .set("sink.event_id", true)
        // 10 groups (1,000 logs) per pull, and a receiver slow enough that every kill finds
        // sends in flight.
        .set("source.fetch_count", 10)
        .set("sink.max_events_per_sec", 4_000);
    for run in 0..KILLS {
        hec.push_fault(Fault::Delay(Duration::from_millis(300)), 12);
        let before = hec.event_count();
        let mut shipper = ShipperProcess::start(
            env.dir(),
            &format!("run{run}"),
            &config,
            &[],
            &shipper_env(),
        );
        eventually("this run to deliver", || {
            shipper.assert_running();
            let n = hec.event_count();
            if n >= before + 2_000 {
                Ok(())
            } else {
                Err(format!("{} new events", n - before))
            }
        });
        assert!(!shipper.kill().success());
    }
    let mut last = ShipperProcess::start(env.dir(), "last", &config, &[], &shipper_env());
    wait_for_events(&mut last, &hec, LOGS);
    env.wait_checkpoints_at_end(GROUP);
    last.signal("TERM");
    assert!(last.wait_exit().success(), "the last run exits cleanly");

    let events = hec.events();
    let tally = Tally::new(ds.len(), hec_seqs(&events));
    let extra = tally.assert_at_least_once(&ds, "after three kill -9s");
    assert!(
        extra > 0,
        "the kills left no duplicate: nothing to de-duplicate"
    );
    // De-duplicate by ID, as `| dedup shipper_event_id` does in Splunk.
    let mut by_id: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        let seq = hec_seq(&e.envelope).expect("seq");
        let id = e.envelope["fields"][FIELD]
            .as_str()
            .unwrap_or_else(|| panic!("an event without {FIELD}: {}", e.text))
            .to_owned();
        assert_eq!(id.len(), 32, "{id}");
        if let Some(other) = by_id.insert(id.clone(), seq) {
            assert_eq!(other, seq, "ID {id} names two logs: {other} and {seq}");
        }
    }
    let deduped = Tally::new(ds.len(), by_id.values().copied());
    deduped.assert_exactly_once(&ds, "de-duplicated by event ID");
    assert_eq!(by_id.len() as u64, LOGS, "one ID per log");
    eprintln!(
        "run_event_ids: {} events received for {LOGS} logs after {KILLS} kill -9s; {} IDs after de-duplication",
        events.len(),
        by_id.len()
    );
}
