//! The SLS side of a `shipper run` test: an in-process emulator (`shipper_emulator::Emulator`)
//! on its own tokio runtime, an SLS client (`shipper_sls::Client`, the real one) to load
//! data and read the consumer group's checkpoints, and the test's temp directory.
//!
//! Tests are plain `#[test]` functions: they block on this runtime for SLS calls and run
//! in-process receivers (`HecReceiver`) on it, while the shipper under test is a child
//! process. Positions are reported as LogGroup counts from the shard's begin cursor
//! (emulator cursors number LogGroups consecutively, docs/sls-protocol.md §7), which is also how
//! [`Placement::group`](super::dataset::Placement) counts.

use std::collections::BTreeMap;
use std::path::Path;

use shipper_emulator::{Emulator, EmulatorConfig, EmulatorHandle, Faults, LogstoreSpec};
use shipper_sls::api::logs::{CursorPosition, Route};
use shipper_sls::client::{Client, ClientConfig};
use shipper_sls::proto::LogGroup;
use shipper_sls::sign::Credentials;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::{HecReceiver, HecReceiverConfig};

use super::dataset::{Dataset, Tally, hec_seqs};
use super::shipper::{Metrics, RunConfig, ShipperProcess};

/// Project of every test logstore.
pub const PROJECT: &str = "e2e-project";
/// The logstore.
pub const LOGSTORE: &str = "audit-logs";
/// AccessKey pair the emulator accepts.
pub const AK_ID: &str = "e2e-ak-id";
/// Its secret.
pub const AK_SECRET: &str = "e2e-ak-secret";

/// The environment `shipper run` gets in tests: the AccessKey pair and the HEC token.
pub fn shipper_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SLS_AK_ID", AK_ID),
        ("SLS_AK_KEY", AK_SECRET),
        (
            "SHIPPER_HEC_TOKEN",
            shipper_test_support::hec_receiver::TEST_TOKEN,
        ),
    ]
}

/// One test's SLS emulator, client and temp directory.
pub struct SlsEnv {
    dir: tempfile::TempDir,
    client: Client,
    emulator: Option<EmulatorHandle>,
    shards: u32,
    /// Hash key of each shard (routes PutLogs to a shard without a ListShards per call).
    keys: Vec<String>,
    // Last: dropping the runtime stops every task the test started on it.
    rt: tokio::runtime::Runtime,
}

impl SlsEnv {
    /// Starts an emulator with `PROJECT/LOGSTORE:shards`; `test` names the temp directory.
    pub fn start(test: &str, shards: u32) -> Self {
        Self::start_with(test, shards, |c| c)
    }

