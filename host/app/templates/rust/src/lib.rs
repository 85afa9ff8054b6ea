//! {{name}}: a shipper formatter plugin.
//!
//! Each SLS log becomes one Splunk HEC event: the log's contents as a JSON object, in wire
//! order, with the log's time, the log group's source, and `sourcetype` and `index` from the
//! plugin's config (`[plugin.config]` in shipper's config file; both optional). A log without
//! contents is refused with a record error: shipper writes it to the dead-letter file and
//! ships the rest of its batch.
//!
//! Sample input (`samples/input.jsonl`, one flattened log per line):
//!
//! ```text
//! {"__time__": 1700000000, "__time_ns_part__": [123456789], "__source__": "10.0.0.1", "level": "info", "message": "user alice signed in"}
//! ```
//!
//! with config `{"sourcetype": "my:app", "index": "main"}` becomes (`samples/golden.txt`):
//!
//! ```text
//! {"time":1700000000.123456,"source":"10.0.0.1","sourcetype":"my:app","index":"main","event":{"level":"info","message":"user alice signed in"}}
//! ```

use shipper_sdk::json::{JsonStyle, ObjectWriter};
use shipper_sdk::{Config, ConfigError, Emit, Group, HecEvent, Log, Plugin, RecordError};

/// The plugin, built once per instance from its config.
pub struct Formatter {
    sourcetype: Option<String>,
    index: Option<String>,
}

impl Plugin for Formatter {
    // Keys not read here are refused after `init` ("unknown config key …"), so a typo in
    // `[plugin.config]` fails at start-up instead of being ignored.
    fn init(config: &mut Config) -> Result<Self, ConfigError> {
        Ok(Formatter {
            sourcetype: config.string("sourcetype")?,
            index: config.string("index")?,
        })
    }

    fn format(&self, group: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
        if log.contents().is_empty() {
            return Err(RecordError::invalid_input("the log has no contents"));
        }
        // One string sized up front; the SDK escapes keys and values for JSON.
        let mut body = String::with_capacity(log.encoded_len() + 16);
        let mut object = ObjectWriter::new(&mut body, JsonStyle::Compact);
        for (key, value) in log.contents() {
            object.str(key, value);
        }
        object.finish();
        let mut event = HecEvent::json(body)
            .with_time(log.timestamp())
            .with_source(group.source());
        if let Some(sourcetype) = &self.sourcetype {
            event = event.with_sourcetype(sourcetype.clone());
        }
        if let Some(index) = &self.index {
            event = event.with_index(index.clone());
        }
        Ok(vec![Emit::hec(event)])
    }
}

shipper_sdk::export!(plugin = Formatter);

#[cfg(test)]
mod tests {
    use shipper_sdk::testing::{groups_from_jsonl, run};
    use shipper_sdk::{HecBody, Payload};

    use super::Formatter;

    const SAMPLES: &str = include_str!("../samples/input.jsonl");
    const CONFIG: &str = include_str!("../samples/config.json");

    #[test]
    fn each_log_becomes_one_event_with_its_contents_as_json() {
        let groups = groups_from_jsonl(SAMPLES).unwrap();
        let results = run::<Formatter>(CONFIG, &groups).unwrap();
        assert_eq!(results.len(), 3);
        let emits = results[0].as_ref().unwrap();
        let Payload::Hec(event) = &emits[0].payload else {
            panic!("expected an HEC event, got {emits:?}");
        };
        assert_eq!(
            event.body,
            HecBody::Json(r#"{"level":"info","message":"user alice signed in"}"#.into())
        );
        assert_eq!(event.index.as_deref(), Some("main"));
    }

    #[test]
    fn a_log_without_contents_is_refused() {
        let groups = groups_from_jsonl(SAMPLES).unwrap();
        let results = run::<Formatter>(CONFIG, &groups).unwrap();
        let error = results[2].as_ref().unwrap_err();
        assert_eq!(error.message, "the log has no contents");
    }

    #[test]
    fn a_misspelt_config_key_is_refused() {
        let error = run::<Formatter>(r#"{"sourcetyp": "my:app"}"#, &[]).unwrap_err();
        assert!(error.contains("sourcetyp"), "{error}");
    }
}
