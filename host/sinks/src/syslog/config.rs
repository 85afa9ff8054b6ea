//! `[sink]` options of a syslog sink ([`SyslogConfig`]) and their validation into
//! [`SyslogSettings`] (pure). Defaults follow docs/rendering.md §6 "Transports and framing".

use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::util::addresses::{Keys, one_or_many};
use crate::util::batch::BatchConfig;
use crate::util::tls::TlsConfig;

/// Bytes per batch handed to one write. Large enough that TLS fills 16 KiB records and
/// the per-write cost vanishes (one record per event costs about 25 % of the throughput,
/// docs/rendering.md §6.3 "TCP").
pub const DEFAULT_BATCH_MAX_BYTES: usize = 256 * 1024;
/// A syslog write has no per-request cost worth amortising over seconds: 200 ms keeps
/// latency low while still filling batches at high rates.
pub const DEFAULT_BATCH_LINGER_MS: u64 = 200;
/// Largest message (unframed) over TCP/TLS: rsyslog's default `maxMessageSize` is 8 KiB,
/// and it turns the rest of a longer frame into a junk second message (docs/rendering.md
/// §4.6 "Message size and truncation", §7).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Largest UDP datagram: under a 1500-byte Ethernet MTU minus IP/UDP headers, so no IP
/// fragmentation (RFC 5426 §3.2; docs/rendering.md §6.2 "UDP").
pub const DEFAULT_UDP_MAX_MESSAGE_BYTES: usize = 1_400;
/// TCP + TLS connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// A write that makes no progress this long means a dead peer: reconnect and resend.
pub const DEFAULT_WRITE_TIMEOUT_MS: u64 = 30_000;
/// First reconnect delay.
pub const DEFAULT_RECONNECT_BACKOFF_MIN_MS: u64 = 100;
/// Reconnect delay cap: bounded so a restarted receiver is used again within seconds.
pub const DEFAULT_RECONNECT_BACKOFF_MAX_MS: u64 = 10_000;
/// Bytes of recently written frames kept to resend after a reconnect. Syslog has no
/// acknowledgement, so what sat in socket buffers when the peer vanished is lost unless
/// resent; 1 MiB covers the kernel send buffer plus a batch (duplicates instead of loss).
pub const DEFAULT_RESEND_BUFFER_BYTES: usize = 1024 * 1024;
/// TCP keepalive idle time: detects a silently vanished peer on an idle connection.
pub const DEFAULT_KEEPALIVE_SECS: u64 = 60;
/// After a TLS 1.3 handshake, wait up to this long for the server to reject us. A server
/// that refuses the client certificate says so only after the client's handshake
/// completed; without this read the first batch would be silently lost
/// (docs/rendering.md §6.5 "TLS"). Servers that send a session ticket (OpenSSL, GnuTLS) end
/// the wait at once; the full second is paid only by silent servers, once per (long-lived)
/// connection, and leaves room for a loaded receiver.
pub const DEFAULT_TLS_PROBE_MS: u64 = 1_000;

/// Network transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// RFC 5426: one message per datagram; lossy, no back-pressure.
    Udp,
    /// RFC 6587 over plain TCP.
    #[default]
    Tcp,
    /// RFC 5425: TLS, octet-counting.
    Tls,
}

/// TCP framing (RFC 6587).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// `LEN SP MSG`: messages may contain line feeds. Required by syslog-ng `syslog()`.
    OctetCounting,
    /// `MSG LF` (non-transparent framing) for LF-only listeners (syslog-ng `network()`,
    /// QRadar). A line feed inside a message would split it, so each LF is written as the
    /// two characters `\n` (also in structured-data values).
    Lf,
}

/// How a sink with several `addresses` uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One connection, to the first address that accepts it; while a later one is in use,
    /// the earlier ones are tried again (reconnect backoff) and traffic goes back to the
    /// first as soon as it accepts a connection. QRadar and ArcSight primary/secondary
    /// collectors.
    #[default]
    Failover,
    /// One connection per address, every batch to whichever connection is free; a
    /// connection that fails hands its batches (and what it wrote but was not confirmed)
    /// to the others.
    Balance,
}

