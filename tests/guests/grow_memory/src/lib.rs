//! Hostile guest: `process` allocates 1 MiB blocks without end (a memory bomb). The host's
//! memory cap must stop it with a trap that names the limit.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

struct GrowMemory;

impl Guest for GrowMemory {
    fn init(_config: String) -> Result<PluginInfo, String> {
        Ok(PluginInfo {
            name: "grow-memory".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        _group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![0xA5; 1 << 20]));
        }
    }
}

export!(GrowMemory);