    /// [`start`](Self::start) with the emulator's configuration adjusted by `configure`
    /// (temporary credentials, a clock offset).
    pub fn start_with(
        test: &str,
        shards: u32,
        configure: impl FnOnce(EmulatorConfig) -> EmulatorConfig,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("shipper-e2e-{test}-"))
            .tempdir()
            .expect("temp dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let config = configure(EmulatorConfig::new(AK_ID, AK_SECRET).with_logstore(
            LogstoreSpec::try_new(PROJECT, LOGSTORE, shards).expect("valid logstore spec"),
        ));
        let emulator = rt
            .block_on(Emulator::start(config))
            .expect("emulator starts");
        let client = Client::new(ClientConfig::new(
            emulator.endpoint(),
            PROJECT,
            Credentials::new(AK_ID, AK_SECRET),
        ))
        .expect("SLS client");
        let mut shard_list = rt
            .block_on(client.list_shards(LOGSTORE))
            .expect("ListShards");
        shard_list.sort_by_key(|s| s.shard_id);
        assert_eq!(
            shard_list.iter().map(|s| s.shard_id).collect::<Vec<_>>(),
            (0..shards).collect::<Vec<_>>()
        );
        let keys = shard_list
            .into_iter()
            .map(|s| s.inclusive_begin_key)
            .collect();
        Self {
            dir,
            client,
            emulator: Some(emulator),
            shards,
            keys,
            rt,
        }
    }

    /// The test's temp directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `shipper run` config for this emulator's logstore, consumer group `group`, with
    /// `plugin` and the dead-letter file `dead-letter.jsonl` in the test's directory (no
    /// sink yet).
    pub fn run_config(&self, group: &str, plugin: &str) -> RunConfig {
        RunConfig::new(
            &self.endpoint(),
            PROJECT,
            LOGSTORE,
            group,
            Path::new(plugin),
            &self.dir().join("dead-letter.jsonl"),
        )
    }

    /// The dead-letter file of a run built by [`Self::run_config`] (`name`: a `[[sinks]]`
    /// name, or `None` for `[sink]`), asserted empty.
    pub fn assert_no_dead_letters(&self, name: Option<&str>) {
        let file = match name {
            Some(name) => format!("dead-letter.{name}.jsonl"),
            None => "dead-letter.jsonl".to_owned(),
        };
        let dead = std::fs::read_to_string(self.dir().join(&file)).unwrap_or_default();
        assert!(dead.is_empty(), "dead letters in {file}:\n{dead}");
    }

    /// Starts an emulator with `shards` shards and loads `logs` logs of a fresh dataset
    /// (100 logs per LogGroup).
    pub fn start_loaded(test: &str, shards: u32, logs: u64) -> (Self, Dataset) {
        let env = Self::start(test, shards);
        let mut ds = Dataset::new(env.shards(), 100);
        env.load(&mut ds, logs);
        (env, ds)
    }

    /// The endpoint to give shipper (`127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        self.emulator.as_ref().expect("emulator running").endpoint()
    }

    /// The in-process emulator (temporary-credentials counters, issuing credentials).
    pub fn emulator(&self) -> &EmulatorHandle {
        self.emulator.as_ref().expect("emulator running")
    }

    /// The emulator's fault injection: make chosen SLS calls from shipper fail.
    pub fn faults(&self) -> &Faults {
        self.emulator.as_ref().expect("emulator running").faults()
    }

    /// Number of shards.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// A handle to the test runtime (for loader threads).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    /// An HEC receiver (plain HTTP, default token) on the test runtime.
    pub fn hec_receiver(&self) -> HecReceiver {
        self.rt.block_on(HecReceiver::start_default())
    }

    /// An HEC receiver on a given address (a port reserved earlier).
    pub fn hec_receiver_on(&self, addr: &str) -> HecReceiver {
        self.rt
            .block_on(HecReceiver::start_on(addr, HecReceiverConfig::default()))
    }

    /// A loader that can run on another thread.
    pub fn loader(&self) -> Loader {
        Loader {
            handle: self.handle(),
            client: self.client.clone(),
            keys: self.keys.clone(),
        }
    }

    /// Loads the next `logs` logs of `ds` (whole groups, spread over the shards).
    pub fn load(&self, ds: &mut Dataset, logs: u64) {
        self.loader().load(ds, logs);
    }

    /// Loads the next `logs` logs of `ds` straight into the emulator's shards (no PutLogs),
    /// as if SLS had received them at `received_at` (unix s): data that is old by the
    /// server's clock, which is what the lag gauges measure. Load it before fresher data
    /// (receive times never go backwards within a shard).
    pub fn load_received_at(&self, ds: &mut Dataset, logs: u64, received_at: u32) {
        assert_eq!(logs % ds.logs_per_group, 0, "whole groups only");
        let emulator = self.emulator.as_ref().expect("emulator running");
        for (shard, group) in ds.next_groups(logs / ds.logs_per_group) {
            emulator
                .append_group_received_at(PROJECT, LOGSTORE, shard, &group, received_at)
                .unwrap_or_else(|e| panic!("append to shard {shard}: {e}"));
        }
    }

    /// Each shard's end position (LogGroups written).
    pub fn end_positions(&self) -> Vec<u32> {
        self.rt.block_on(async {
            let mut out = Vec::new();
            for shard in 0..self.shards {
                let begin = self.cursor(shard, CursorPosition::Begin).await;
                let end = self.cursor(shard, CursorPosition::End).await;
                out.push(u32::try_from(end - begin).expect("non-negative"));
            }
            out
        })
    }

    /// The group's checkpoint per shard, as a position (`None`: never committed).
    pub fn checkpoints(&self, group: &str) -> BTreeMap<u32, Option<u32>> {
        self.rt.block_on(async {
            let list = match self.client.get_checkpoints(LOGSTORE, group, None).await {
                Ok(list) => list,
                // Before shipper created the group there is nothing committed.
                Err(e) if e.code() == Some("ConsumerGroupNotExist") => Vec::new(),
                Err(e) => panic!("GetCheckPoint: {e}"),
            };
            let mut out: BTreeMap<u32, Option<u32>> = (0..self.shards).map(|s| (s, None)).collect();
            for cp in list {
                let Some(cursor) = cp.cursor().expect("checkpoint is a cursor") else {
                    continue;
                };
                let begin = self.cursor(cp.shard, CursorPosition::Begin).await;
                out.insert(
                    cp.shard,
                    Some(u32::try_from(cursor.0 - begin).expect("checkpoint ≥ begin")),
                );
            }
            out
        })
    }

    /// Waits until the group's checkpoint of every shard is at the shard's end.
    pub fn wait_checkpoints_at_end(&self, group: &str) -> Vec<u32> {
        let end = self.end_positions();
        eventually("the group's checkpoints to reach every shard's end", || {
            let cps = self.checkpoints(group);
            let at: Vec<Option<u32>> = cps.values().copied().collect();
            if at.iter().zip(&end).all(|(c, e)| *c == Some(*e)) {
                Ok(end.clone())
            } else {
                Err(format!("checkpoints {at:?}, ends {end:?}"))
            }
        })
    }

    /// The usual end of a run into `hec`: every log of `ds` received, `group`'s checkpoints
    /// at every shard's end, `/metrics` scraped, SIGTERM and a clean exit, then each log of
    /// `ds` delivered exactly once (`what` names the scenario in the failure message).
    /// Returns the metrics scraped just before the stop.
    pub fn finish_hec_run(
        &self,
        group: &str,
        ds: &Dataset,
        hec: &HecReceiver,
        shipper: &mut ShipperProcess,
        what: &str,
    ) -> Metrics {
        wait_for_events(shipper, hec, ds.len());
        self.wait_checkpoints_at_end(group);
        let metrics = shipper.scrape().expect("metrics while running");
        shipper.signal("TERM");
        assert!(shipper.wait_exit().success());
        let seqs = hec_seqs(&hec.events());
        Tally::new(ds.len(), seqs).assert_exactly_once(ds, what);
        metrics
    }

    /// The position (LogGroups from the shard's begin) of a cursor in its wire form.
    pub fn position(&self, shard: u32, cursor: &str) -> u32 {
        let c = shipper_sls::cursor::Cursor::parse(cursor).expect("a cursor");
        let begin = self.rt.block_on(self.cursor(shard, CursorPosition::Begin));
        u32::try_from(c.0 - begin).expect("cursor ≥ begin")
    }

    async fn cursor(&self, shard: u32, at: CursorPosition) -> i64 {
        self.client
            .get_cursor(LOGSTORE, shard, at)
            .await
            .unwrap_or_else(|e| panic!("GetCursor {at} of shard {shard}: {e}"))
            .0
    }
}

