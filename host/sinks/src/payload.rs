//! The sink's payload model. It mirrors the WIT types of `wit/shipper.wit` field for field, so
//! `host/app` converts the runtime's bindgen values into these by moving strings, not copying.
//! Rendering (envelope, header, escaping) lives in `hec/request.rs` and `syslog/render.rs`.

/// A point in time: seconds since the Unix epoch plus nanoseconds (WIT `timestamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub seconds: i64,
    /// Nanoseconds within the second, 0..=999_999_999 (larger values are clamped).
    pub nanos: u32,
}

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
        }
    }
}

/// A key/value pair (WIT `field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

impl Field {
    /// Convenience constructor.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Syslog severity (RFC 5424 §6.2.1), most severe first (WIT `severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// 0
    Emergency,
    /// 1
    Alert,
    /// 2
    Critical,
    /// 3
    Error,
    /// 4
    Warning,
    /// 5
    Notice,
    /// 6
    Informational,
    /// 7
    Debug,
}

impl Severity {
    /// The numeric severity, 0..=7.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The `event` of an HEC envelope (WIT `hec-body`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HecBody {
    /// Plain text, JSON-escaped into a JSON string.
    Text(String),
    /// The text of one JSON value, inserted verbatim (Splunk rejects invalid JSON; the event
    /// then comes back as a [`crate::Rejection`]).
    Json(String),
}

/// One Splunk HEC event (WIT `hec-event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HecEvent {
    /// The event itself.
    pub body: HecBody,
    /// Event time; `None` lets Splunk use the time of receipt.
    pub time: Option<Timestamp>,
    /// HEC `host`.
    pub host: Option<String>,
    /// HEC `source`.
    pub source: Option<String>,
    /// HEC `sourcetype`.
    pub sourcetype: Option<String>,
    /// HEC `index`.
    pub index: Option<String>,
    /// Index-time fields, flat string values.
    pub fields: Vec<Field>,
}

impl HecEvent {
    /// An event with only a body.
    pub fn new(body: HecBody) -> Self {
        Self {
            body,
            time: None,
            host: None,
            source: None,
            sourcetype: None,
            index: None,
            fields: Vec::new(),
        }
    }
}

/// One RFC 5424 structured-data element (WIT `sd-element`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdElement {
    /// SD-ID, e.g. `origin` or `sls@32473`.
    pub id: String,
    /// PARAM-NAME / PARAM-VALUE pairs, in order.
    pub params: Vec<Field>,
}

/// One syslog message (WIT `syslog-message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogMessage {
    /// Facility 0..=23.
    pub facility: u8,
    /// Severity.
    pub severity: Severity,
    /// Message time; `None` renders the NILVALUE (RFC 3164: the time of rendering).
    pub timestamp: Option<Timestamp>,
    /// HOSTNAME; `None` = the sink's configured hostname.
    pub hostname: Option<String>,
    /// APP-NAME (RFC 3164: the TAG).
    pub app_name: Option<String>,
    /// PROCID.
    pub proc_id: Option<String>,
    /// MSGID (RFC 5424 only).
    pub msg_id: Option<String>,
    /// Structured data (RFC 5424 only).
    pub structured_data: Vec<SdElement>,
    /// The message text.
    pub msg: String,
}

impl SyslogMessage {
    /// A user.info message with only a text.
    pub fn new(msg: impl Into<String>) -> Self {
        Self {
            facility: 1,
            severity: Severity::Informational,
            timestamp: None,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            structured_data: Vec::new(),
            msg: msg.into(),
        }
    }
}

/// What one emit carries (WIT `payload`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A Splunk HEC event (to an HEC sink).
    Hec(HecEvent),
    /// A syslog message (to a syslog sink).
    Syslog(SyslogMessage),
    /// Pre-rendered bytes: an HEC `/raw` line, or a syslog message the host only frames.
    Raw(Vec<u8>),
}

impl Payload {
    /// The variant's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Hec(_) => "hec",
            Payload::Syslog(_) => "syslog",
            Payload::Raw(_) => "raw",
        }
    }
}
