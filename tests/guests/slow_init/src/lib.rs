//! Hostile guest: `init` spins forever, so no instance ever becomes ready. The host must
//! interrupt it within the init budget, say so, and keep working.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

struct SlowInit;

impl Guest for SlowInit {
    fn init(_config: String) -> Result<PluginInfo, String> {
        let mut x = 1u64;
        loop {
            x = std::hint::black_box(x.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15);
        }
    }

    fn process(
        _batch: BatchInfo,
        _group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        Err("never instantiated".into())
    }
}

export!(SlowInit);
