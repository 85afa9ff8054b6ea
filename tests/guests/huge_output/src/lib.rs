//! Hostile guest: produces more output than the host allows. Config `mode`:
//! `many_emits` (1000 emits per log), `big_emit` (one 2 MiB emit per log) or `total`
//! (a 512 KiB emit per log, so a batch passes any small per-call cap). Logs whose content
//! `small` is present get one tiny emit instead, so neighbours can be checked.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

use shipper::plugin::types::Payload;

static CONFIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

struct HugeOutput;

fn raw(len: usize) -> Emit {
    Emit {
        route: None,
        payload: Payload::Raw(vec![b'x'; len]),
    }
}

impl Guest for HugeOutput {
    fn init(config: String) -> Result<PluginInfo, String> {
        let _ = CONFIG.set(config);
        Ok(PluginInfo {
            name: "huge-output".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        let config = CONFIG.get().map(String::as_str).unwrap_or("{}");
        let mode = guest_util::config_str(config, "mode").unwrap_or("many_emits");
        Ok(guest_util::logs(&group)
            .into_iter()
            .map(|log| {
                if guest_util::content(log, "small").is_some() {
                    return Ok(vec![raw(3)]);
                }
                Ok(match mode {
                    "big_emit" => vec![raw(2 << 20)],
                    "total" => vec![raw(512 << 10)],
                    _ => (0..1000).map(|_| raw(1)).collect(),
                })
            })
            .collect())
    }
}

export!(HugeOutput);