/// Message format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`.
    #[default]
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG` (no structured data, no year).
    Rfc3164,
}

/// A syslog sink (`type = "syslog"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    /// Receiver `host:port` (`[v6]:port` for IPv6 literals).
    pub address: String,
    /// Several receivers instead of `address` (TCP or TLS), used as `mode` says; the first
    /// is the primary in `failover` mode.
    pub addresses: Option<Vec<String>>,
    /// `failover` (default) or `balance`, for `addresses`.
    pub mode: Mode,
    /// `udp`, `tcp` (default) or `tls`.
    pub transport: Transport,
    /// `octet_counting` (default) or `lf`; TCP only (TLS is always octet-counted).
    pub framing: Option<Framing>,
    /// `rfc5424` (default) or `rfc3164`.
    pub format: Format,
    /// HOSTNAME for messages that carry none (default: this machine's host name).
    pub hostname: Option<String>,
    /// Largest message in bytes before framing; longer MSGs are cut on a UTF-8 boundary
    /// (counted in `truncated`). Default 8192 (TCP/TLS) or 1400 (UDP).
    pub max_message_bytes: Option<usize>,
    /// Prefix MSG with the UTF-8 BOM as RFC 5424 §6.4 asks. Off by default: rsyslog keeps
    /// it in the message and SIEM UIs show it as `ï»¿`
    /// (docs/rendering.md §4.5 "MSG and the BOM").
    pub bom: bool,
    /// RFC 3164 timestamps are local time without a zone; this is the offset they are
    /// written in, `+HH:MM` or `-HH:MM` (default `+00:00`, UTC).
    pub rfc3164_utc_offset: Option<String>,
    /// Bytes per batch (one write).
    #[serde(deserialize_with = "crate::util::units::bytes")]
    pub batch_max_bytes: usize,
    /// Milliseconds a non-full batch waits.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub batch_linger_ms: u64,
    /// Connect (and TLS handshake) timeout in milliseconds.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub connect_timeout_ms: u64,
    /// A write stalled this long counts as a dead connection, in milliseconds.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub write_timeout_ms: u64,
    /// First reconnect delay in milliseconds (doubles, with jitter).
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub reconnect_backoff_min_ms: u64,
    /// Largest reconnect delay in milliseconds.
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub reconnect_backoff_max_ms: u64,
    /// Recently written bytes kept for resending after a reconnect (at-least-once).
    #[serde(deserialize_with = "crate::util::units::bytes")]
    pub resend_buffer_bytes: usize,
    /// TCP keepalive idle seconds; 0 turns keepalive off.
    pub keepalive_secs: u64,
    /// Milliseconds to wait after a TLS 1.3 handshake for a rejection by the server (ended
    /// early by a session ticket).
    #[serde(deserialize_with = "crate::util::units::millis")]
    pub tls_probe_ms: u64,
    /// TLS options (`transport = "tls"`).
    pub tls: TlsConfig,
    /// HTTP proxy for TCP/TLS (an HTTP `CONNECT` tunnel; default `HTTPS_PROXY` for TLS,
    /// `HTTP_PROXY` for TCP; never for a loopback receiver unless set here; not for UDP).
    pub proxy: Option<String>,
    /// Hosts never proxied (replaces `NO_PROXY`).
    pub no_proxy: Option<String>,
    /// File holding `user:password` for the proxy.
    pub proxy_credentials_file: Option<std::path::PathBuf>,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            address: String::new(),
            addresses: None,
            mode: Mode::Failover,
            transport: Transport::Tcp,
            framing: None,
            format: Format::Rfc5424,
            hostname: None,
            max_message_bytes: None,
            bom: false,
            rfc3164_utc_offset: None,
            batch_max_bytes: DEFAULT_BATCH_MAX_BYTES,
            batch_linger_ms: DEFAULT_BATCH_LINGER_MS,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            write_timeout_ms: DEFAULT_WRITE_TIMEOUT_MS,
            reconnect_backoff_min_ms: DEFAULT_RECONNECT_BACKOFF_MIN_MS,
            reconnect_backoff_max_ms: DEFAULT_RECONNECT_BACKOFF_MAX_MS,
            resend_buffer_bytes: DEFAULT_RESEND_BUFFER_BYTES,
            keepalive_secs: DEFAULT_KEEPALIVE_SECS,
            tls_probe_ms: DEFAULT_TLS_PROBE_MS,
            tls: TlsConfig::default(),
            proxy: None,
            no_proxy: None,
            proxy_credentials_file: None,
        }
    }
}

