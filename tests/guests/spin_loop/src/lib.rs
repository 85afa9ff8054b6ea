//! Hostile guest: `process` never returns (an infinite loop). The host must interrupt it at
//! the call's deadline.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

struct SpinLoop;

impl Guest for SpinLoop {
    fn init(_config: String) -> Result<PluginInfo, String> {
        Ok(PluginInfo {
            name: "spin-loop".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        let mut counter = group.len() as u64;
        loop {
            counter =
                std::hint::black_box(counter.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

export!(SpinLoop);
