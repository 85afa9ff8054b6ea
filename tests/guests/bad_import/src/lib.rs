//! Hostile guest: a formatter that also imports `shipper:guest/dial`, an interface the host
//! does not provide. The host must refuse it at load time, naming the import.

wit_bindgen::generate!({ path: ["../../../wit", "wit"], world: "shipper:guest/bad-import", generate_all });

struct BadImport;

impl Guest for BadImport {
    fn init(config: String) -> Result<PluginInfo, String> {
        // Referenced so the import survives linking.
        if config.contains("dial") {
            shipper::guest::dial::connect("203.0.113.1:443");
        }
        Ok(PluginInfo {
            name: "bad-import".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(
        _batch: BatchInfo,
        _group: Vec<u8>,
    ) -> Result<Vec<Result<Vec<Emit>, RecordError>>, String> {
        Ok(Vec::new())
    }
}

export!(BadImport);
