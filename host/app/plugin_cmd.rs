//! `shipper plugin test|inspect`: run a plugin through the production runtime on sample logs
//! and print what the sink would send, or describe a plugin file.
//!
//! `test` prints one line per emit on stdout: the HEC `/event` envelope, the syslog line
//! without framing, or the raw bytes (lossy UTF-8), following DESIGN.md "Rendering rules".
//! Per-log errors go to stderr as `log N: <kind>: <message>` and make the exit status
//! non-zero. The golden tests (tests/e2e/plugin_golden.rs) run exactly this.
//!
//! The renderer here is temporary: shipper-sinks renders the same rules in
//! `hec/request.rs` and `syslog/render.rs`, but those functions are crate-private; switch to
//! them once shipper-sinks exports them (`render_event`, `syslog::render`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use shipper_runtime::{
    ErrorKind, HecBody, HecEvent, Payload, PluginEngine, PluginLimits, SyslogMessage, Timestamp,
    samples,
};

/// Flags of `shipper plugin`.
#[derive(Debug, clap::Args)]
pub struct PluginArgs {
    /// What to do with the plugin.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// `shipper plugin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PluginCommand {
    /// Run a plugin on sample logs through the production runtime and print what the sink
    /// would send, one line per emit.
    Test(TestArgs),
    /// Print a plugin's name, version, SDK, world, hash, imports, exports and size.
    Inspect(InspectArgs),
}

/// Flags of `shipper plugin test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The plugin component (`.wasm`).
    #[arg(long)]
    pub plugin: PathBuf,
    /// The plugin config: a JSON object file (the `[plugin.config]` table). Default `{}`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Logs to format, flattened the way the official SDK flattens them (one JSON object per
    /// line: `__time__`, `__time_ns_part__`, `__topic__`, `__source__`, `__tag__:NAME`,
    /// contents). Consecutive lines with the same topic/source/tags form one log group.
    /// Default: the built-in samples.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Syslog rendering for syslog payloads.
    #[arg(long, value_enum, default_value_t = SyslogFormat::Rfc5424)]
    pub syslog_format: SyslogFormat,
    /// HOSTNAME used when a syslog payload does not set one (the sink's configured hostname).
    #[arg(long, default_value = "localhost")]
    pub syslog_hostname: String,
}

/// Flags of `shipper plugin inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,
    /// Config passed to `init` to learn the name/version/SDK (a JSON object file). Default `{}`.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Syslog line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyslogFormat {
    /// RFC 5424 (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`).
    Rfc5424,
    /// RFC 3164 / BSD (`<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG`).
    Rfc3164,
}

/// Runs `shipper plugin`.
pub async fn execute(args: PluginArgs) -> anyhow::Result<()> {
    match args.command {
        PluginCommand::Test(args) => test(args).await,
        PluginCommand::Inspect(args) => inspect(args).await,
    }
}

fn read_config(path: Option<&Path>) -> anyhow::Result<String> {
    let Some(path) = path else {
        return Ok("{}".to_owned());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the plugin config {}", path.display()))?;
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).with_context(
        || {
            format!(
                "the plugin config {} must be one JSON object",
                path.display()
            )
        },
    )?;
    Ok(text)
}

fn load(engine: &PluginEngine, path: &Path) -> anyhow::Result<shipper_runtime::Plugin> {
    let wasm = std::fs::read(path)
        .with_context(|| format!("cannot read the plugin file {}", path.display()))?;
    engine
        .load(&wasm, PluginLimits::default())
        .with_context(|| format!("plugin {}", path.display()))
}

