//! Test guest for the `shipper run` e2e scenarios (dead letters, hot swap): formats every log
//! exactly like the `json` plugin (same config keys, same object, built with the SDK), but
//!
//! - tags each HEC event with the indexed field `formatter=poison_json`, so a test can tell
//!   its output from splunk-hec's and json's (those two render byte-identical events);
//! - panics on a log that has a content named `poison` (a trap the host must isolate by
//!   bisection and dead-letter, delivering the log's neighbours);
//! - returns a record error (`invalid-input`) for a log that has a content named `reject`.

use shipper_sdk::flat::write_json_object;
use shipper_sdk::json::JsonStyle;
use shipper_sdk::mapping::{JsonFields, Output};
use shipper_sdk::{Config, ConfigError, Emit, Group, HecEvent, Log, Plugin, RecordError};

/// Value of the `formatter` indexed field on every HEC event.
const FORMATTER: &str = "poison_json";

struct PoisonJson {
    json_fields: JsonFields,
    output: Output,
}

impl Plugin for PoisonJson {
    fn init(config: &mut Config) -> Result<Self, ConfigError> {
        Ok(Self {
            json_fields: JsonFields::from_config(config, "json_fields")?,
            output: Output::from_config(config, true, "app_name")?,
        })
    }

    fn format(&self, group: &Group<'_>, log: &Log<'_>) -> Result<Vec<Emit>, RecordError> {
        let seq = log.get("seq").unwrap_or("?");
        if log.get("poison").is_some() {
            panic!("poison log seq={seq}");
        }
        if let Some(why) = log.get("reject") {
            return Err(RecordError::invalid_input(format!(
                "log seq={seq} rejected: {why}"
            )));
        }
        let fields = self.json_fields.for_log(group, log);
        let mut json = String::with_capacity(log.encoded_len() + 128);
        write_json_object(&mut json, group, log, fields, JsonStyle::Compact);
        let emit = match &self.output {
            Output::Hec(t) => Emit::hec(
                t.apply(HecEvent::json(json).with_time(log.timestamp()))
                    .with_field("formatter", FORMATTER),
            ),
            Output::Syslog(_) => self.output.emit_json(json, log.timestamp()),
        };
        Ok(vec![emit])
    }
}

shipper_sdk::export!(plugin = PoisonJson);
