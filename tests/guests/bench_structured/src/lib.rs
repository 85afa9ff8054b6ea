//! Benchmark guest, structured-record interface: the same HEC formatting as `bench_bytes`,
//! but each log arrives as a record of owned strings the host built and lowered (the
//! interface shipper did not choose; measured in host/runtime/benches/plugins.rs).

wit_bindgen::generate!({ path: "wit", world: "formatter" });

use shipper_bench::structured::types::{HecBody, HecEvent, Payload, Timestamp};

struct BenchStructured;

impl Guest for BenchStructured {
    fn process(
        group: LogGroup,
        logs: Vec<Log>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        Ok(logs
            .into_iter()
            .map(|log| {
                let size: usize = log
                    .contents
                    .iter()
                    .map(|f| f.key.len() + f.value.len() + 6)
                    .sum();
                let body = guest_util::hec_body(
                    log.contents
                        .iter()
                        .map(|f| (f.key.as_str(), f.value.as_str())),
                    size,
                );
                Ok(vec![Emit {
                    route: None,
                    payload: Payload::Hec(HecEvent {
                        body: HecBody::Json(body),
                        time: Some(Timestamp {
                            seconds: i64::from(log.time),
                            nanos: log.time_ns.unwrap_or(0),
                        }),
                        host: Some(group.source.clone()),
                        source: Some(group.topic.clone()),
                        sourcetype: Some("sls".to_owned()),
                        index: None,
                        fields: Vec::new(),
                    }),
                }])
            })
            .collect())
    }
}

export!(BenchStructured);
