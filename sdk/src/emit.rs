//! Builders for what a plugin returns: [`Emit`], [`HecEvent`], [`SyslogMessage`],
//! [`SdElement`] and [`RecordError`]. They are the WIT types themselves (no conversion on
//! the way out), with constructors and `with_*` methods added here.
//!
//! Does not own: rendering. The host renders HEC envelopes and syslog lines (escaping, length
//! limits, header sanitising); a plugin states what to send.

use crate::{
    Emit, ErrorKind, Field, HecBody, HecEvent, Payload, RecordError, SdElement, Severity,
    SyslogMessage, Timestamp,
};

impl Emit {
    /// An HEC event for the default sink.
    #[inline]
    pub fn hec(event: HecEvent) -> Self {
        Self {
            route: None,
            payload: Payload::Hec(event),
        }
    }

    /// A syslog message for the default sink.
    #[inline]
    pub fn syslog(message: SyslogMessage) -> Self {
        Self {
            route: None,
            payload: Payload::Syslog(message),
        }
    }

    /// Pre-rendered bytes (an HEC `/raw` line, or a syslog payload the host only frames).
    #[inline]
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            route: None,
            payload: Payload::Raw(bytes.into()),
        }
    }

    /// Sends this emit to the sink named `route` in shipper's config instead of the default.
    #[inline]
    pub fn with_route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }
}

impl From<HecEvent> for Emit {
    fn from(event: HecEvent) -> Self {
        Emit::hec(event)
    }
}

impl From<SyslogMessage> for Emit {
    fn from(message: SyslogMessage) -> Self {
        Emit::syslog(message)
    }
}

impl HecEvent {
    fn with_body(body: HecBody) -> Self {
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

    /// An event whose body is the JSON text `json` (inserted verbatim into the envelope;
    /// it must be valid JSON, normally an object). Everything else unset.
    #[inline]
    pub fn json(json: String) -> Self {
        Self::with_body(HecBody::Json(json))
    }

    /// An event whose body is `text` (the host writes it as a JSON string).
    #[inline]
    pub fn text(text: String) -> Self {
        Self::with_body(HecBody::Text(text))
    }

    /// Sets the event time.
    #[inline]
    pub fn with_time(mut self, time: Timestamp) -> Self {
        self.time = Some(time);
        self
    }

    /// Sets HEC `host`.
    #[inline]
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Sets HEC `source`.
    #[inline]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets HEC `sourcetype`.
    #[inline]
    pub fn with_sourcetype(mut self, sourcetype: impl Into<String>) -> Self {
        self.sourcetype = Some(sourcetype.into());
        self
    }

    /// Sets HEC `index`.
    #[inline]
    pub fn with_index(mut self, index: impl Into<String>) -> Self {
        self.index = Some(index.into());
        self
    }

    /// Adds an index-time field (HEC `fields`).
    #[inline]
    pub fn with_field(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push(Field {
            key: key.into(),
            value: value.into(),
        });
        self
    }
}

impl SyslogMessage {
    /// A `user.info` message with text `msg` and every header field unset (the host fills
    /// in its defaults).
    #[inline]
    pub fn new(msg: String) -> Self {
        Self {
            facility: crate::syslog::DEFAULT_FACILITY,
            severity: Severity::Informational,
            timestamp: None,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            structured_data: Vec::new(),
            msg,
        }
    }

    /// Sets the facility (0..=23; see [`crate::syslog::facility_from_name`]).
    #[inline]
    pub fn with_facility(mut self, facility: u8) -> Self {
        self.facility = facility;
        self
    }

    /// Sets the severity.
    #[inline]
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Sets the message time.
    #[inline]
    pub fn with_timestamp(mut self, timestamp: Timestamp) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Sets HOSTNAME.
    #[inline]
    pub fn with_hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Sets APP-NAME (the RFC 3164 TAG).
    #[inline]
    pub fn with_app_name(mut self, app_name: impl Into<String>) -> Self {
        self.app_name = Some(app_name.into());
        self
    }

    /// Sets PROCID.
    #[inline]
    pub fn with_proc_id(mut self, proc_id: impl Into<String>) -> Self {
        self.proc_id = Some(proc_id.into());
        self
    }

    /// Sets MSGID.
    #[inline]
    pub fn with_msg_id(mut self, msg_id: impl Into<String>) -> Self {
        self.msg_id = Some(msg_id.into());
        self
    }

    /// Adds a structured-data element.
    #[inline]
    pub fn with_sd(mut self, element: SdElement) -> Self {
        self.structured_data.push(element);
        self
    }
}

impl SdElement {
    /// An element `[id]` without parameters.
    #[inline]
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            params: Vec::new(),
        }
    }

    /// Adds `name="value"` (the host escapes the value).
    #[inline]
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push(Field {
            key: name.into(),
            value: value.into(),
        });
        self
    }
}

impl RecordError {
    /// The log lacks something the plugin needs or holds a value it cannot parse.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    /// The log is of a kind this plugin does not handle.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Unsupported,
            message: message.into(),
        }
    }

    /// A bug or an unexpected state inside the plugin.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Internal,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal error",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for RecordError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_fill_the_wit_records() {
        let ev = HecEvent::json("{}".into())
            .with_time(Timestamp {
                seconds: 1,
                nanos: 2,
            })
            .with_source("s")
            .with_sourcetype("st")
            .with_index("i")
            .with_host("h")
            .with_field("k", "v");
        let e = Emit::hec(ev).with_route("splunk-b");
        assert_eq!(e.route.as_deref(), Some("splunk-b"));
        let Payload::Hec(ev) = e.payload else {
            panic!("not hec")
        };
        assert!(matches!(ev.body, HecBody::Json(ref s) if s == "{}"));
        assert_eq!(ev.fields.len(), 1);
        assert_eq!(ev.index.as_deref(), Some("i"));

        let m = SyslogMessage::new("hi".into())
            .with_facility(16)
            .with_severity(Severity::Error)
            .with_app_name("app")
            .with_sd(SdElement::new("origin").with_param("ip", "1.2.3.4"));
        assert_eq!(m.facility, 16);
        assert_eq!(m.structured_data[0].params[0].value, "1.2.3.4");
        assert_eq!(
            RecordError::invalid_input("no field x").to_string(),
            "invalid input: no field x"
        );
    }
}
