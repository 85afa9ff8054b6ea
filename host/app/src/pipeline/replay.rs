//! What a replay changes in the shard pipeline (`shipper replay`, `shipper dead-letter
//! replay`; docs/replay.md): a marker on every event, so a SIEM can tell a replayed event
//! from its original (they carry the same event ID), and optionally a filter on the log's
//! own `__time__`.
//!
//! Both act after the plugin, per log, so a replayed log keeps its LogGroup cursor and its
//! index in the group: the event ID (built from those, [`super::event_id`]) is the
//! original's.

use std::ops::Range;
use std::sync::Arc;

use shipper_sinks::{Field, Payload, SdElement};

use shipper_sls::cursor::Cursor;

use super::event_id::DEFAULT_SD_ID;

/// Default HEC indexed field / syslog PARAM-NAME of the marker.
pub const DEFAULT_MARKER_FIELD: &str = "shipper_replay";

/// Replay settings of a shard pipeline; `None` in [`super::PipelineOptions`] for `shipper
/// run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOptions {
    /// The marker every event gets, unless `None` (`--no-marker`).
    pub marker: Option<ReplayMarker>,
    /// Only logs whose `__time__` (unix s) is in this range are sent; the others count as
    /// dropped (`--filter-log-time`).
    pub log_time: Option<Range<u32>>,
    /// `shipper dead-letter replay`: the shard reads made-up LogGroups, one per dead-letter
    /// entry, LogGroup `k` at cursor `k`; entry `k`'s original position is `originals[k]`.
    /// Event IDs and new dead-letter entries use it, so both name the log as SLS holds it.
    pub originals: Option<Arc<Vec<OriginalPosition>>>,
}

/// Where a re-driven log was in SLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalPosition {
    /// SLS project.
    pub project: String,
    /// SLS logstore.
    pub logstore: String,
    /// Shard id.
    pub shard: u32,
    /// Its LogGroup's cursor.
    pub cursor: Cursor,
    /// Its index in the LogGroup.
    pub log_index: u32,
}

impl ReplayOptions {
    /// The original position of the (only) log of the group at `cursor`, when the shard
    /// reads re-driven dead letters.
    pub fn original(&self, cursor: Cursor) -> Option<&OriginalPosition> {
        self.originals
            .as_ref()?
            .get(usize::try_from(cursor.0).ok()?)
    }
}

/// The marker: `key = value` as an HEC indexed field, or as a PARAM of an RFC 5424
/// structured-data element in syslog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayMarker {
    /// HEC field key / syslog PARAM-NAME.
    pub key: String,
    /// The replay's id.
    pub value: String,
}

/// How [`ReplayMarker::attach`] changed a payload, for [`ReplayMarker::detach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// Nothing (a raw payload has no place for it).
    Nothing,
    /// A field or an SD element was pushed.
    Pushed,
    /// A PARAM was pushed onto the last SD element (the event ID's).
    Param,
}

impl ReplayMarker {
    /// Puts the marker into `payload`. With syslog, when the event ID's element is already
    /// there (`with_event_id`) the marker joins it as a second PARAM: RFC 5424 §6.3.2 lets
    /// an SD-ID appear only once per message; otherwise it gets its own element with the
    /// default SD-ID ([`DEFAULT_SD_ID`]).
    pub fn attach(&self, payload: &mut Payload, with_event_id: bool) -> Attached {
        let field = Field {
            key: self.key.clone(),
            value: self.value.clone(),
        };
        match payload {
            Payload::Hec(e) => {
                e.fields.push(field);
                Attached::Pushed
            }
            Payload::Syslog(m) => match m.structured_data.last_mut() {
                Some(sd) if with_event_id => {
                    sd.params.push(field);
                    Attached::Param
                }
                _ => {
                    m.structured_data.push(SdElement {
                        id: DEFAULT_SD_ID.to_owned(),
                        params: vec![field],
                    });
                    Attached::Pushed
                }
            },
            Payload::Raw(_) => Attached::Nothing,
        }
    }

