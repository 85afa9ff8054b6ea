//! Hostile guest: returns one result more than there are logs. The host must reject the
//! batch as invalid output (a contract violation), not misalign results with logs.

wit_bindgen::generate!({ path: "../../../wit", world: "formatter" });

struct WrongLength;

impl Guest for WrongLength {
    fn init(_config: String) -> Result<PluginInfo, String> {
        Ok(PluginInfo {
            name: "wrong-length".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        let n = guest_util::logs(&group).len();
        Ok((0..=n).map(|_| Ok(Vec::new())).collect())
    }
}

export!(WrongLength);
