//! Hostile guest: `process` panics (panic = abort on wasm32-wasip2, so the call traps). The
//! host must report the panic message it captured from stderr.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

struct Trap;

impl Guest for Trap {
    fn init(_config: String) -> Result<PluginInfo, String> {
        Ok(PluginInfo {
            name: "trap".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        panic!("boom: plugin bug on a {}-byte group", group.len());
    }
}

export!(Trap);
