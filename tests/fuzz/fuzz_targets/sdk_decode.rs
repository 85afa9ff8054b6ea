//! The plugin SDK's zero-copy LogGroup decoder, natively, exactly as `export!` calls it
//! (`process`): the group framing, each log's fields, invalid UTF-8 repair.
//!
//! Properties: no panic; differential against prost (the host's full decoder): whenever
//! prost decodes the bytes as a `LogGroup`, the SDK accepts the group and sees the same
//! topic, source, tags, and per log the same time, nanoseconds and contents in order
//! (values with invalid UTF-8 repaired as `String::from_utf8_lossy` does). A log whose
//! required `Time` is missing may be refused on its own (prost reads it as 0), and protobuf groups, which
//! SLS never sends, are refused where prost skips them.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use shipper_sdk::{Config, ConfigError, Emit, Group, Log, Plugin, RecordError};
use shipper_sls::proto::LogGroup;

/// What the SDK showed the plugin for one log.
#[derive(Debug, PartialEq)]
struct Seen {
    topic: String,
    source: String,
    tags: Vec<(String, String)>,
    time: u32,
    time_ns: Option<u32>,
    contents: Vec<(String, String)>,
}

/// A plugin that records what it is given and emits nothing.
struct Recorder(RefCell<Vec<Seen>>);

impl Plugin for Recorder {
    fn init(_: &mut Config) -> Result<Self, ConfigError> {
        Ok(Recorder(RefCell::new(Vec::new())))
    }

    fn format(&self, group: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
        let own = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        self.0.borrow_mut().push(Seen {
            topic: group.topic().to_owned(),
            source: group.source().to_owned(),
            tags: own(group.tags()),
            time: log.time(),
            time_ns: log.time_ns(),
            contents: own(log.contents()),
        });
        Ok(Vec::new())
    }
}

fuzz_target!(|data: &[u8]| {
    let plugin = Recorder(RefCell::new(Vec::new()));
    let batch = shipper_sdk::testing::test_batch();
    let result = shipper_sdk::__private::process(&plugin, &batch, data);
    let Ok(group) = LogGroup::decode(data) else {
        return;
    };
    // The one known divergence: protobuf's deprecated groups (wire types 3 and 4), which
    // prost skips and the SDK refuses (SLS never sends them).
    if result
        .as_ref()
        .is_err_and(|e| e.contains("unsupported wire type"))
    {
        return;
    }
    let results = result.expect("prost decodes a group the SDK refused");
    assert_eq!(results.len(), group.logs.len());
    let seen = plugin.0.into_inner();
    let mut seen = seen.into_iter();
    for (result, log) in results.iter().zip(&group.logs) {
        if let Err(e) = result {
            let groups = e.message.contains("unsupported wire type");
            assert!(
                log.time == 0 || groups,
                "a log prost decodes was refused: {e:?}"
            );
            continue;
        }
        let expected = Seen {
            topic: group.topic.clone().unwrap_or_default(),
            source: group.source.clone().unwrap_or_default(),
            tags: group
                .log_tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect(),
            time: log.time,
            time_ns: log.time_ns,
            contents: log
                .contents
                .iter()
                .map(|c| {
                    (
                        c.key.clone(),
                        String::from_utf8_lossy(&c.value).into_owned(),
                    )
                })
                .collect(),
        };
        assert_eq!(seen.next().as_ref(), Some(&expected));
    }
});
