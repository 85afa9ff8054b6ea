//! Steady load for tests that change something while logs keep arriving (a hot swap, a
//! reload): a thread that puts logs in rounds, staying at most a bounded backlog ahead of
//! what the receiver has; waiting for more deliveries; and the check that each shard
//! switched from the old output to the new one once, in cursor order, between groups.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::collections::BTreeMap;

use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::HecReceiver;

use super::dataset::Dataset;
use super::shipper::ShipperProcess;
use super::sls::SlsEnv;

/// Puts logs continuously on its own thread until dropped or [`Producer::finish`]ed.
pub struct Producer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Dataset>>,
}

impl Producer {
    /// Puts `chunk` logs a round while `delivered()` is within `backlog` logs of what was
    /// put (pacing only, not synchronisation).
    pub fn start(
        env: &SlsEnv,
        mut ds: Dataset,
        chunk: u64,
        backlog: u64,
        delivered: impl Fn() -> u64 + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let loader = env.loader();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                loader.load(&mut ds, chunk);
                while !flag.load(Ordering::SeqCst) && delivered() + backlog < ds.len() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            ds
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops after the current round; returns everything that was loaded.
    pub fn finish(mut self) -> Dataset {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .expect("running")
            .join()
            .expect("producer thread")
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Replaces a file atomically (write aside, rename), as a deployment would.
pub fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write the new file aside");
    std::fs::rename(&tmp, path).expect("rename the new file into place");
}

/// Waits until the receiver has `more` events beyond `from`, shipper running throughout.
pub fn wait_for_more(hec: &HecReceiver, shipper: &mut ShipperProcess, from: usize, more: usize) {
    eventually(&format!("{more} more events after {from}"), || {
        shipper.assert_running();
        let n = hec.event_count();
        if n >= from + more {
            Ok(())
        } else {
            Err(format!("{n} events"))
        }
    });
}

/// Checks, per shard, that the delivered `(seq, new)` pairs are in the old output, then the
/// new one, never back (seq order is cursor order within a shard), and that the new output
/// starts at the first log of a LogGroup: a batch is whole groups, formatted by one
/// plugin generation.
pub fn assert_one_switch_per_shard(ds: &Dataset, per_shard: BTreeMap<u32, Vec<(u64, bool)>>) {
    for (shard, mut events) in per_shard {
        events.sort_unstable();
        let first_new = events
            .iter()
            .position(|(_, new)| *new)
            .unwrap_or_else(|| panic!("shard {shard}: nothing in the new output"));
        assert!(first_new > 0, "shard {shard}: nothing before the switch");
        if let Some((seq, _)) = events[first_new..].iter().find(|(_, new)| !*new) {
            panic!(
                "shard {shard}: seq {seq} is in the old output after seq {} was in the new one",
                events[first_new].0
            );
        }
        let at = ds.placement(events[first_new].0);
        assert_eq!(
            at.log, 0,
            "shard {shard}: the new output starts at seq {}, log {} of group {}, not between groups",
            events[first_new].0, at.log, at.group
        );
    }
}