async fn test(args: TestArgs) -> anyhow::Result<()> {
    let engine = PluginEngine::new()?;
    let plugin = load(&engine, &args.plugin)?;
    let config = read_config(args.config.as_deref())?;
    let groups = match &args.input {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the input {}", path.display()))?;
            samples::parse_flattened(&text)
                .with_context(|| format!("input {} is not flattened SLS logs", path.display()))?
        }
        None => samples::builtin_groups(),
    };
    let mut instance = plugin
        .instantiate(&config)
        .await
        .with_context(|| format!("plugin {}", args.plugin.display()))?;

    let batch = samples::sample_batch_info();
    let render = RenderOptions {
        syslog_format: args.syslog_format,
        syslog_hostname: args.syslog_hostname.clone(),
        fallback_time: batch.received,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut line = Vec::new();
    let (mut seen, mut failed) = (0usize, 0usize);
    for group in &groups {
        let bytes = samples::encode_group(group);
        let first = seen + 1;
        let results = instance
            .process(&batch, &bytes, group.logs.len())
            .await
            .with_context(|| {
                format!(
                    "plugin {} failed on logs {first}..={}",
                    args.plugin.display(),
                    seen + group.logs.len()
                )
            })?;
        for result in results {
            seen += 1;
            match result {
                Ok(emits) => {
                    for emit in &emits {
                        line.clear();
                        match render_payload(&emit.payload, &render, &mut line) {
                            Ok(()) => out.write_all(&line).context("writing to stdout")?,
                            Err(problem) => {
                                failed += 1;
                                out.flush().context("writing to stdout")?;
                                eprintln!("log {seen}: render: {problem}");
                            }
                        }
                    }
                }
                Err(error) => {
                    failed += 1;
                    out.flush().context("writing to stdout")?;
                    eprintln!("log {seen}: {}: {}", kind_name(error.kind), error.message);
                }
            }
        }
    }
    out.flush().context("writing to stdout")?;
    if failed > 0 {
        bail!("{failed} of {seen} logs failed (see the `log N:` lines above)");
    }
    Ok(())
}

async fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let engine = PluginEngine::new()?;
    let plugin = load(&engine, &args.plugin)?;
    let config = read_config(args.config.as_deref())?;
    let meta = plugin.metadata();
    let mut text = String::new();
    match plugin.instantiate(&config).await {
        Ok(instance) => {
            let info = instance.info();
            text.push_str(&format!("name:    {}\n", info.name));
            text.push_str(&format!("version: {}\n", info.version));
            text.push_str(&format!("sdk:     {}\n", info.sdk));
        }
        Err(e) => text.push_str(&format!(
            "name:    unknown (init failed: {e}; pass the plugin's config with --config)\n"
        )),
    }
    text.push_str(&format!("world:   {}\n", meta.world));
    text.push_str(&format!("hash:    sha256:{}\n", meta.hash));
    text.push_str(&format!("size:    {} bytes\n", meta.size));
    text.push_str("imports:\n");
    for import in &meta.imports {
        text.push_str(&format!("  {import}\n"));
    }
    text.push_str("exports:\n");
    for export in &meta.exports {
        text.push_str(&format!("  {export}\n"));
    }
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "invalid-input",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Internal => "internal",
    }
}

/// What rendering needs besides the payload.
struct RenderOptions {
    syslog_format: SyslogFormat,
    syslog_hostname: String,
    /// RFC 3164 has no NILVALUE for the time; the batch's received time stands in.
    fallback_time: Timestamp,
}

/// Renders one payload as one line (with its `\n`) into `out`.
fn render_payload(
    payload: &Payload,
    opts: &RenderOptions,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match payload {
        Payload::Hec(event) => render_hec(event, out),
        Payload::Syslog(msg) => match opts.syslog_format {
            SyslogFormat::Rfc5424 => render_5424(msg, &opts.syslog_hostname, out)?,
            SyslogFormat::Rfc3164 => {
                render_3164(msg, &opts.syslog_hostname, opts.fallback_time, out)?
            }
        },
        Payload::Raw(bytes) => out.extend_from_slice(String::from_utf8_lossy(bytes).as_bytes()),
    }
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    Ok(())
}

