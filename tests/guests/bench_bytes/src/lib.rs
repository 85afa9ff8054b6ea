//! Benchmark guest, bytes-in interface (shipper's real world): receives one SLS `LogGroup`
//! as protobuf bytes, decodes it in place and emits one HEC event per log (contents as a
//! JSON object, time, topic as source, group source as host). Its twin `bench_structured`
//! does the same formatting behind a structured-record interface.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

use shipper::plugin::types::{HecBody, HecEvent, Payload, Timestamp};

struct BenchBytes;

impl Guest for BenchBytes {
    fn init(_config: String) -> Result<PluginInfo, String> {
        Ok(PluginInfo {
            name: "bench-bytes".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        let (topic, source) = guest_util::group_meta(&group);
        Ok(guest_util::logs(&group)
            .into_iter()
            .map(|log| {
                let (time, nanos) = guest_util::log_time(log);
                let contents = guest_util::contents(log);
                let body = guest_util::hec_body(
                    contents.iter().map(|(k, v)| {
                        (
                            std::str::from_utf8(k).unwrap_or(""),
                            std::str::from_utf8(v).unwrap_or(""),
                        )
                    }),
                    log.len(),
                );
                Ok(vec![Emit {
                    route: None,
                    payload: Payload::Hec(HecEvent {
                        body: HecBody::Json(body),
                        time: Some(Timestamp {
                            seconds: i64::from(time),
                            nanos: nanos.unwrap_or(0),
                        }),
                        host: Some(source.to_owned()),
                        source: Some(topic.to_owned()),
                        sourcetype: Some("sls".to_owned()),
                        index: None,
                        fields: Vec::new(),
                    }),
                }])
            })
            .collect())
    }
}

export!(BenchBytes);
