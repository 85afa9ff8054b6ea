//! `[sink]` or `[[sinks]]`: where formatted events go. Each table is parsed here into the
//! sinks crate's typed settings, so a bad value is reported with its full key
//! (`sink.batch_max_bytes`, `sinks[1].endpoints[2]`) before anything starts; building the
//! sinks (sockets, TLS files, tasks) is `cmd::run`'s job.
//!
//! Besides its type's own keys, every sink table may carry the keys the delivery core
//! handles for any sink (`CommonKeys`): rate caps, event IDs and, in `[[sinks]]`, a name,
//! its own plugin and its own dead-letter file. They are taken out before the type's keys
//! are checked.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use shipper_sinks::hec::HecConfig;
use shipper_sinks::syslog::SyslogConfig;
use shipper_sinks::{SinkConfig, SinkKind, SinkSettings};

use super::plugin::{self, PluginConfig, PluginSettings};
use super::values::{Problems, check_name};
use crate::pipeline::event_id::{DEFAULT_HEC_FIELD, DEFAULT_SD_ID, EventIdSettings};
use crate::pipeline::rate::RateCaps;

/// The sink kinds a `type` key may name.
const KINDS: &str = "\"hec\" (Splunk HTTP Event Collector) or \"syslog\"";
/// Name of the sink of a single `[sink]` table (what plugin routes name by default).
pub const DEFAULT_SINK_NAME: &str = "default";

/// One sink, validated.
#[derive(Debug, Clone)]
pub struct SinkEntry {
    /// Its name: `default` for `[sink]`, the `name` key in `[[sinks]]`.
    pub name: String,
    /// Where it is in the configuration: `sink` or `sinks[N]` (the prefix of its keys).
    pub key: String,
    /// The key of its plugin table: `plugin` (the shared one) or `sinks[N].plugin`.
    pub plugin_key: String,
    /// The sink's own settings.
    pub settings: SinkSettings,
    /// The plugin that formats its events: its own `[sinks.plugin]`, else the shared
    /// `[plugin]`.
    pub plugin: PluginSettings,
    /// Its dead-letter file.
    pub dead_letter: PathBuf,
    /// Its rate caps (none by default).
    pub rate: RateCaps,
    /// Event IDs, when `event_id = true`.
    pub event_id: Option<EventIdSettings>,
}

/// The keys every sink table may carry besides its type's own.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommonKeys {
    /// `[[sinks]]`: the sink's name (plugin routes name it).
    name: Option<String>,
    /// `[[sinks]]`: its own plugin, as a `[plugin]` table.
    plugin: Option<PluginConfig>,
    /// `[[sinks]]`: its own dead-letter file.
    dead_letter: Option<PathBuf>,
    /// Events per second at most (after the plugin).
    max_events_per_sec: Option<u64>,
    /// Uncompressed event bytes per second at most.
    max_bytes_per_sec: Option<u64>,
    /// Events that may go at once after an idle spell (default: one second's worth).
    burst_events: Option<u64>,
    /// Bytes that may go at once after an idle spell (default: one second's worth).
    burst_bytes: Option<u64>,
    /// Give every event a stable ID.
    event_id: Option<bool>,
    /// HEC: the indexed field that carries the ID.
    event_id_field: Option<String>,
    /// Syslog: the SD-ID of the structured-data element that carries the ID.
    event_id_sd_id: Option<String>,
}

const COMMON: [&str; 10] = [
    "name",
    "plugin",
    "dead_letter",
    "max_events_per_sec",
    "max_bytes_per_sec",
    "burst_events",
    "burst_bytes",
    "event_id",
    "event_id_field",
    "event_id_sd_id",
];

/// What the sink section of a configuration resolves against.
pub struct SinkInputs<'a> {
    /// `[sink]` from the file, or the one built from `--hec-url` / `--syslog-address`.
    pub single: Option<toml::Table>,
    /// `[[sinks]]` from the file.
    pub many: Option<Vec<toml::Table>>,
    /// True when `single` came from flags rather than the file.
    pub single_from_flags: bool,
    /// The shared `[plugin]`, when it resolved (`None`: absent or invalid).
    pub shared_plugin: Option<&'a PluginSettings>,
    /// `[dead_letter] path` (or `--dead-letter`): the file of `[sink]` and the base of the
    /// per-sink file names of `[[sinks]]`.
    pub dead_letter: &'a Path,
}

