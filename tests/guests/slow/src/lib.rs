//! Hostile guest for poison isolation: behaves like `echo` (raw log bytes back) except for
//! logs with content `slow`, on which it spins forever. A batch without such a log succeeds;
//! a batch with one times out, and bisection can find it.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

use shipper::plugin::types::Payload;

struct Slow;

impl Guest for Slow {
    fn init(_config: String) -> Result<PluginInfo, String> {
        Ok(PluginInfo {
            name: "slow".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        let mut out = Vec::new();
        for log in guest_util::logs(&group) {
            if guest_util::content(log, "slow").is_some() {
                let mut x = 1u64;
                loop {
                    x = std::hint::black_box(x.rotate_left(7) ^ 0x9e3779b97f4a7c15);
                }
            }
            out.push(Ok(vec![Emit {
                route: None,
                payload: Payload::Raw(log.to_vec()),
            }]));
        }
        Ok(out)
    }
}

export!(Slow);
