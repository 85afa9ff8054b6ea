//! `[sink]`: where formatted events go. The table is parsed here into the sinks crate's
//! typed settings, so a bad value is reported with its full key (`sink.batch_max_bytes`,
//! `sink.tls.ca_file`) before anything starts; building the sink (sockets, TLS files,
//! tasks) is `cmd::run`'s job.

use shipper_sinks::hec::HecConfig;
use shipper_sinks::syslog::SyslogConfig;
use shipper_sinks::{SinkConfig, SinkSettings};

use super::values::Problems;

/// The sink kinds a `type` key may name.
const KINDS: &str = "\"hec\" (Splunk HTTP Event Collector) or \"syslog\"";

/// Checks the `[sink]` table (or the one built from `--hec-url` / `--syslog-address` when
/// the file has none); every problem goes to `problems` under `prefix` (`sink`).
pub fn resolve(
    table: Option<toml::Table>,
    prefix: &str,
    problems: &mut Problems,
) -> Option<SinkSettings> {
    let Some(mut table) = table else {
        problems.push(
            prefix,
            "missing: add a [sink] table (type = \"hec\" or \"syslog\") to the config file, or \
             pass --hec-url / --syslog-address",
        );
        return None;
    };
    let key = |k: &str| format!("{prefix}.{k}");
    let config = match table.remove("type") {
        Some(toml::Value::String(kind)) if kind == "hec" => {
            SinkConfig::Hec(typed::<HecConfig>(table, prefix, problems)?)
        }
        Some(toml::Value::String(kind)) if kind == "syslog" => {
            SinkConfig::Syslog(typed::<SyslogConfig>(table, prefix, problems)?)
        }
        Some(other) => {
            problems.push(
                key("type"),
                format!("{other} is not a sink type: use {KINDS}"),
            );
            return None;
        }
        None => {
            problems.push(key("type"), format!("missing: set type = {KINDS}"));
            return None;
        }
    };
    match config.validate() {
        Ok(settings) => Some(settings),
        Err(e) => {
            problems.push(key(&e.field), e.message);
            None
        }
    }
}

/// Deserializes the table's keys (without `type`) into one sink's config, naming the full
/// path of the first bad or unknown key.
fn typed<T: serde::de::DeserializeOwned>(
    table: toml::Table,
    prefix: &str,
    problems: &mut Problems,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(toml::Value::Table(table)) {
        Ok(config) => Some(config),
        Err(e) => {
            let path = e.path().to_string();
            let key = if path == "." {
                prefix.to_owned()
            } else {
                format!("{prefix}.{path}")
            };
            // The message's first line; later lines repeat the path in toml's words.
            let message = e.into_inner().to_string();
            let first = message.lines().next().unwrap_or_default().trim_end();
            problems.push(key, first.to_owned());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(text: &str) -> Vec<String> {
        let table: toml::Table = toml::from_str(text).unwrap();
        let mut problems = Problems::default();
        let settings = resolve(Some(table), "sink", &mut problems);
        assert!(settings.is_none() || problems.is_empty());
        problems
            .into_vec()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_bad_value_names_the_full_key() {
        let p = problems_of("type = \"hec\"\nendpoint = \"http://h:8088\"\nbatch_max_bytes = -5\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("config key `sink.batch_max_bytes`: -5 is not a byte count"),
            "{p:?}"
        );
        let p = problems_of("type = \"syslog\"\naddress = \"h:514\"\n[tls]\nca_fil = \"x\"\n");
        assert_eq!(
            p,
            [
                "config key `sink.tls.ca_fil`: unknown field `ca_fil`, expected one of `ca_file`, \
              `cert_file`, `key_file`, `verify`, `server_name`"
            ]
        );
        let p = problems_of("type = \"hec\"\nendpoint = \"ftp://h\"\n");
        assert!(p[0].starts_with("config key `sink.endpoint`"), "{p:?}");
    }

    #[test]
    fn the_type_is_required_and_checked() {
        let p = problems_of("endpoint = \"http://h:8088\"\n");
        assert!(
            p[0].contains("`sink.type`") && p[0].contains("missing"),
            "{p:?}"
        );
        let p = problems_of("type = \"kafka\"\n");
        assert!(p[0].contains("\"kafka\" is not a sink type"), "{p:?}");
        let mut problems = Problems::default();
        assert!(resolve(None, "sink", &mut problems).is_none());
        assert!(problems.into_vec()[0].message.contains("--hec-url"));
    }

    #[test]
    fn a_good_table_gives_typed_settings() {
        let table: toml::Table = toml::from_str(
            "type = \"hec\"\nendpoint = \"http://h:8088\"\nbatch_max_bytes = 5000\n",
        )
        .unwrap();
        let mut problems = Problems::default();
        let Some(SinkSettings::Hec(hec)) = resolve(Some(table), "sink", &mut problems) else {
            panic!("{problems:?}")
        };
        assert_eq!(hec.batch.max_bytes, 5000);
    }
}