    /// Undoes [`Self::attach`], so one payload can be rendered for several sinks.
    pub fn detach(payload: &mut Payload, how: Attached) {
        match (payload, how) {
            (_, Attached::Nothing) => {}
            (Payload::Hec(e), _) => {
                e.fields.pop();
            }
            (Payload::Syslog(m), Attached::Pushed) => {
                m.structured_data.pop();
            }
            (Payload::Syslog(m), Attached::Param) => {
                if let Some(sd) = m.structured_data.last_mut() {
                    sd.params.pop();
                }
            }
            (Payload::Raw(_), _) => {}
        }
    }
}

/// Checks a marker key: it must be a valid HEC field name and RFC 5424 PARAM-NAME (1–32
/// printable ASCII characters, none of `= ] "` or space).
pub fn check_marker_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 32
        && key
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'=' | b']' | b'"'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "marker field {key:?} must be 1 to 32 printable ASCII characters without spaces, `=`, `]` or `\"` (it is an HEC field name and a syslog PARAM-NAME)"
        ))
    }
}

/// Which logs of a LogGroup are outside `window` by their `__time__` (`true`: skip it).
/// A group that cannot be decoded skips nothing: the plugin reports it as usual.
pub fn outside_window(group: &shipper_sls::proto::LogGroupView, window: &Range<u32>) -> Vec<bool> {
    match group.decode() {
        Ok(g) => g.logs.iter().map(|l| !window.contains(&l.time)).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use shipper_sinks::{HecBody, HecEvent, SyslogMessage};

    use super::*;

    fn marker() -> ReplayMarker {
        ReplayMarker {
            key: "shipper_replay".into(),
            value: "r1".into(),
        }
    }

    #[test]
    fn hec_gets_an_indexed_field_and_loses_it_again() {
        let plain = Payload::Hec(HecEvent::new(HecBody::Text("t".into())));
        let mut p = plain.clone();
        let how = marker().attach(&mut p, false);
        let Payload::Hec(e) = &p else { panic!() };
        assert_eq!(e.fields, [Field::new("shipper_replay", "r1")]);
        ReplayMarker::detach(&mut p, how);
        assert_eq!(p, plain);
    }

    #[test]
    fn syslog_joins_the_event_id_element_or_gets_its_own() {
        let mut with_id = Payload::Syslog(SyslogMessage::new("m"));
        let Payload::Syslog(m) = &mut with_id else {
            panic!()
        };
        m.structured_data.push(SdElement {
            id: "acme@1".into(),
            params: vec![Field::new("id", "abc")],
        });
        let before = with_id.clone();
        let how = marker().attach(&mut with_id, true);
        let Payload::Syslog(m) = &with_id else {
            panic!()
        };
        assert_eq!(m.structured_data.len(), 1, "one SD-ID once per message");
        assert_eq!(
            m.structured_data[0].params,
            [Field::new("id", "abc"), Field::new("shipper_replay", "r1")]
        );
        ReplayMarker::detach(&mut with_id, how);
        assert_eq!(with_id, before);

        let mut plain = Payload::Syslog(SyslogMessage::new("m"));
        let how = marker().attach(&mut plain, false);
        let Payload::Syslog(m) = &plain else { panic!() };
        assert_eq!(m.structured_data[0].id, DEFAULT_SD_ID);
        ReplayMarker::detach(&mut plain, how);
        assert_eq!(plain, Payload::Syslog(SyslogMessage::new("m")));
        let mut raw = Payload::Raw(b"r".to_vec());
        assert_eq!(marker().attach(&mut raw, false), Attached::Nothing);
    }

    #[test]
    fn marker_keys_are_checked() {
        assert!(check_marker_key("shipper_replay").is_ok());
        for bad in ["", "a b", "a=b", "a]", "x\"", &"k".repeat(33)] {
            assert!(check_marker_key(bad).is_err(), "{bad:?}");
        }
    }
}
