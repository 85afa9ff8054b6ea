//! Event identity (`event_id = true`): a stable ID on every event, so a SIEM can drop the
//! duplicates at-least-once delivery makes after a crash (the batches in flight are sent
//! again by whoever reads the shard next).
//!
//! The host builds the ID from where the event came from, never from its content: project,
//! logstore, shard, the cursor of the log's LogGroup (cursors are positions: a replay from a
//! checkpoint reads the same LogGroup at the same cursor), the log's index in its LogGroup,
//! and the index of the event among the emits the plugin made of that log. The same log
//! formatted again after a restart gets the same ID; two different logs never share one.
//! The ID is the first 128 bits of a SHA-256 over those six values, in hex (32 characters):
//! fixed-size, safe in any field or structured-data value, and it does not leak names.
//!
//! Where it goes: an HEC event gets it as an indexed field (`fields`, key
//! `event_id_field`), a syslog message as an RFC 5424 structured-data element
//! `[<event_id_sd_id> id="…"]`. A raw payload carries none: its bytes are the plugin's.
//! Plugins do not see the ID (the WIT is unchanged). docs/rendering.md §3.14 and §4.7 show
//! it on the wire.

use sha2::{Digest as _, Sha256};
use shipper_sinks::{Field, Payload, SdElement};
use shipper_sls::cursor::Cursor;

/// Indexed field of the ID in HEC events, unless `event_id_field` says otherwise.
pub const DEFAULT_HEC_FIELD: &str = "shipper_event_id";
/// SD-ID of the element that carries the ID in syslog messages, unless `event_id_sd_id`
/// says otherwise. 32473 is the Private Enterprise Number RFC 5612 reserves for
/// documentation; deployments should use their own.
pub const DEFAULT_SD_ID: &str = "shipper@32473";
/// PARAM-NAME of the ID inside the structured-data element.
pub const SD_PARAM: &str = "id";

/// Where a sink puts the ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventIdSettings {
    /// HEC: the indexed field.
    pub hec_field: String,
    /// Syslog: the SD-ID.
    pub sd_id: String,
}

/// The IDs of one LogGroup's events: the hash state over the LogGroup's place, cloned per
/// event.
#[derive(Clone)]
pub struct GroupIds {
    prefix: Sha256,
}

impl GroupIds {
    /// The LogGroup at `cursor` of `shard` of `project/logstore`.
    pub fn new(project: &str, logstore: &str, shard: u32, cursor: Cursor) -> Self {
        let mut h = Sha256::new();
        for s in [project, logstore] {
            h.update((s.len() as u32).to_le_bytes());
            h.update(s.as_bytes());
        }
        h.update(shard.to_le_bytes());
        h.update(cursor.0.to_le_bytes());
        Self { prefix: h }
    }

    /// The ID of emit `emit` of log `log`.
    pub fn id(&self, log: u32, emit: u32) -> String {
        let mut h = self.prefix.clone();
        h.update(log.to_le_bytes());
        h.update(emit.to_le_bytes());
        hex::encode(&h.finalize()[..16])
    }
}

impl EventIdSettings {
    /// Puts `id` into `payload`; returns whether it did (raw payloads have no place for
    /// it). [`Self::detach`] takes it out again, so one payload can be rendered for several
    /// sinks.
    pub fn attach(&self, payload: &mut Payload, id: String) -> bool {
        match payload {
            Payload::Hec(e) => {
                e.fields.push(Field {
                    key: self.hec_field.clone(),
                    value: id,
                });
                true
            }
            Payload::Syslog(m) => {
                m.structured_data.push(SdElement {
                    id: self.sd_id.clone(),
                    params: vec![Field {
                        key: SD_PARAM.to_owned(),
                        value: id,
                    }],
                });
                true
            }
            Payload::Raw(_) => false,
        }
    }

    /// Undoes [`Self::attach`].
    pub fn detach(payload: &mut Payload) {
        match payload {
            Payload::Hec(e) => {
                e.fields.pop();
            }
            Payload::Syslog(m) => {
                m.structured_data.pop();
            }
            Payload::Raw(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use shipper_sinks::{HecBody, HecEvent, SyslogMessage};

    use super::*;

    #[test]
    fn ids_are_stable_and_tell_every_coordinate_apart() {
        let g = GroupIds::new("p", "ls", 3, Cursor(1_000));
        let id = g.id(5, 0);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            id,
            GroupIds::new("p", "ls", 3, Cursor(1_000)).id(5, 0),
            "stable"
        );
        // Pinned: changing the recipe would make every replay after an upgrade look new.
        assert_eq!(id, "c76ed171ec8a4bb159849de60df09d08");
        let mut seen = std::collections::BTreeSet::new();
        for (project, logstore, shard, cursor) in [
            ("p", "ls", 3, 1_000),
            ("p", "ls", 3, 1_001),
            ("p", "ls", 4, 1_000),
            ("p", "ls2", 3, 1_000),
            ("p2", "ls", 3, 1_000),
            // Length prefixes: moving a character from one name to the other is another log.
            ("pl", "s", 3, 1_000),
        ] {
            let g = GroupIds::new(project, logstore, shard, Cursor(cursor));
            for log in 0..3 {
                for emit in 0..2 {
                    assert!(
                        seen.insert(g.id(log, emit)),
                        "{project} {logstore} {shard} {cursor} {log} {emit}"
                    );
                }
            }
        }
    }

    #[test]
    fn attach_and_detach() {
        let s = EventIdSettings {
            hec_field: "eid".into(),
            sd_id: "x@1".into(),
        };
        let mut hec = Payload::Hec(HecEvent::new(HecBody::Text("t".into())));
        assert!(s.attach(&mut hec, "abc".into()));
        let Payload::Hec(e) = &hec else { panic!() };
        assert_eq!(e.fields, [Field::new("eid", "abc")]);
        EventIdSettings::detach(&mut hec);
        assert_eq!(hec, Payload::Hec(HecEvent::new(HecBody::Text("t".into()))));
        let mut sys = Payload::Syslog(SyslogMessage::new("m"));
        assert!(s.attach(&mut sys, "abc".into()));
        let Payload::Syslog(m) = &sys else { panic!() };
        assert_eq!(m.structured_data[0].id, "x@1");
        assert_eq!(m.structured_data[0].params, [Field::new("id", "abc")]);
        let mut raw = Payload::Raw(b"r".to_vec());
        assert!(!s.attach(&mut raw, "abc".into()));
    }
}