/// Checks `[sink]` (or the one built from `--hec-url` / `--syslog-address` when the file
/// has none) or `[[sinks]]`; every problem goes to `problems`.
pub fn resolve(inputs: SinkInputs<'_>, problems: &mut Problems) -> Option<Vec<SinkEntry>> {
    let before = problems.len();
    let SinkInputs {
        single,
        many,
        single_from_flags,
        shared_plugin,
        dead_letter,
    } = inputs;
    let shared = Shared {
        plugin: shared_plugin,
        dead_letter,
    };
    let entries: Vec<Option<SinkEntry>> = match (single, many) {
        (Some(_), Some(_)) => {
            let why = if single_from_flags {
                "--hec-url / --syslog-address cannot be combined with [[sinks]]: add the sink to the file"
            } else {
                "use either one [sink] table or [[sinks]] tables, not both"
            };
            problems.push("sinks", why);
            return None;
        }
        (None, None) => {
            problems.push(
                "sink",
                "missing: add a [sink] table (type = \"hec\" or \"syslog\") to the config file, or \
                 pass --hec-url / --syslog-address",
            );
            return None;
        }
        (Some(table), None) => vec![one(table, "sink", None, &shared, problems)],
        (None, Some(tables)) if tables.is_empty() => {
            problems.push("sinks", "is empty: add at least one [[sinks]] table");
            return None;
        }
        (None, Some(tables)) => tables
            .into_iter()
            .enumerate()
            .map(|(i, t)| one(t, &format!("sinks[{i}]"), Some(i), &shared, problems))
            .collect(),
    };
    let mut names: Vec<&str> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(e) = e {
            if let Some(j) = names.iter().position(|n| *n == e.name) {
                problems.push(
                    format!("sinks[{i}].name"),
                    format!(
                        "{:?} is the name of sinks[{j}] too: names must differ",
                        e.name
                    ),
                );
            }
            names.push(&e.name);
        }
    }
    if problems.len() > before {
        return None;
    }
    entries.into_iter().collect()
}

/// What every sink table resolves against.
struct Shared<'a> {
    plugin: Option<&'a PluginSettings>,
    dead_letter: &'a Path,
}

/// One sink table under `prefix`; `index` is its place in `[[sinks]]` (`None` for `[sink]`).
fn one(
    mut table: toml::Table,
    prefix: &str,
    index: Option<usize>,
    shared: &Shared<'_>,
    problems: &mut Problems,
) -> Option<SinkEntry> {
    let before = problems.len();
    let key = |k: &str| format!("{prefix}.{k}");
    let kind = table.remove("type");
    let mut common = toml::Table::new();
    for k in COMMON {
        if let Some(v) = table.remove(k) {
            common.insert(k.to_owned(), v);
        }
    }
    let mut common: CommonKeys = typed(common, prefix, problems).unwrap_or_default();
    let config = match kind {
        Some(toml::Value::String(kind)) if kind == "hec" => {
            typed::<HecConfig>(table, prefix, problems).map(SinkConfig::Hec)
        }
        Some(toml::Value::String(kind)) if kind == "syslog" => {
            typed::<SyslogConfig>(table, prefix, problems).map(SinkConfig::Syslog)
        }
        Some(other) => {
            problems.push(
                key("type"),
                format!("{other} is not a sink type: use {KINDS}"),
            );
            None
        }
        None => {
            problems.push(key("type"), format!("missing: set type = {KINDS}"));
            None
        }
    };
    let settings = config.and_then(|c| match c.validate() {
        Ok(settings) => Some(settings),
        Err(e) => {
            problems.push(key(&e.field), e.message);
            None
        }
    });
    let name = match (index, common.name.clone()) {
        (_, Some(name)) => {
            problems.check(&key("name"), check_name(&name));
            name
        }
        (None, None) => DEFAULT_SINK_NAME.to_owned(),
        (Some(_), None) => {
            problems.push(
                key("name"),
                "missing: every [[sinks]] table needs a name (plugin routes name sinks by it)",
            );
            String::new()
        }
    };
    if index.is_none() {
        if common.plugin.is_some() {
            problems.push(
                key("plugin"),
                "only [[sinks]] tables take this key; for [sink] use the [plugin] table",
            );
        }
        if common.dead_letter.is_some() {
            problems.push(
                key("dead_letter"),
                "only [[sinks]] tables take this key; for [sink] use [dead_letter] path",
            );
        }
    }
    let (plugin, plugin_key) = match common.plugin.take() {
        Some(p) if index.is_some() => (
            plugin::resolve(p, None, &key("plugin"), problems),
            key("plugin"),
        ),
        // Without a usable shared [plugin], its own problem (`plugin.path`, …) is reported.
        _ => (shared.plugin.cloned(), "plugin".to_owned()),
    };
    let rate = rate_caps(&common, prefix, problems);
    let kind = settings.as_ref().map(SinkSettings::kind);
    let event_id = event_id(&common, kind, prefix, problems);
    let dead_letter = match (index, common.dead_letter) {
        (Some(_), Some(path)) => path,
        (Some(_), None) => per_sink_file(shared.dead_letter, &name),
        (None, _) => shared.dead_letter.to_owned(),
    };
    if problems.len() > before {
        return None;
    }
    Some(SinkEntry {
        name,
        key: prefix.to_owned(),
        plugin_key,
        settings: settings?,
        plugin: plugin?,
        dead_letter,
        rate: rate?,
        event_id,
    })
}

