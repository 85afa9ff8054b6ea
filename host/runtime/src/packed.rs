//! A `batch-output` (world `batch-formatter`, docs/plugins.md §12) turned into the per-log
//! results of world `formatter`, so everything past the runtime (output caps, bisection,
//! rendering, event IDs) sees one shape whichever world a plugin exports.
//!
//! The whole point of the batch world is that the guest hands over one byte buffer instead of
//! one string per event; the host still needs owned strings per event, but copying them out
//! of a buffer already in host memory is far cheaper than lifting each one across the
//! component boundary. UTF-8 is checked once over the whole buffer when it is text (the usual
//! case: HEC bodies), and per span only when some raw payload makes it not.
//!
//! The guest is untrusted: a count that does not add up or a span outside the buffer fails
//! the call as a contract breach, like a wrong result count in world `formatter`.

use crate::bindings::shipper::plugin::types::{
    BatchOutput, HecBody, HecEvent, LogOutcome, PackedEmit, PackedPayload, Payload, Span,
};
use crate::bindings::{Emit, RecordError};
use crate::instance::RecordResult;

/// The buffer, with its UTF-8 check done once when the whole of it is text.
struct Data<'a> {
    bytes: &'a [u8],
    text: Option<&'a str>,
}

impl<'a> Data<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            text: std::str::from_utf8(bytes).ok(),
        }
    }

    fn range(&self, span: Span, what: &str) -> Result<std::ops::Range<usize>, String> {
        let start = span.offset as usize;
        let end = start.saturating_add(span.len as usize);
        if end > self.bytes.len() {
            return Err(format!(
                "the {what} span {start}..{end} lies outside its {} data bytes",
                self.bytes.len()
            ));
        }
        Ok(start..end)
    }

    fn bytes(&self, span: Span, what: &str) -> Result<Vec<u8>, String> {
        Ok(self.bytes[self.range(span, what)?].to_vec())
    }

    fn string(&self, span: Span, what: &str) -> Result<String, String> {
        let range = self.range(span, what)?;
        let text = match self.text {
            // `get` refuses a range that splits a character: O(1), no second scan.
            Some(text) => text.get(range.clone()),
            None => std::str::from_utf8(&self.bytes[range.clone()]).ok(),
        };
        text.map(str::to_owned).ok_or_else(|| {
            format!(
                "the {what} span {}..{} is not UTF-8 text",
                range.start, range.end
            )
        })
    }
}

/// Unpacks `output` into exactly `log_count` results, in order. `Err` describes the breach
/// of the contract (wrong outcome count, emit counts that do not add up, a span outside
/// `data` or a text span that is not UTF-8).
pub(crate) fn unpack(output: BatchOutput, log_count: usize) -> Result<Vec<RecordResult>, String> {
    let BatchOutput { logs, emits, data } = output;
    if logs.len() != log_count {
        return Err(format!(
            "it returned {} outcomes for {log_count} logs; a plugin must return exactly one \
             outcome per log, in order (a bug in the plugin or its SDK: report it to the plugin \
             author)",
            logs.len()
        ));
    }
    let claimed: u64 = logs
        .iter()
        .map(|outcome| match outcome {
            LogOutcome::Emits(n) => u64::from(*n),
            LogOutcome::Failed(_) => 0,
        })
        .sum();
    if claimed != emits.len() as u64 {
        return Err(format!(
            "its outcomes claim {claimed} emits but it returned {} (a bug in the plugin or its \
             SDK: report it to the plugin author)",
            emits.len()
        ));
    }
    let data = Data::new(&data);
    let mut emits = emits.into_iter();
    let mut results = Vec::with_capacity(log_count);
    for outcome in logs {
        let result = match outcome {
            LogOutcome::Failed(error) => Err(RecordError {
                kind: error.kind,
                message: error.message,
            }),
            LogOutcome::Emits(n) => {
                let mut out = Vec::with_capacity(n as usize);
                for emit in emits.by_ref().take(n as usize) {
                    out.push(unpack_emit(emit, &data)?);
                }
                Ok(out)
            }
        };
        results.push(result);
    }
    Ok(results)
}

fn unpack_emit(emit: PackedEmit, data: &Data<'_>) -> Result<Emit, String> {
    let payload = match emit.payload {
        PackedPayload::Hec(hec) => {
            let body = data.string(hec.body, "HEC body")?;
            Payload::Hec(HecEvent {
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
        PackedPayload::Raw(span) => Payload::Raw(data.bytes(span, "raw payload")?),
    };
    Ok(Emit {
        route: emit.route,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::shipper::plugin::types::{ErrorKind, PackedHec};

    fn hec(offset: u32, len: u32) -> PackedEmit {
        PackedEmit {
            route: None,
            payload: PackedPayload::Hec(PackedHec {
                body: Span { offset, len },
                json: true,
                time: None,
                host: None,
                source: None,
                sourcetype: None,
                index: None,
                fields: Vec::new(),
            }),
        }
    }

    fn raw(offset: u32, len: u32) -> PackedEmit {
        PackedEmit {
            route: Some("r".into()),
            payload: PackedPayload::Raw(Span { offset, len }),
        }
    }

    fn failed() -> LogOutcome {
        LogOutcome::Failed(RecordError {
            kind: ErrorKind::InvalidInput,
            message: "bad".into(),
        })
    }

    fn body(emit: &Emit) -> &str {
        match &emit.payload {
            Payload::Hec(HecEvent {
                body: HecBody::Json(s),
                ..
            }) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn outcomes_take_their_emits_in_order() {
        let output = BatchOutput {
            logs: vec![
                LogOutcome::Emits(2),
                failed(),
                LogOutcome::Emits(0),
                LogOutcome::Emits(1),
            ],
            emits: vec![hec(0, 2), hec(2, 3), raw(5, 1)],
            data: b"{}[1]\xff".to_vec(),
        };
        let results = unpack(output, 4).unwrap();
        let first = results[0].as_ref().unwrap();
        assert_eq!((body(&first[0]), body(&first[1])), ("{}", "[1]"));
        assert_eq!(results[1].as_ref().unwrap_err().message, "bad");
        assert!(results[2].as_ref().unwrap().is_empty());
        // A raw payload need not be text (and makes the buffer not text as a whole, which
        // the HEC bodies before it survive).
        let last = &results[3].as_ref().unwrap()[0];
        assert!(matches!(&last.payload, Payload::Raw(b) if b == &[0xff]));
        assert_eq!(last.route.as_deref(), Some("r"));
    }

    #[test]
    fn a_broken_contract_is_an_error_not_a_panic() {
        let one = |logs, emits, data: &[u8]| {
            unpack(
                BatchOutput {
                    logs,
                    emits,
                    data: data.to_vec(),
                },
                1,
            )
            .unwrap_err()
        };
        let e = one(vec![], vec![], b"");
        assert!(e.contains("0 outcomes for 1 logs"), "{e}");
        let e = one(vec![LogOutcome::Emits(2)], vec![hec(0, 0)], b"");
        assert!(e.contains("claim 2 emits but it returned 1"), "{e}");
        let e = one(vec![LogOutcome::Emits(1)], vec![hec(1, u32::MAX)], b"ab");
        assert!(e.contains("outside its 2 data bytes"), "{e}");
        // A span that splits a character of an otherwise valid buffer.
        let e = one(vec![LogOutcome::Emits(1)], vec![hec(0, 1)], "é".as_bytes());
        assert!(e.contains("not UTF-8"), "{e}");
        let e = one(vec![LogOutcome::Emits(1)], vec![hec(0, 1)], b"\xff");
        assert!(e.contains("not UTF-8"), "{e}");
    }
}
