//! The echo guest built against a frozen copy of WIT 0.1.0 (`wit/` here, world `formatter`
//! as it was before `batch-formatter` existed): a plugin built for the first contract must
//! keep loading and running on this host. Emits each log's protobuf bytes back as a `raw`
//! payload. Config (flat JSON): `fail_init` (init returns
//! that error), `fail_batch` (process returns that error), logs with content `bad` get a
//! record error. Uses every host import once per call.

wit_bindgen::generate!({ path: "wit", world: "formatter" });

use shipper::plugin::host::{Level, counter_add, log, log_enabled};
use shipper::plugin::types::{ErrorKind, Payload};

static CONFIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

struct Echo;

impl Guest for Echo {
    fn init(config: String) -> Result<PluginInfo, String> {
        if let Some(message) = guest_util::config_str(&config, "fail_init") {
            return Err(message.to_owned());
        }
        log(Level::Info, "echo guest initialised");
        let _ = CONFIG.set(config);
        Ok(PluginInfo {
            name: "echo".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        batch: BatchInfo,
        group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        let config = CONFIG.get().map(String::as_str).unwrap_or("{}");
        if let Some(message) = guest_util::config_str(config, "fail_batch") {
            return Err(message.to_owned());
        }
        let logs = guest_util::logs(&group);
        counter_add("logs", logs.len() as u64);
        if log_enabled(Level::Debug) {
            log(
                Level::Debug,
                &format!("{} logs from shard {}", logs.len(), batch.shard),
            );
        }
        Ok(logs
            .into_iter()
            .map(|log| {
                if guest_util::content(log, "bad").is_some() {
                    return Err(RecordError {
                        kind: ErrorKind::InvalidInput,
                        message: "content `bad` present".into(),
                    });
                }
                Ok(vec![Emit {
                    route: None,
                    payload: Payload::Raw(log.to_vec()),
                }])
            })
            .collect())
    }
}

export!(Echo);
