//! A receiver that refuses request bodies over 100 KB (a load balancer's limit in front
//! of Splunk) answers 413 to shipper's default 1 MB requests: the sink splits them and
//! lowers that endpoint's request size, so every log is delivered exactly once and, once
//! adapted, requests fit (the 413s stop).

use shipper_test_artifacts as artifacts;

use crate::harness::shipper::ShipperProcess;
use crate::harness::sls::{SlsEnv, shipper_env};

const GROUP: &str = "e2e-hec-413";
const LOGS: u64 = 20_000;
const LIMIT: usize = 100 * 1024;

#[test]
fn a_receiver_refusing_bodies_over_100kb_gets_every_log_in_smaller_requests() {
    let (env, ds) = SlsEnv::start_loaded("hec-413", 4, LOGS);
    let hec = env.hec_receiver();
    hec.set_max_decoded_body(Some(LIMIT));
    let config = env
        .run_config(GROUP, artifacts::PLUGIN_SPLUNK_HEC)
        .hec_sink(&hec.url())
        // The default request size, ten times the receiver's limit.
        .set("sink.batch_max_bytes", 1_000_000);
    let mut shipper = ShipperProcess::start(env.dir(), "shipper", &config, &[], &shipper_env());
    let metrics = env.finish_hec_run(GROUP, &ds, &hec, &mut shipper, "413 adaptation");

    let requests: Vec<_> = hec
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/event") && r.decoded_bytes > 0)
        .collect();
    let refused = requests.iter().filter(|r| r.status == 413).count();
    let accepted = requests.iter().filter(|r| r.status == 200).count();
    assert!(refused > 0, "the limit was hit: {requests:?}");
    assert!(
        requests
            .iter()
            .filter(|r| r.status == 200)
            .all(|r| r.decoded_bytes <= LIMIT),
        "every accepted request is within the limit"
    );
    // Each 413 halves the endpoint's request size; a handful of them (at most a few per
    // request that was in flight when the first came back) and then none.
    let last_refusal = requests.iter().rposition(|r| r.status == 413).unwrap();
    assert!(
        last_refusal < requests.len() / 2,
        "413s keep coming: the last is request {last_refusal} of {}",
        requests.len()
    );
    let limit = metrics.sum("shipper_sink_endpoint_max_request_bytes");
    assert!(
        0.0 < limit && limit <= LIMIT as f64,
        "the endpoint's request size came down to {limit}"
    );
    assert_eq!(metrics.sum("shipper_dead_lettered_total"), 0.0);
    eprintln!(
        "run_hec_413: {refused} requests refused, {accepted} accepted; request size now {limit} bytes"
    );
}