impl Drop for SlsEnv {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            let _ = self.rt.block_on(emulator.shutdown());
        }
    }
}

/// Puts dataset groups through PutLogs (lz4, signed), one task per shard so each shard
/// receives its groups in order. Cheap to clone and `Send`.
#[derive(Clone)]
pub struct Loader {
    handle: tokio::runtime::Handle,
    client: Client,
    keys: Vec<String>,
}

impl Loader {
    /// Loads the next `logs` logs of `ds` (a multiple of its `logs_per_group`).
    pub fn load(&self, ds: &mut Dataset, logs: u64) {
        assert_eq!(logs % ds.logs_per_group, 0, "whole groups only");
        let groups = ds.next_groups(logs / ds.logs_per_group);
        let mut per_shard: BTreeMap<u32, Vec<LogGroup>> = BTreeMap::new();
        for (shard, group) in groups {
            per_shard.entry(shard).or_default().push(group);
        }
        self.handle.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for (shard, groups) in per_shard {
                let client = self.client.clone();
                let route = Route::HashKey(self.keys[shard as usize].clone());
                tasks.spawn(async move {
                    for group in groups {
                        client
                            .put_logs(LOGSTORE, &route, &group)
                            .await
                            .unwrap_or_else(|e| panic!("PutLogs to shard {shard}: {e}"));
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("loader task");
            }
        });
    }
}

/// Waits until `hec` has received `n` events or more; fails at once if `shipper` exits.
pub fn wait_for_events(shipper: &mut ShipperProcess, hec: &HecReceiver, n: u64) {
    eventually("every log to reach the receiver", || {
        shipper.assert_running();
        let got = hec.event_count() as u64;
        if got >= n {
            Ok(())
        } else {
            Err(format!("{got} of {n} events"))
        }
    });
}