/// The rate caps of a sink table, checked: each at least 1, a burst only with its cap.
fn rate_caps(c: &CommonKeys, prefix: &str, problems: &mut Problems) -> Option<RateCaps> {
    let before = problems.len();
    let caps = RateCaps {
        events_per_sec: c.max_events_per_sec,
        bytes_per_sec: c.max_bytes_per_sec,
        burst_events: c.burst_events,
        burst_bytes: c.burst_bytes,
    };
    for (k, v) in [
        ("max_events_per_sec", caps.events_per_sec),
        ("max_bytes_per_sec", caps.bytes_per_sec),
        ("burst_events", caps.burst_events),
        ("burst_bytes", caps.burst_bytes),
    ] {
        if v == Some(0) {
            problems.push(
                format!("{prefix}.{k}"),
                "must be at least 1 (leave it out for no cap)",
            );
        }
    }
    for (burst, cap, k, cap_key) in [
        (
            caps.burst_events,
            caps.events_per_sec,
            "burst_events",
            "max_events_per_sec",
        ),
        (
            caps.burst_bytes,
            caps.bytes_per_sec,
            "burst_bytes",
            "max_bytes_per_sec",
        ),
    ] {
        if burst.is_some() && cap.is_none() {
            problems.push(
                format!("{prefix}.{k}"),
                format!("is a burst of `{cap_key}`, which is not set"),
            );
        }
    }
    (problems.len() == before).then_some(caps)
}

fn event_id(
    c: &CommonKeys,
    kind: Option<SinkKind>,
    prefix: &str,
    problems: &mut Problems,
) -> Option<EventIdSettings> {
    let key = |k: &str| format!("{prefix}.{k}");
    let wrong_kind = |k: &str, want: SinkKind, problems: &mut Problems| {
        if kind.is_some_and(|have| have != want) {
            problems.push(key(k), format!("applies to {} sinks only", want.as_str()));
        }
    };
    if c.event_id_field.is_some() {
        wrong_kind("event_id_field", SinkKind::Hec, problems);
    }
    if c.event_id_sd_id.is_some() {
        wrong_kind("event_id_sd_id", SinkKind::Syslog, problems);
    }
    let hec_field = c
        .event_id_field
        .clone()
        .unwrap_or_else(|| DEFAULT_HEC_FIELD.to_owned());
    problems.check(&key("event_id_field"), check_field_name(&hec_field));
    let sd_id = c
        .event_id_sd_id
        .clone()
        .unwrap_or_else(|| DEFAULT_SD_ID.to_owned());
    problems.check(&key("event_id_sd_id"), check_sd_id(&sd_id));
    c.event_id
        .unwrap_or(false)
        .then_some(EventIdSettings { hec_field, sd_id })
}

/// An indexed-field name Splunk takes as is: a letter, then letters, digits or `_`.
fn check_field_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a field name: a letter, then letters, digits or '_' (at most 64)"
        ))
    }
}

/// An SD-ID of the `name@PEN` form (RFC 5424 §6.3.2): at most 32 printable ASCII
/// characters without `=`, space, `]` or `"`, and digits after the one `@`.
fn check_sd_id(id: &str) -> Result<(), String> {
    let printable = id
        .bytes()
        .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'));
    let pen = id.split_once('@').is_some_and(|(name, pen)| {
        !name.is_empty() && !pen.is_empty() && pen.bytes().all(|b| b.is_ascii_digit())
    });
    if printable && pen && id.len() <= 32 {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not an SD-ID of the form name@PEN (RFC 5424 §6.3.2): use your \
             organisation's IANA Private Enterprise Number, e.g. \"shipper@32473\""
        ))
    }
}