/// One receiver address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogAddress {
    /// Host (no brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl SyslogAddress {
    /// `host:port`, `[v6]:port` for IPv6 literals.
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Validated syslog settings.
#[derive(Debug, Clone)]
pub struct SyslogSettings {
    /// Receivers, in configuration order (one for `address`; the primary first).
    pub addresses: Vec<SyslogAddress>,
    /// How several addresses are used.
    pub mode: Mode,
    /// Transport.
    pub transport: Transport,
    /// Framing (`None` for UDP).
    pub framing: Option<Framing>,
    /// Format.
    pub format: Format,
    /// Configured default HOSTNAME (`None` = this machine's, resolved at build).
    pub hostname: Option<String>,
    /// Largest unframed message.
    pub max_message_bytes: usize,
    /// Write the BOM before MSG.
    pub bom: bool,
    /// RFC 3164 offset from UTC in seconds.
    pub rfc3164_offset_secs: i32,
    /// Batch triggers.
    pub batch: BatchConfig,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Write stall timeout.
    pub write_timeout: Duration,
    /// Reconnect backoff bounds.
    pub reconnect_min: Duration,
    /// Reconnect backoff cap.
    pub reconnect_max: Duration,
    /// Resend buffer size.
    pub resend_buffer_bytes: usize,
    /// TCP keepalive idle time.
    pub keepalive: Option<Duration>,
    /// Post-handshake rejection probe.
    pub tls_probe: Duration,
    /// TLS options.
    pub tls: TlsConfig,
    /// Proxy keys (applied by `shipper_net::proxy` when the sink is built).
    pub proxy: shipper_net::proxy::ProxyConfig,
}

impl SyslogConfig {
    /// Checks every value (pure).
    pub fn validate(&self) -> Result<SyslogSettings, ConfigError> {
        let addresses = self.addresses()?;
        let framing = match (self.transport, self.framing) {
            (Transport::Udp, Some(_)) => {
                return Err(ConfigError::new(
                    "framing",
                    "UDP carries one message per datagram: remove `framing`",
                ));
            }
            (Transport::Udp, None) => None,
            (Transport::Tls, Some(Framing::Lf)) => {
                return Err(ConfigError::new(
                    "framing",
                    "syslog over TLS is octet-counted (RFC 5425): remove `framing = \"lf\"`",
                ));
            }
            (_, f) => Some(f.unwrap_or(Framing::OctetCounting)),
        };
        let max_message_bytes = self.max_message_bytes.unwrap_or(match self.transport {
            Transport::Udp => DEFAULT_UDP_MAX_MESSAGE_BYTES,
            _ => DEFAULT_MAX_MESSAGE_BYTES,
        });
        // Room for the longest header: PRI, timestamp, 255+48+128+32 header fields.
        if max_message_bytes < 480 {
            return Err(ConfigError::new(
                "max_message_bytes",
                "must be >= 480 (RFC 5424 §6.1: every receiver takes 480)",
            ));
        }
        if self.transport == Transport::Udp && max_message_bytes > 65_507 {
            return Err(ConfigError::new(
                "max_message_bytes",
                "a UDP datagram holds at most 65507 bytes",
            ));
        }
        if let Some(h) = &self.hostname
            && (h.is_empty() || !h.bytes().all(|b| (33..=126).contains(&b)) || h.len() > 255)
        {
            return Err(ConfigError::new(
                "hostname",
                "must be 1..=255 printable ASCII characters without spaces",
            ));
        }
        let rfc3164_offset_secs = match &self.rfc3164_utc_offset {
            None => 0,
            Some(s) => parse_offset(s).ok_or_else(|| {
                ConfigError::new(
                    "rfc3164_utc_offset",
                    format!("{s:?} is not +HH:MM or -HH:MM"),
                )
            })?,
        };
        for (field, v) in [
            ("batch_max_bytes", self.batch_max_bytes as u64),
            ("batch_linger_ms", self.batch_linger_ms),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("write_timeout_ms", self.write_timeout_ms),
            ("reconnect_backoff_min_ms", self.reconnect_backoff_min_ms),
        ] {
            if v == 0 {
                return Err(ConfigError::new(field, "must be > 0"));
            }
        }
        if self.reconnect_backoff_max_ms < self.reconnect_backoff_min_ms {
            return Err(ConfigError::new(
                "reconnect_backoff_max_ms",
                "must be >= reconnect_backoff_min_ms",
            ));
        }
        self.tls.validate()?;
        Ok(SyslogSettings {
            addresses,
            mode: self.mode,
            transport: self.transport,
            framing,
            format: self.format,
            hostname: self.hostname.clone(),
            max_message_bytes,
            bom: self.bom,
            rfc3164_offset_secs,
            batch: BatchConfig {
                max_bytes: self.batch_max_bytes,
                max_events: usize::MAX,
                linger: Duration::from_millis(self.batch_linger_ms),
            },
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            reconnect_min: Duration::from_millis(self.reconnect_backoff_min_ms),
            reconnect_max: Duration::from_millis(self.reconnect_backoff_max_ms),
            resend_buffer_bytes: self.resend_buffer_bytes,
            keepalive: (self.keepalive_secs > 0).then(|| Duration::from_secs(self.keepalive_secs)),
            tls_probe: Duration::from_millis(self.tls_probe_ms),
            tls: self.tls.clone(),
            proxy: crate::util::proxy_config(
                &self.proxy,
                &self.no_proxy,
                &self.proxy_credentials_file,
            )?,
        })
    }
}

