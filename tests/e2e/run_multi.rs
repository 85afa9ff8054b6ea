//! One process, several logstores (`logstores = [...]`, as the seed's
//! multi-logstore example runs one worker per logstore), with an SPL `query` that SLS applies
//! before the pull (`* | where level = 'ERROR'`): shipper joins the group on both logstores,
//! receives only the matching logs of both, delivers each once, and commits checkpoints at the
//! end of every shard of both — the filtered-out logs included (the cursor moves past them).

use std::collections::BTreeMap;
use std::path::Path;

use shipper_emulator::{Emulator, EmulatorConfig, LogstoreSpec};
use shipper_sls::api::logs::{CursorPosition, Route};
use shipper_sls::client::{Client, ClientConfig};
use shipper_sls::proto::{Content, Log, LogGroup};
use shipper_sls::sign::Credentials;
use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::HecReceiver;

use crate::harness::shipper::{RunConfig, ShipperProcess};
use crate::harness::sls::{AK_ID, AK_SECRET, shipper_env};

const PROJECT: &str = "multi";
const STORES: [&str; 2] = ["audit", "nginx"];
const SHARDS: u32 = 2;
const GROUP: &str = "e2e-multi";
/// Logs per logstore; every 4th is an ERROR.
const LOGS: u32 = 400;

fn group(store: &str, from: u32, n: u32) -> LogGroup {
    LogGroup {
        logs: (from..from + n)
            .map(|seq| Log {
                time: 1_700_000_000 + seq,
                contents: vec![
                    Content {
                        key: "store".into(),
                        value: store.as_bytes().to_vec(),
                    },
                    Content {
                        key: "seq".into(),
                        value: seq.to_string().into_bytes(),
                    },
                    Content {
                        key: "level".into(),
                        value: if seq % 4 == 0 {
                            b"ERROR".to_vec()
                        } else {
                            b"INFO".to_vec()
                        },
                    },
                    Content {
                        key: "message".into(),
                        value: format!("log {seq} of {store}").into_bytes(),
                    },
                ],
                time_ns: None,
            })
            .collect(),
        topic: Some(store.into()),
        source: Some("10.0.0.9".into()),
        ..Default::default()
    }
}

#[test]
fn two_logstores_in_one_process_with_an_spl_filter() {
    let dir = tempfile::Builder::new()
        .prefix("shipper-e2e-multi-")
        .tempdir()
        .expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = EmulatorConfig::new(AK_ID, AK_SECRET);
    for store in STORES {
        config = config.with_logstore(LogstoreSpec::try_new(PROJECT, store, SHARDS).expect("spec"));
    }
    let emulator = rt.block_on(Emulator::start(config)).expect("emulator");
    let client = Client::new(ClientConfig::new(
        emulator.endpoint(),
        PROJECT,
        Credentials::new(AK_ID, AK_SECRET),
    ))
    .expect("client");
    rt.block_on(async {
        for store in STORES {
            for from in (0..LOGS).step_by(20) {
                client
                    .put_logs(store, &Route::LoadBalance, &group(store, from, 20))
                    .await
                    .expect("PutLogs");
            }
        }
    });
    let hec = rt.block_on(HecReceiver::start_default());

    let stores: Vec<toml::Value> = STORES
        .iter()
        .map(|s| {
            let mut t = toml::Table::new();
            t.insert("logstore".into(), (*s).into());
            toml::Value::Table(t)
        })
        .collect();
    let cfg = RunConfig::new(
        &emulator.endpoint(),
        PROJECT,
        STORES[0],
        GROUP,
        Path::new(artifacts::PLUGIN_JSON),
        &dir.path().join("dead-letter.jsonl"),
    )
    .remove("source.logstore")
    .set("source.logstores", toml::Value::Array(stores))
    .set("source.query", "* | where level = 'ERROR'")
    .hec_sink(&hec.url());
    let mut shipper = ShipperProcess::start(dir.path(), "shipper", &cfg, &[], &shipper_env());

    let want = (LOGS / 4) as usize * STORES.len();
    eventually("the ERROR logs of both logstores", || {
        shipper.assert_running();
        let n = hec.event_count();
        if n >= want {
            Ok(())
        } else {
            Err(format!("{n} of {want}"))
        }
    });
    // Both logstores' checkpoints reach the end of every shard, past the filtered-out logs.
    eventually("checkpoints at the end of both logstores", || {
        rt.block_on(async {
            for store in STORES {
                for cp in client
                    .get_checkpoints(store, GROUP, None)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    let end = client
                        .get_cursor(store, cp.shard, CursorPosition::End)
                        .await
                        .map_err(|e| e.to_string())?;
                    let at = cp.cursor().map_err(|e| e.to_string())?;
                    if at != Some(end) {
                        return Err(format!(
                            "{store} shard {}: at {at:?}, end {end:?}",
                            cp.shard
                        ));
                    }
                }
            }
            Ok(())
        })
    });
    let joined: Vec<String> = shipper
        .logs_with("joined consumer group")
        .iter()
        .filter_map(|l| l["logstore"].as_str().map(str::to_owned))
        .collect();
    shipper.signal("TERM");
    assert!(shipper.wait_exit().success(), "exit after SIGTERM");

    assert!(
        STORES.iter().all(|s| joined.iter().any(|j| j == s)),
        "joined both: {joined:?}"
    );
    let mut seen: BTreeMap<(String, u32), u32> = BTreeMap::new();
    for e in hec.events() {
        let ev = &e.envelope["event"];
        assert_eq!(
            ev["level"], "ERROR",
            "only what the SPL query lets through: {ev}"
        );
        let store = ev["store"].as_str().expect("store").to_owned();
        let seq: u32 = ev["seq"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("seq");
        *seen.entry((store, seq)).or_default() += 1;
    }
    let expected: Vec<(String, u32)> = STORES
        .iter()
        .flat_map(|s| {
            (0..LOGS)
                .filter(|q| q % 4 == 0)
                .map(move |q| ((*s).to_owned(), q))
        })
        .collect();
    for key in &expected {
        assert_eq!(seen.get(key), Some(&1), "{key:?} delivered once");
    }
    assert_eq!(seen.len(), expected.len(), "nothing else delivered");
}
