//! Hostile guest: exports `init` but not `process` (right package version, wrong world).
//! The host must refuse it at load time, naming the missing export.

wit_bindgen::generate!({ path: ["../../../wit", "wit"], world: "shipper:guest/partial", generate_all });

struct MissingExport;

impl Guest for MissingExport {
    fn init(_config: String) -> Result<PluginInfo, String> {
        shipper::plugin::host::log(shipper::plugin::host::Level::Info, "missing-export guest");
        Ok(PluginInfo {
            name: "missing-export".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }
}

export!(MissingExport);
