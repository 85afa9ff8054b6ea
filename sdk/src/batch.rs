//! The batch world (`batch-formatter`, since WIT 0.1.1): a whole `process-batch` call's
//! output in one [`EmitBuffer`], every HEC body and raw payload in one byte buffer, so the
//! host lifts one list of bytes instead of one string per event (docs/plugins.md §12).
//!
//! [`Plugin::format_into`](crate::Plugin::format_into) writes into the buffer; its default
//! packs what [`Plugin::format`](crate::Plugin::format) returns, so every plugin works in
//! either world with the same output. A plugin overrides it to write its event text straight
//! into the buffer ([`EmitBuffer::push_hec_body`]) and skip one allocation per event on both
//! sides of the boundary.

use crate::{Emit, HecBody, Payload, RecordError};

pub use crate::bindings::shipper::plugin::types::{
    BatchOutput, LogOutcome, PackedEmit, PackedHec, PackedPayload, Span,
};

/// The output of one `process-batch` call under construction.
///
/// Text (HEC bodies) goes into a `String`, so a plugin can write JSON into it with the
/// usual `&mut String` writers; raw payloads, which need not be UTF-8, go into a byte buffer
/// appended after the text at [`EmitBuffer::finish`].
#[derive(Debug, Default)]
pub struct EmitBuffer {
    text: String,
    raw: Vec<u8>,
    emits: Vec<PackedEmit>,
    /// Indices in `emits` of the raw payloads, whose offsets are shifted at `finish`.
    raw_emits: Vec<usize>,
    logs: Vec<LogOutcome>,
    /// `emits.len()` when the current log started.
    log_start: usize,
}

/// A position to roll back to when a log fails half-way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    text: usize,
    raw: usize,
    emits: usize,
    raw_emits: usize,
}

fn span(offset: usize, len: usize) -> Span {
    // Both fit: a component's memory is at most 4 GiB.
    Span {
        offset: offset as u32,
        len: len as u32,
    }
}

impl EmitBuffer {
    /// An empty buffer with room for about `bytes` of event text.
    pub fn with_capacity(logs: usize, bytes: usize) -> Self {
        Self {
            text: String::with_capacity(bytes),
            emits: Vec::with_capacity(logs),
            logs: Vec::with_capacity(logs),
            ..Self::default()
        }
    }

    /// Appends an HEC event whose body `write` appends to the given `String` (which holds
    /// the text written so far: append only). `json`: the body is the text of one JSON value
    /// (`hec-body::json`), otherwise plain text. Returns the event to set its time and
    /// metadata on.
    pub fn push_hec_body(&mut self, json: bool, write: impl FnOnce(&mut String)) -> &mut PackedHec {
        let start = self.text.len();
        write(&mut self.text);
        let body = span(start, self.text.len() - start);
        self.emits.push(PackedEmit {
            route: None,
            payload: PackedPayload::Hec(PackedHec {
                body,
                json,
                time: None,
                host: None,
                source: None,
                sourcetype: None,
                index: None,
                fields: Vec::new(),
            }),
        });
        let Some(PackedEmit {
            payload: PackedPayload::Hec(hec),
            ..
        }) = self.emits.last_mut()
        else {
            unreachable!("just pushed an HEC emit")
        };
        hec
    }

    /// Appends one emit as [`Plugin::format`](crate::Plugin::format) returns it.
    pub fn push(&mut self, emit: Emit) {
        let payload = match emit.payload {
            Payload::Hec(event) => {
                let (json, body) = match event.body {
                    HecBody::Json(s) => (true, s),
                    HecBody::Text(s) => (false, s),
                };
                let start = self.text.len();
                self.text.push_str(&body);
                PackedPayload::Hec(PackedHec {
                    body: span(start, body.len()),
                    json,
                    time: event.time,
                    host: event.host,
                    source: event.source,
                    sourcetype: event.sourcetype,
                    index: event.index,
                    fields: event.fields,
                })
            }
            Payload::Syslog(message) => PackedPayload::Syslog(message),
            Payload::Raw(bytes) => {
                self.raw_emits.push(self.emits.len());
                let start = self.raw.len();
                self.raw.extend_from_slice(&bytes);
                PackedPayload::Raw(span(start, bytes.len()))
            }
        };
        self.emits.push(PackedEmit {
            route: emit.route,
            payload,
        });
    }

    /// Sets the route of the emit pushed last (`none` = the default sink).
    pub fn route_last(&mut self, route: impl Into<String>) {
        if let Some(emit) = self.emits.last_mut() {
            emit.route = Some(route.into());
        }
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            text: self.text.len(),
            raw: self.raw.len(),
            emits: self.emits.len(),
            raw_emits: self.raw_emits.len(),
        }
    }

    /// Ends the current log: `Ok` keeps what it pushed, `Err` drops it (back to `mark`) and
    /// records the error.
    pub(crate) fn end_log(&mut self, mark: Mark, result: Result<(), RecordError>) {
        match result {
            Ok(()) => {
                let count = self.emits.len() - self.log_start;
                self.logs.push(LogOutcome::Emits(count as u32));
            }
            Err(error) => {
                self.text.truncate(mark.text);
                self.raw.truncate(mark.raw);
                self.emits.truncate(mark.emits);
                self.raw_emits.truncate(mark.raw_emits);
                self.logs.push(LogOutcome::Failed(error));
            }
        }
        self.log_start = self.emits.len();
    }

    /// The packed output: the text, then the raw payloads (their spans shifted past the text).
    pub fn finish(self) -> BatchOutput {
        let Self {
            text,
            raw,
            mut emits,
            raw_emits,
            logs,
            ..
        } = self;
        let shift = text.len() as u32;
        for index in raw_emits {
            if let PackedPayload::Raw(span) = &mut emits[index].payload {
                span.offset += shift;
            }
        }
        let mut data = text.into_bytes();
        data.extend_from_slice(&raw);
        BatchOutput { logs, emits, data }
    }
}

/// The per-log results a [`BatchOutput`] stands for, as world `formatter` returns them (what
/// the host makes of it; for native tests). Panics on an output that breaks the contract.
pub fn unpack(output: BatchOutput) -> Vec<Result<Vec<Emit>, RecordError>> {
    let BatchOutput { logs, emits, data } = output;
    let mut emits = emits.into_iter();
    let bytes = |s: Span| data[s.offset as usize..(s.offset + s.len) as usize].to_vec();
    logs.into_iter()
        .map(|outcome| match outcome {
            LogOutcome::Failed(error) => Err(error),
            LogOutcome::Emits(n) => Ok(emits
                .by_ref()
                .take(n as usize)
                .map(|emit| Emit {
                    route: emit.route,
                    payload: match emit.payload {
                        PackedPayload::Hec(hec) => {
                            let body = String::from_utf8(bytes(hec.body)).expect("UTF-8 body");
                            Payload::Hec(crate::HecEvent {
                                body: if hec.json {
                                    HecBody::Json(body)
                                } else {
                                    HecBody::Text(body)
                                },
                                time: hec.time,
                                host: hec.host,
                                source: hec.source,
                                sourcetype: hec.sourcetype,
                                index: hec.index,
                                fields: hec.fields,
                            })
                        }
                        PackedPayload::Syslog(message) => Payload::Syslog(message),
                        PackedPayload::Raw(span) => Payload::Raw(bytes(span)),
                    },
                })
                .collect()),
        })
        .collect()
}
