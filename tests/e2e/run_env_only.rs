//! The seed scripts are configured by environment variables alone (`SLS_ENDPOINT`,
//! `SLS_PROJECT`, `SLS_LOGSTORE`, `SLS_CG`, `SLS_AK_ID`, `SLS_AK_KEY`); issue 6 §1 asks that
//! the same variables run shipper with no config file. Here: no `--config`, only those
//! variables plus `--plugin` and `--hec-url` (token from `SHIPPER_HEC_TOKEN`); every log
//! arrives once, the checkpoints reach the end, and SIGTERM exits 0.

use std::collections::BTreeMap;

use shipper_emulator::{Emulator, EmulatorConfig, LogstoreSpec};
use shipper_sls::api::logs::{CursorPosition, Route};
use shipper_sls::client::{Client, ClientConfig};
use shipper_sls::proto::{Content, Log, LogGroup};
use shipper_sls::sign::Credentials;
use shipper_test_artifacts as artifacts;
use shipper_test_support::eventually::eventually;
use shipper_test_support::hec_receiver::{HecReceiver, TEST_TOKEN};

use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{AK_ID, AK_SECRET};

const PROJECT: &str = "seedenv";
const LOGSTORE: &str = "audit";
const GROUP: &str = "sync_data";
const LOGS: u32 = 300;

fn group(from: u32, n: u32) -> LogGroup {
    LogGroup {
        logs: (from..from + n)
            .map(|seq| Log {
                time: 1_700_000_000 + seq,
                contents: vec![
                    Content {
                        key: "seq".into(),
                        value: seq.to_string().into_bytes(),
                    },
                    Content {
                        key: "message".into(),
                        value: format!("log {seq}").into_bytes(),
                    },
                ],
                time_ns: None,
            })
            .collect(),
        topic: Some("seed".into()),
        ..Default::default()
    }
}

#[test]
fn the_seed_environment_variables_alone_run_shipper() {
    let dir = tempfile::Builder::new()
        .prefix("shipper-e2e-env-")
        .tempdir()
        .expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = EmulatorConfig::new(AK_ID, AK_SECRET)
        .with_logstore(LogstoreSpec::try_new(PROJECT, LOGSTORE, 2).expect("spec"));
    let emulator = rt.block_on(Emulator::start(config)).expect("emulator");
    let client = Client::new(ClientConfig::new(
        emulator.endpoint(),
        PROJECT,
        Credentials::new(AK_ID, AK_SECRET),
    ))
    .expect("client");
    rt.block_on(async {
        for from in (0..LOGS).step_by(30) {
            client
                .put_logs(LOGSTORE, &Route::LoadBalance, &group(from, 30))
                .await
                .expect("PutLogs");
        }
    });
    let hec = rt.block_on(HecReceiver::start_default());

    let endpoint = emulator.endpoint();
    let url = hec.url();
    let dead_letter = dir.path().join("dead-letter.jsonl");
    let env = [
        ("SLS_ENDPOINT", endpoint.as_str()),
        ("SLS_PROJECT", PROJECT),
        ("SLS_LOGSTORE", LOGSTORE),
        ("SLS_CG", GROUP),
        ("SLS_AK_ID", AK_ID),
        ("SLS_AK_KEY", AK_SECRET),
        ("SHIPPER_HEC_TOKEN", TEST_TOKEN),
    ];
    let dead_letter_arg = dead_letter.to_str().expect("utf-8 path");
    let mut shipper = ShipperProcess::start_raw(
        dir.path(),
        "shipper",
        &[],
        &[
            "--plugin",
            artifacts::PLUGIN_JSON,
            "--hec-url",
            &url,
            "--dead-letter",
            dead_letter_arg,
        ],
        &env,
    );

    eventually("every log at the HEC receiver", || {
        shipper.assert_running();
        let n = hec.event_count();
        if n >= LOGS as usize {
            Ok(())
        } else {
            Err(format!("{n} of {LOGS}"))
        }
    });
    eventually("checkpoints at the end of both shards", || {
        rt.block_on(async {
            let cps = client
                .get_checkpoints(LOGSTORE, GROUP, None)
                .await
                .map_err(|e| e.to_string())?;
            if cps.len() != 2 {
                return Err(format!("{} checkpoints", cps.len()));
            }
            for cp in cps {
                let end = client
                    .get_cursor(LOGSTORE, cp.shard, CursorPosition::End)
                    .await
                    .map_err(|e| e.to_string())?;
                let at = cp.cursor().map_err(|e| e.to_string())?;
                if at != Some(end) {
                    return Err(format!("shard {}: at {at:?}, end {end:?}", cp.shard));
                }
            }
            Ok(())
        })
    });
    let joined = shipper.logs_with("joined consumer group");
    shipper.signal("TERM");
    assert!(
        shipper.wait_exit().success(),
        "exit after SIGTERM: {}",
        shipper.stderr_tail(20)
    );

    assert!(
        joined
            .iter()
            .any(|l| l["logstore"] == LOGSTORE && l["group"] == GROUP),
        "joined {GROUP} on {LOGSTORE} from the environment: {joined:?}"
    );
    let mut seen: BTreeMap<u32, u32> = BTreeMap::new();
    for e in hec.events() {
        let seq: u32 = e.envelope["event"]["seq"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("seq");
        *seen.entry(seq).or_default() += 1;
    }
    assert_eq!(seen.len(), LOGS as usize, "every log");
    assert!(seen.values().all(|&n| n == 1), "each once: {seen:?}");
    assert!(
        !dead_letter.exists()
            || std::fs::read_to_string(&dead_letter)
                .expect("read")
                .is_empty()
    );
}
