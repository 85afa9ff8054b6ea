//! Validates the test HEC receiver with an independent client, `splunk-data-sender` 0.5.0
//! from PyPI: `/event` gzip and plain, `/raw` with a channel, indexer ack polling,
//! health, and a bad token. If our receiver only agreed with our own sink, a shared
//! misunderstanding of the protocol would go unnoticed.

use shipper_test_support::hec_receiver::{
    Endpoint, HecReceiver, HecReceiverConfig, TEST_TOKEN, TokenSpec,
};
use shipper_test_support::python::python;

const ACK_TOKEN: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const CHANNEL: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";

const SCRIPT: &str = r#"
import json, sys
import requests
from splunk_data_sender import SplunkSender

port, token, ack_token, channel = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
common = dict(endpoint="127.0.0.1", port=port, protocol="http", verify=False, retry_count=0,
              source="py-src", hostname="py-host", source_type="py-type", index="main")
out = {}
gz = SplunkSender(token=token, compress=True, **common)
out["gzip"] = gz.send_data([{"msg": "one", "n": 1}, "two"])
plain = SplunkSender(token=token, compress=False, **common)
out["plain"] = plain.send_data("three")
raw = SplunkSender(token=token, api_url="collector/raw", channel=channel, channel_in="url", **common)
out["raw"] = raw.send_data("raw line")
acked = SplunkSender(token=ack_token, channel=channel, channel_in="header", **common)
out["ack_send"] = acked.send_data("acked event")
out["acks_first"] = acked.send_acks([out["ack_send"]["ackId"]])
out["acks_again"] = acked.send_acks([out["ack_send"]["ackId"]])
out["health"] = gz.get_health()
try:
    SplunkSender(token="not-a-token", **common).send_data("never")
    out["bad_token"] = "accepted?!"
except requests.exceptions.HTTPError as e:
    out["bad_token"] = [e.response.status_code, e.response.json()]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_data_sender_talks_to_the_test_receiver() {
    let mut config = HecReceiverConfig::default();
    config.tokens.push(TokenSpec {
        ack: true,
        ..TokenSpec::new(ACK_TOKEN)
    });
    let rx = HecReceiver::start(config).await;
    let out = tokio::process::Command::new(python())
        .arg("-c")
        .arg(SCRIPT)
        .args([
            rx.addr().port().to_string().as_str(),
            TEST_TOKEN,
            ACK_TOKEN,
            CHANNEL,
        ])
        .output()
        .await
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad script output ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });

    assert_eq!(r["gzip"], serde_json::json!({"text": "Success", "code": 0}));
    assert_eq!(
        r["plain"],
        serde_json::json!({"text": "Success", "code": 0})
    );
    assert_eq!(r["raw"], serde_json::json!({"text": "Success", "code": 0}));
    assert_eq!(
        r["ack_send"],
        serde_json::json!({"text": "Success", "code": 0, "ackId": 0})
    );
    assert_eq!(r["acks_first"], serde_json::json!({"acks": {"0": true}}));
    assert_eq!(
        r["acks_again"],
        serde_json::json!({"acks": {"0": false}}),
        "an acknowledged id is forgotten"
    );
    assert_eq!(r["health"], true);
    assert_eq!(
        r["bad_token"],
        serde_json::json!([403, {"text": "Invalid token", "code": 4}])
    );

    let events = rx.events();
    let bodies: Vec<_> = events
        .iter()
        .filter(|e| e.endpoint == Endpoint::Event)
        .map(|e| e.envelope["event"].clone())
        .collect();
    assert_eq!(
        bodies,
        vec![
            serde_json::json!({"msg": "one", "n": 1}),
            "two".into(),
            "three".into(),
            "acked event".into()
        ],
        "exactly the events the client sent, in order"
    );
    for e in events.iter().filter(|e| e.endpoint == Endpoint::Event) {
        assert_eq!(e.envelope["host"], "py-host");
        assert_eq!(e.envelope["source"], "py-src");
        assert_eq!(e.envelope["sourcetype"], "py-type");
        assert_eq!(e.envelope["index"], "main");
        assert!(e.envelope["time"].is_number());
    }
    let raw: Vec<_> = events
        .iter()
        .filter(|e| e.endpoint == Endpoint::Raw)
        .collect();
    assert_eq!(raw.len(), 1);
    assert!(raw[0].text.contains("raw line"), "{}", raw[0].text);
    assert_eq!(raw[0].channel.as_deref(), Some(CHANNEL));

    let requests = rx.requests();
    let posts: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/services/collector/event")
        .collect();
    assert!(posts[0].gzip, "first sender compresses");
    assert_eq!(
        (posts[0].status, posts[0].events),
        (200, 2),
        "two concatenated envelopes in one request"
    );
    assert!(!posts[1].gzip);
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/services/collector/health" && r.status == 200)
    );
}
