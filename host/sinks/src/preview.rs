//! What a sink would send for one payload, rendered without a connection and without framing:
//! `shipper plugin test` prints this, so plugin golden files pin the sinks' real bytes (one
//! renderer, not a copy of it).

use crate::error::RenderError;
use crate::payload::{Payload, Timestamp};
use crate::syslog::Format;

/// How syslog payloads are previewed.
#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// RFC 5424 or RFC 3164.
    pub format: Format,
    /// HOSTNAME for messages that carry none.
    pub hostname: String,
    /// RFC 3164 has no NILVALUE for the time: messages without one get this time, so the
    /// preview is reproducible (a live sink uses the current time).
    pub fallback_time: Timestamp,
}

/// Appends one line for `payload` (with its `\n`): the HEC envelope as sent to `/event`, the
/// syslog message without octet-count or LF framing, or the raw bytes (lossy UTF-8).
pub fn render_line(
    payload: &Payload,
    opts: &PreviewOptions,
    out: &mut Vec<u8>,
) -> Result<(), RenderError> {
    match payload {
        Payload::Hec(event) => crate::hec::render_event_line(event, out),
        Payload::Syslog(msg) => {
            let mut msg = msg.clone();
            if opts.format == Format::Rfc3164 && msg.timestamp.is_none() {
                msg.timestamp = Some(opts.fallback_time);
            }
            crate::syslog::render_unframed(&msg, opts.format, &opts.hostname, out)?;
        }
        Payload::Raw(bytes) => out.extend_from_slice(String::from_utf8_lossy(bytes).as_bytes()),
    }
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    Ok(())
}
