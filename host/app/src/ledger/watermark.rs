//! Watermark events (`[ledger] watermark_interval`): every interval, one event per shard
//! and sink with the cursor range that sink acknowledged since the last one, so the SIEM
//! itself can alert when a range is missing (docs/ledger.md "Watermark events").
//!
//! They are sent beside the data path, not through it: rendered by the sink's own
//! renderer (an HEC event with sourcetype `shipper:watermark`, or a syslog message with
//! MSGID `watermark`), never through the plugin, never dead-lettered. One that cannot be
//! delivered before shutdown is lost; the next one still starts where it ended, so the SIEM
//! sees that as a gap, which errs on the side of an alert.

use std::sync::Arc;
use std::time::Duration;

use shipper_sinks::{EventBatch, Field, HecBody, HecEvent, Payload, SyslogMessage, Timestamp};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Ledger, Record};
use crate::pipeline::Topology;

/// HEC sourcetype of a watermark event.
pub const SOURCETYPE: &str = "shipper:watermark";
/// Syslog MSGID of a watermark event.
pub const MSG_ID: &str = "watermark";

/// The event's JSON body.
pub fn body(r: &Record) -> String {
    serde_json::json!({
        "shipper_watermark": 1,
        "logstore": r.logstore,
        "shard": r.shard,
        "sink": r.sink,
        "from": r.from,
        "to": r.to,
        "groups": r.to - r.from,
        "events": r.tally.events,
        "dead_lettered": r.tally.dead_lettered,
        "dropped": r.tally.dropped,
        "received_first": r.tally.received_first,
        "received_last": r.tally.received_last,
    })
    .to_string()
}

/// The payloads a watermark may take, in the order tried: an HEC event, a syslog message,
/// raw text (HEC `/raw`, or a sink that takes only pre-rendered lines).
fn payloads(r: &Record) -> [Payload; 3] {
    let text = body(r);
    let mut hec = HecEvent::new(HecBody::Json(text.clone()));
    hec.time = Some(Timestamp::now());
    hec.source = Some("shipper".into());
    hec.sourcetype = Some(SOURCETYPE.into());
    hec.fields = vec![Field::new("shipper_watermark", "1")];
    let mut syslog = SyslogMessage::new(text.clone());
    syslog.app_name = Some("shipper".into());
    syslog.msg_id = Some(MSG_ID.into());
    syslog.timestamp = Some(Timestamp::now());
    [
        Payload::Hec(hec),
        Payload::Syslog(syslog),
        Payload::Raw(text.into_bytes()),
    ]
}

/// Sends the watermarks every `interval` until `shutdown`, to the sinks of the topology in
/// use at that moment (a watermark for a sink a reload removed is dropped).
pub async fn run(
    ledger: Ledger,
    interval: Duration,
    topology: watch::Receiver<Arc<Topology>>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let records = ledger.take_watermarks().await;
        if records.is_empty() {
            continue;
        }
        let topo = topology.borrow().clone();
        let mut sends = Vec::new();
        for sink in &topo.sinks {
            let mut batch = EventBatch::new();
            for r in records.iter().filter(|r| r.sink == sink.name) {
                if !payloads(r)
                    .iter()
                    .any(|p| sink.sink.render(p, &mut batch).is_ok())
                {
                    tracing::warn!(sink = %sink.name, "the sink renders no watermark payload; watermark dropped");
                }
            }
            if !batch.is_empty() {
                let (name, n) = (sink.name.clone(), batch.len());
                let send = sink.sink.send(batch);
                sends.push(async move {
                    let d = send.await;
                    if !d.is_complete_success() {
                        tracing::warn!(sink = %name, events = n, rejected = d.rejected.len(), cancelled = d.cancelled, "watermark events not all delivered");
                    }
                });
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = futures::future::join_all(sends) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::*;

    #[test]
    fn the_body_carries_the_range_and_counts() {
        let mut r = rec(3, "splunk", 100..140, 4000);
        r.tally.received(Some(1_700_000_000));
        let v: serde_json::Value = serde_json::from_str(&body(&r)).unwrap();
        assert_eq!(v["shard"], 3);
        assert_eq!(
            (v["from"].as_i64(), v["to"].as_i64()),
            (Some(100), Some(140))
        );
        assert_eq!(v["groups"], 40);
        assert_eq!(v["events"], 4000);
        assert_eq!(v["received_last"], 1_700_000_000);
    }
}