/// `shipper-dead-letter.jsonl` → `shipper-dead-letter.NAME.jsonl`.
fn per_sink_file(base: &Path, name: &str) -> PathBuf {
    let stem = base.file_stem().map_or_else(
        || "shipper-dead-letter".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    let file = match base.extension() {
        Some(ext) => format!("{stem}.{name}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{name}"),
    };
    base.with_file_name(file)
}

/// Deserializes the table's keys into `T`, naming the full path of the first bad or
/// unknown key.
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

    fn shared() -> PluginSettings {
        let mut p = Problems::default();
        plugin::resolve(
            PluginConfig {
                path: Some("shared.wasm".into()),
                ..Default::default()
            },
            None,
            "plugin",
            &mut p,
        )
        .unwrap()
    }

    fn resolve_text(text: &str) -> (Option<Vec<SinkEntry>>, Vec<String>) {
        #[derive(Deserialize)]
        struct File {
            sink: Option<toml::Table>,
            sinks: Option<Vec<toml::Table>>,
        }
        let file: File = toml::from_str(text).unwrap();
        let shared = shared();
        let mut problems = Problems::default();
        let out = resolve(
            SinkInputs {
                single: file.sink,
                many: file.sinks,
                single_from_flags: false,
                shared_plugin: Some(&shared),
                dead_letter: Path::new("/var/lib/shipper/dead.jsonl"),
            },
            &mut problems,
        );
        let p = problems.into_lines();
        (out, p)
    }

    fn problems_of(text: &str) -> Vec<String> {
        let (out, p) = resolve_text(text);
        assert!(out.is_none() || p.is_empty());
        p
    }

    #[test]
    fn a_bad_value_names_the_full_key() {
        let p = problems_of(
            "[sink]\ntype = \"hec\"\nendpoint = \"http://h:8088\"\nbatch_max_bytes = -5\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("config key `sink.batch_max_bytes`: -5 is not a byte count"),
            "{p:?}"
        );
        let p = problems_of(
            "[sink]\ntype = \"syslog\"\naddress = \"h:514\"\n[sink.tls]\nca_fil = \"x\"\n",
        );
        assert_eq!(
            p,
            [
                "config key `sink.tls.ca_fil`: unknown field `ca_fil`, expected one of `ca_file`, \
              `cert_file`, `key_file`, `verify`, `server_name`"
            ]
        );
        let p = problems_of("[sink]\ntype = \"hec\"\nendpoint = \"ftp://h\"\n");
        assert!(p[0].starts_with("config key `sink.endpoint`"), "{p:?}");
    }

    #[test]
    fn the_type_is_required_and_checked() {
        let p = problems_of("[sink]\nendpoint = \"http://h:8088\"\n");
        assert!(
            p[0].contains("`sink.type`") && p[0].contains("missing"),
            "{p:?}"
        );
        let p = problems_of("[sink]\ntype = \"kafka\"\n");
        assert!(p[0].contains("\"kafka\" is not a sink type"), "{p:?}");
        let p = problems_of("");
        assert!(p[0].contains("--hec-url"), "{p:?}");
    }

    #[test]
    fn a_good_table_gives_typed_settings_and_the_defaults() {
        let (out, p) = resolve_text(
            "[sink]\ntype = \"hec\"\nendpoint = \"http://h:8088\"\nbatch_max_bytes = 5000\n",
        );
        assert!(p.is_empty(), "{p:?}");
        let [e] = out.unwrap().try_into().unwrap();
        let SinkSettings::Hec(hec) = &e.settings else {
            panic!("an HEC sink")
        };
        assert_eq!(hec.batch.max_bytes, 5000);
        assert_eq!(e.name, DEFAULT_SINK_NAME);
        assert_eq!(e.plugin.path, PathBuf::from("shared.wasm"));
        assert_eq!(e.dead_letter, PathBuf::from("/var/lib/shipper/dead.jsonl"));
        assert_eq!(e.rate, RateCaps::default());
        assert!(e.event_id.is_none());
    }

    #[test]
    fn several_sinks_with_their_own_plugins_caps_and_ids() {
        let (out, p) = resolve_text(
            r#"
            [[sinks]]
            name = "splunk"
            type = "hec"
            endpoints = ["https://idx1:8088", { url = "https://idx2:8088", weight = 2 }]
            max_events_per_sec = 2000
            event_id = true
            [[sinks]]
            name = "qradar"
            type = "syslog"
            addresses = ["qr-a:6514", "qr-b:6514"]
            transport = "tls"
            max_bytes_per_sec = 1000000
            burst_bytes = 5000000
            event_id = true
            event_id_sd_id = "acme@99999"
            dead_letter = "/tmp/qr.jsonl"
            [sinks.plugin]
            path = "leef.wasm"
            config = { version = "2.0" }
            "#,
        );
        assert!(p.is_empty(), "{p:?}");
        let [splunk, qradar] = out.unwrap().try_into().unwrap();
        assert_eq!(splunk.name, "splunk");
        assert_eq!(
            (splunk.key.as_str(), splunk.plugin_key.as_str()),
            ("sinks[0]", "plugin")
        );
        assert_eq!(splunk.plugin.path, PathBuf::from("shared.wasm"));
        assert_eq!(
            splunk.dead_letter,
            PathBuf::from("/var/lib/shipper/dead.splunk.jsonl")
        );
        assert_eq!(splunk.rate.events_per_sec, Some(2000));
        assert_eq!(
            splunk.event_id,
            Some(EventIdSettings {
                hec_field: DEFAULT_HEC_FIELD.into(),
                sd_id: DEFAULT_SD_ID.into()
            })
        );
        assert_eq!(qradar.plugin.path, PathBuf::from("leef.wasm"));
        assert_eq!(qradar.plugin_key, "sinks[1].plugin");
        assert_eq!(qradar.dead_letter, PathBuf::from("/tmp/qr.jsonl"));
        assert_eq!(
            (qradar.rate.bytes_per_sec, qradar.rate.burst_bytes),
            (Some(1_000_000), Some(5_000_000))
        );
        assert_eq!(qradar.event_id.unwrap().sd_id, "acme@99999");
    }

    #[test]
    fn bad_sink_lists_name_the_key() {
        for (text, key) in [
            ("sinks = []", "`sinks`"),
            (
                "[sink]\ntype = \"hec\"\nendpoint = \"http://h\"\n[[sinks]]\nname = \"a\"\ntype = \"hec\"\nendpoint = \"http://h\"\n",
                "`sinks`",
            ),
            (
                "[[sinks]]\ntype = \"hec\"\nendpoint = \"http://h\"\n",
                "`sinks[0].name`",
            ),
            (
                "[[sinks]]\nname = \"a\"\ntype = \"hec\"\nendpoint = \"http://h\"\n[[sinks]]\nname = \"a\"\ntype = \"hec\"\nendpoint = \"http://i\"\n",
                "`sinks[1].name`",
            ),
            (
                "[[sinks]]\nname = \"a\"\ntype = \"hec\"\nendpoints = [\"http://h\", \"https://i\", \"x\"]\n",
                "`sinks[0].endpoints[1]`",
            ),
            (
                "[[sinks]]\nname = \"a\"\ntype = \"hec\"\nendpoints = []\n",
                "`sinks[0].endpoints`",
            ),
            (
                "[[sinks]]\nname = \"a b\"\ntype = \"hec\"\nendpoint = \"http://h\"\n",
                "`sinks[0].name`",
            ),
            (
                "[sink]\ntype = \"hec\"\nendpoint = \"http://h\"\nmax_events_per_sec = 0\n",
                "`sink.max_events_per_sec`",
            ),
            (
                "[sink]\ntype = \"hec\"\nendpoint = \"http://h\"\nburst_bytes = 10\n",
                "`sink.burst_bytes`",
            ),
            (
                "[sink]\ntype = \"hec\"\nendpoint = \"http://h\"\nevent_id_sd_id = \"a@1\"\n",
                "`sink.event_id_sd_id`",
            ),
            (
                "[sink]\ntype = \"syslog\"\naddress = \"h:1\"\nevent_id = true\nevent_id_sd_id = \"no-pen\"\n",
                "`sink.event_id_sd_id`",
            ),
            (
                "[sink]\ntype = \"hec\"\nendpoint = \"http://h\"\nevent_id_field = \"_id\"\n",
                "`sink.event_id_field`",
            ),
            (
                "[sink]\ntype = \"hec\"\nendpoint = \"http://h\"\ndead_letter = \"x\"\n",
                "`sink.dead_letter`",
            ),
            (
                "[[sinks]]\nname = \"a\"\ntype = \"hec\"\nendpoint = \"http://h\"\n[sinks.plugin]\nmemory_mib = 0\n",
                "`sinks[0].plugin.path`",
            ),
        ] {
            let p = problems_of(text);
            assert!(
                p.iter().any(|l| l.contains(key)),
                "{key} not named for:\n{text}\n{p:#?}"
            );
        }
    }

    #[test]
    fn per_sink_file_names() {
        assert_eq!(
            per_sink_file(Path::new("shipper-dead-letter.jsonl"), "splunk"),
            PathBuf::from("shipper-dead-letter.splunk.jsonl")
        );
        assert_eq!(
            per_sink_file(Path::new("/d/dead"), "q"),
            PathBuf::from("/d/dead.q")
        );
    }
}