/// `{"time":T,"host":…,"source":…,"sourcetype":…,"index":…,"event":E,"fields":{…}}`.
fn render_hec(event: &HecEvent, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        json_string(out, name);
        out.push(b':');
    };
    if let Some(time) = event.time {
        key(out, "time");
        hec_time(out, time);
    }
    for (name, value) in [
        ("host", &event.host),
        ("source", &event.source),
        ("sourcetype", &event.sourcetype),
        ("index", &event.index),
    ] {
        if let Some(value) = value {
            key(out, name);
            json_string(out, value);
        }
    }
    key(out, "event");
    match &event.body {
        HecBody::Json(text) => out.extend_from_slice(text.as_bytes()),
        HecBody::Text(text) => json_string(out, text),
    }
    if !event.fields.is_empty() {
        key(out, "fields");
        out.push(b'{');
        for (i, field) in event.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_string(out, &field.key);
            out.push(b':');
            json_string(out, &field.value);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// Integer seconds when there is no sub-second part, else the fraction truncated to
/// microseconds with trailing zeros trimmed.
fn hec_time(out: &mut Vec<u8>, time: Timestamp) {
    let micros = time.nanos.min(999_999_999) / 1_000;
    let (sign, seconds, micros) = if time.seconds < 0 && micros > 0 {
        ("-", -(time.seconds + 1), 1_000_000 - micros)
    } else {
        ("", time.seconds, micros)
    };
    out.extend_from_slice(format!("{sign}{seconds}").as_bytes());
    if micros > 0 {
        let fraction = format!("{micros:06}");
        out.push(b'.');
        out.extend_from_slice(fraction.trim_end_matches('0').as_bytes());
    }
}

/// A JSON string: `"` `\` and control characters escaped, non-ASCII as is.
fn json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// PRI = facility * 8 + severity, facility 0..=23.
fn pri(msg: &SyslogMessage) -> Result<u16, String> {
    if msg.facility > 23 {
        return Err(format!("facility {} is out of range 0..=23", msg.facility));
    }
    Ok(u16::from(msg.facility) * 8 + msg.severity as u16)
}

/// A header field: PRINTUSASCII only (others → `_`), cut to `max`, `-` when empty.
fn header_field(out: &mut Vec<u8>, value: Option<&str>, max: usize) {
    let value = value.unwrap_or("");
    if value.is_empty() {
        out.push(b'-');
        return;
    }
    out.extend(
        value
            .bytes()
            .take(max)
            .map(|b| if (33..=126).contains(&b) { b } else { b'_' }),
    );
}

/// True for a valid SD-ID or PARAM-NAME: 1..=32 PRINTUSASCII except `=`, ` `, `]`, `"`.
fn valid_sd_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
}

/// Civil UTC date-time of Unix seconds: (year, month 1..=12, day, hour, minute, second).
fn civil(seconds: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Howard Hinnant's days-from-civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).expect("1..=31");
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).expect("1..=12");
    let year = yoe + era * 400 + i64::from(month <= 2);
    let secs = u32::try_from(secs).expect("< 86400");
    (year, month, day, secs / 3600, secs / 60 % 60, secs % 60)
}

fn render_5424(msg: &SyslogMessage, default_host: &str, out: &mut Vec<u8>) -> Result<(), String> {
    out.extend_from_slice(format!("<{}>1 ", pri(msg)?).as_bytes());
    match msg.timestamp {
        Some(t) => {
            let (y, mo, d, h, mi, s) = civil(t.seconds);
            out.extend_from_slice(
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}").as_bytes(),
            );
            if t.nanos != 0 {
                out.extend_from_slice(
                    format!(".{:06}", t.nanos.min(999_999_999) / 1_000).as_bytes(),
                );
            }
            out.push(b'Z');
        }
        None => out.push(b'-'),
    }
    out.push(b' ');
    header_field(
        out,
        Some(msg.hostname.as_deref().unwrap_or(default_host)),
        255,
    );
    out.push(b' ');
    header_field(out, msg.app_name.as_deref(), 48);
    out.push(b' ');
    header_field(out, msg.proc_id.as_deref(), 128);
    out.push(b' ');
    header_field(out, msg.msg_id.as_deref(), 32);
    out.push(b' ');
    if msg.structured_data.is_empty() {
        out.push(b'-');
    }
    for element in &msg.structured_data {
        if !valid_sd_name(&element.id) {
            return Err(format!("invalid SD-ID {:?} (RFC 5424 §6.3.2)", element.id));
        }
        out.push(b'[');
        out.extend_from_slice(element.id.as_bytes());
        for param in &element.params {
            if !valid_sd_name(&param.key) {
                return Err(format!(
                    "invalid SD PARAM-NAME {:?} (RFC 5424 §6.3.3)",
                    param.key
                ));
            }
            out.push(b' ');
            out.extend_from_slice(param.key.as_bytes());
            out.extend_from_slice(b"=\"");
            for c in param.value.chars() {
                if matches!(c, '"' | '\\' | ']') {
                    out.push(b'\\');
                }
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            out.push(b'"');
        }
        out.push(b']');
    }
    if !msg.msg.is_empty() {
        out.push(b' ');
        out.extend_from_slice(msg.msg.as_bytes());
    }
    Ok(())
}

