//! The crate's error types: [`SinkError`] (delivery and start-up), [`RenderError`] (one
//! payload could not be rendered; the pipeline dead-letters that log) and [`ConfigError`]
//! (validation, names the field). Retry decisions are not made here: `hec/response.rs`
//! classifies HEC answers and `util/retry.rs` owns the backoff.

use std::borrow::Cow;
use std::time::Duration;

/// Which side a [`SinkError`] is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Our configuration or environment (token, URL, certificate files).
    Client,
    /// The receiver or the network in between.
    Server,
}

/// What kind of failure a [`SinkError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// The receiver refused the data for good.
    Rejected,
    /// The receiver could not be reached or was busy (retryable).
    Unavailable,
    /// Wrong configuration: bad token, wrong URL, not an HEC endpoint. Not dropped: the
    /// sink keeps retrying slowly until it clears.
    Config,
    /// TLS set-up or handshake failed (bad CA, hostname mismatch, client cert rejected).
    Tls,
}

/// A sink failure that an operator may need to see. Messages say what failed and what to do.
#[derive(Debug, thiserror::Error)]
#[error("sink `{sink}`: {message}")]
pub struct SinkError {
    /// The sink's name from the config.
    pub sink: String,
    /// What kind of failure.
    pub kind: SinkErrorKind,
    /// Which side caused it.
    pub side: Side,
    /// What failed and what to do.
    pub message: String,
    /// Server-requested delay before retrying (HTTP `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl SinkError {
    /// A configuration error (client side).
    pub fn config(sink: &str, message: impl Into<String>) -> Self {
        Self::new(sink, SinkErrorKind::Config, Side::Client, message)
    }

    /// A TLS error; `side` says whether our files or the server's answer caused it.
    pub fn tls(sink: &str, side: Side, message: impl Into<String>) -> Self {
        Self::new(sink, SinkErrorKind::Tls, side, message)
    }

    /// The receiver is unreachable or busy.
    pub fn unavailable(sink: &str, message: impl Into<String>) -> Self {
        Self::new(sink, SinkErrorKind::Unavailable, Side::Server, message)
    }

    /// The receiver refused the data.
    pub fn rejected(sink: &str, message: impl Into<String>) -> Self {
        Self::new(sink, SinkErrorKind::Rejected, Side::Server, message)
    }

    fn new(sink: &str, kind: SinkErrorKind, side: Side, message: impl Into<String>) -> Self {
        Self {
            sink: sink.to_owned(),
            kind,
            side,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Whether retrying later can succeed without an operator changing something.
    pub fn is_retryable(&self) -> bool {
        self.kind == SinkErrorKind::Unavailable
    }
}

/// One payload could not be rendered; the batch is unchanged and the pipeline dead-letters
/// the log with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The rendered event exceeds the sink's per-event limit.
    #[error(
        "rendered event is {size} bytes, over this sink's limit of {limit} bytes (`max_event_bytes` / `max_message_bytes`)"
    )]
    TooLarge {
        /// Rendered size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The payload kind does not fit this sink (e.g. a syslog message routed to HEC).
    #[error("a {payload} payload cannot be sent to a {sink} sink: check the plugin's route")]
    WrongPayload {
        /// Payload kind.
        payload: &'static str,
        /// Sink kind.
        sink: &'static str,
    },
    /// Syslog facility outside 0..=23.
    #[error("syslog facility {0} is out of range 0..=23")]
    Facility(u8),
    /// An SD-ID or PARAM-NAME RFC 5424 forbids (empty, over 32 chars, or `= ] "`, space,
    /// non-printable), or an SD-ID used twice.
    #[error("invalid structured data: {0}")]
    StructuredData(String),
}

/// A config value is invalid. `field` is the config key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid sink setting `{field}`: {message}")]
pub struct ConfigError {
    /// The config key, e.g. `endpoint`, `tls.key_file` or `endpoints[2]` (a list element).
    pub field: Cow<'static, str>,
    /// What is wrong and what is expected.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