impl SyslogConfig {
    /// `address` or `addresses`, checked: one of the two, a non-empty list, each `host:port`,
    /// none twice, and TCP or TLS for more than one.
    fn addresses(&self) -> Result<Vec<SyslogAddress>, ConfigError> {
        let keys = Keys {
            one: "address",
            many: "addresses",
            example: "[\"siem-a:6514\", \"siem-b:6514\"]",
        };
        let list = one_or_many(
            &keys,
            (&self.address, !self.address.is_empty()),
            self.addresses.as_deref(),
            |a, key| parse_address(a, key),
            |a, b| a == b,
        )?;
        if list.len() > 1 && self.transport == Transport::Udp {
            return Err(ConfigError::new(
                "addresses",
                "UDP sends to one address: use transport = \"tcp\" or \"tls\" for failover or balance",
            ));
        }
        Ok(list)
    }
}

/// Parses `host:port`; errors name `key` (`address` or `addresses[i]`).
fn parse_address(address: &str, key: String) -> Result<SyslogAddress, ConfigError> {
    let bad = || {
        ConfigError::new(
            key.clone(),
            format!("{address:?} is not host:port (use [addr]:port for IPv6)"),
        )
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || host.contains(':') && !address.starts_with('[') {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok(SyslogAddress {
        host: host.to_owned(),
        port,
    })
}

fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(address: &str) -> SyslogConfig {
        SyslogConfig {
            address: address.into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults() {
        let s = cfg("siem:6514").validate().unwrap();
        assert_eq!(s.addresses.len(), 1);
        assert_eq!(
            (s.addresses[0].host.as_str(), s.addresses[0].port),
            ("siem", 6514)
        );
        assert_eq!(s.mode, Mode::Failover);
        assert_eq!(s.framing, Some(Framing::OctetCounting));
        assert_eq!(s.format, Format::Rfc5424);
        assert_eq!(s.max_message_bytes, 8192);
        let s = SyslogConfig {
            transport: Transport::Udp,
            ..cfg("[::1]:514")
        }
        .validate()
        .unwrap();
        assert_eq!(
            (s.addresses[0].host.as_str(), s.framing, s.max_message_bytes),
            ("::1", None, 1400)
        );
    }

    #[test]
    fn invalid_combinations_name_the_field() {
        let e = SyslogConfig {
            transport: Transport::Tls,
            framing: Some(Framing::Lf),
            ..cfg("h:1")
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "framing");
        let e = SyslogConfig {
            transport: Transport::Udp,
            framing: Some(Framing::Lf),
            ..cfg("h:1")
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "framing");
        for bad in ["", "host", "host:0", "host:x", "::1:514"] {
            assert_eq!(cfg(bad).validate().unwrap_err().field, "address", "{bad}");
        }
        let e = SyslogConfig {
            hostname: Some("a b".into()),
            ..cfg("h:1")
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "hostname");
        let e = SyslogConfig {
            max_message_bytes: Some(100),
            ..cfg("h:1")
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "max_message_bytes");
    }

    #[test]
    fn address_lists() {
        let list = |json: &str| {
            serde_json::from_str::<SyslogConfig>(json)
                .unwrap()
                .validate()
        };
        let s = list(r#"{"addresses":["a:6514","[::1]:6514"],"mode":"balance","transport":"tls"}"#)
            .unwrap();
        assert_eq!(
            s.addresses
                .iter()
                .map(SyslogAddress::label)
                .collect::<Vec<_>>(),
            ["a:6514", "[::1]:6514"]
        );
        assert_eq!(s.mode, Mode::Balance);
        for (bad, field, words) in [
            (r#"{"addresses":[]}"#, "addresses", "is empty"),
            (
                r#"{"addresses":["a:1","b"]}"#,
                "addresses[1]",
                "not host:port",
            ),
            (r#"{"addresses":["a:1","a:1"]}"#, "addresses[1]", "twice"),
            (
                r#"{"address":"a:1","addresses":["b:1"]}"#,
                "addresses",
                "not both",
            ),
            (
                r#"{"addresses":["a:1","b:1"],"transport":"udp"}"#,
                "addresses",
                "UDP",
            ),
        ] {
            let e = list(bad).unwrap_err();
            assert_eq!(e.field, field, "{bad}: {e}");
            assert!(e.message.contains(words), "{bad}: {e}");
        }
        let e = serde_json::from_str::<SyslogConfig>(r#"{"addresses":["a:1"],"mode":"random"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("+08:00"), Some(28_800));
        assert_eq!(parse_offset("-05:30"), Some(-19_800));
        for bad in ["08:00", "+8:00", "+24:00", "+08:60", "Z"] {
            assert_eq!(parse_offset(bad), None, "{bad}");
        }
    }
}
