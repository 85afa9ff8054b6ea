//! The seed scripts are configured by environment variables alone (`SLS_ENDPOINT`,
//! `SLS_PROJECT`, `SLS_LOGSTORE`, `SLS_CG`, `SLS_AK_ID`, `SLS_AK_KEY`); the same
//! variables alone run shipper, with no config file. Here: no `--config`, only those
//! variables plus `--plugin` and `--hec-url` (token from `SHIPPER_HEC_TOKEN`); every log
//! arrives once, the checkpoints reach the end, and SIGTERM exits 0.

use shipper_test_artifacts as artifacts;
use shipper_test_support::hec_receiver::TEST_TOKEN;

use crate::harness::dataset::{Dataset, Tally, hec_seqs};
use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{AK_ID, AK_SECRET, LOGSTORE, PROJECT, SlsEnv, wait_for_events};

const GROUP: &str = "sync_data";
const LOGS: u64 = 300;

#[test]
fn the_seed_environment_variables_alone_run_shipper() {
    let env = SlsEnv::start("run-env-only", 2);
    let mut ds = Dataset::new(env.shards(), 30);
    env.load(&mut ds, LOGS);
    let hec = env.hec_receiver();

    let endpoint = env.endpoint();
    let url = hec.url();
    let dead_letter = env.dir().join("dead-letter.jsonl");
    let sls_env = [
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
        env.dir(),
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
        &sls_env,
    );

    wait_for_events(&mut shipper, &hec, LOGS);
    env.wait_checkpoints_at_end(GROUP);
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
    let seqs = hec_seqs(&hec.events());
    Tally::new(ds.len(), seqs).assert_exactly_once(&ds, "HEC");
    let dead = std::fs::read_to_string(&dead_letter).unwrap_or_default();
    assert!(dead.is_empty(), "dead letters on a clean run:\n{dead}");
}