fn render_3164(
    msg: &SyslogMessage,
    default_host: &str,
    fallback_time: Timestamp,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let time = msg.timestamp.unwrap_or(fallback_time);
    let (_, mo, d, h, mi, s) = civil(time.seconds);
    out.extend_from_slice(
        format!(
            "<{}>{} {d:>2} {h:02}:{mi:02}:{s:02} ",
            pri(msg)?,
            MONTHS[(mo - 1) as usize]
        )
        .as_bytes(),
    );
    header_field(
        out,
        Some(msg.hostname.as_deref().unwrap_or(default_host)),
        255,
    );
    out.push(b' ');
    if let Some(app) = msg.app_name.as_deref().filter(|a| !a.is_empty()) {
        header_field(out, Some(app), 48);
        if let Some(pid) = msg.proc_id.as_deref().filter(|p| !p.is_empty()) {
            out.push(b'[');
            header_field(out, Some(pid), 128);
            out.push(b']');
        }
        out.extend_from_slice(b": ");
    }
    out.extend_from_slice(msg.msg.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipper_runtime::{Field, SdElement, Severity};

    fn hec(event: HecEvent) -> String {
        let mut out = Vec::new();
        render_hec(&event, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn event(body: HecBody) -> HecEvent {
        HecEvent {
            body,
            time: None,
            host: None,
            source: None,
            sourcetype: None,
            index: None,
            fields: Vec::new(),
        }
    }

    #[test]
    fn hec_envelope_follows_the_rendering_rules() {
        let mut ev = event(HecBody::Json(r#"{"a":1}"#.into()));
        ev.time = Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 123_456_789,
        });
        ev.host = Some("h".into());
        ev.index = Some("main".into());
        ev.fields = vec![Field {
            key: "k".into(),
            value: "v\"".into(),
        }];
        assert_eq!(
            hec(ev),
            r#"{"time":1700000000.123456,"host":"h","index":"main","event":{"a":1},"fields":{"k":"v\""}}"#
        );
        let mut ev = event(HecBody::Text("é\n\t\u{1}\\".into()));
        ev.time = Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 500_000_000,
        });
        assert_eq!(
            hec(ev),
            "{\"time\":1700000000.5,\"event\":\"é\\n\\t\\u0001\\\\\"}"
        );
        let mut ev = event(HecBody::Text(String::new()));
        ev.time = Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 999,
        });
        assert_eq!(hec(ev), r#"{"time":1700000000,"event":""}"#);
    }

    fn syslog() -> SyslogMessage {
        SyslogMessage {
            facility: 16,
            severity: Severity::Warning,
            timestamp: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789,
            }),
            hostname: None,
            app_name: Some("app name".into()),
            proc_id: None,
            msg_id: Some("ID1".into()),
            structured_data: vec![SdElement {
                id: "sls@32473".into(),
                params: vec![Field {
                    key: "topic".into(),
                    value: r#"a"b\c]d"#.into(),
                }],
            }],
            msg: "hello ✓".into(),
        }
    }

    #[test]
    fn rfc5424_line() {
        let mut out = Vec::new();
        render_5424(&syslog(), "localhost", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<132>1 2023-11-14T22:13:20.123456Z localhost app_name - ID1 [sls@32473 topic="a\"b\\c\]d"] hello ✓"#
        );
        let mut bare = syslog();
        bare.timestamp = None;
        bare.structured_data.clear();
        bare.msg.clear();
        bare.facility = 24;
        let mut out = Vec::new();
        assert!(
            render_5424(&bare, "h", &mut out)
                .unwrap_err()
                .contains("facility 24")
        );
        bare.facility = 1;
        let mut out = Vec::new();
        render_5424(&bare, "h", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<12>1 - h app_name - ID1 -"
        );
    }

    #[test]
    fn rfc3164_line() {
        let mut msg = syslog();
        msg.proc_id = Some("42".into());
        msg.timestamp = Some(Timestamp {
            seconds: 1_699_000_000,
            nanos: 0,
        });
        let mut out = Vec::new();
        render_3164(
            &msg,
            "web",
            Timestamp {
                seconds: 0,
                nanos: 0,
            },
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<132>Nov  3 08:26:40 web app_name[42]: hello ✓"
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(-1), (1969, 12, 31, 23, 59, 59));
    }
}
