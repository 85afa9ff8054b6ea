//! Hostile guest: built against `shipper:plugin@0.2.0` (a copy of the WIT with another
//! version and shape). The host must refuse it at load time, naming both versions.

wit_bindgen::generate!({ path: "wit", world: "formatter" });

struct WrongVersion;

impl Guest for WrongVersion {
    fn init(_config: String) -> Result<PluginInfo, String> {
        shipper::plugin::host::log("wrong-version guest");
        Ok(PluginInfo {
            name: "wrong-version".into(),
            version: "0.0.1".into(),
            sdk: "wit-bindgen/0.61.1".into(),
        })
    }

    fn process(logs: Vec<LogView>) -> Result<Vec<String>, String> {
        Ok(logs.iter().map(|l| l.time.to_string()).collect())
    }
}

export!(WrongVersion);
