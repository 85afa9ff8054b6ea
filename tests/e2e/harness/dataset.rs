//! Deterministic test logs with a unique `seq`, what each plugin must make of them, and
//! tallies of what arrived.
//!
//! Log `seq` belongs to LogGroup `g = seq / logs_per_group`; even groups are ActionTrail
//! audit events (topic `actiontrail_audit_event`, a nested JSON `event` field, unicode user
//! names), odd groups nginx access logs (unicode paths, quotes, backslashes). Every group
//! has a source address and two tags; most logs carry a nanosecond part, every fifth has
//! none (whole-second HEC time). Content is a pure function of `seq` (plus optional extra
//! contents a test adds with [`Dataset::mark`]), so nothing is stored per log except where
//! the loader put it ([`Placement`]).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use shipper_sls::proto::{Content, Log, LogGroup, LogTag};

/// Unix time of seq 0; ten logs share each second.
const BASE_TIME: u32 = 1_750_000_000;

const USERS: [&str; 4] = ["álice", "bob-日本", "zoë", "operator ✓"];
const EVENT_NAMES: [&str; 5] = [
    "ConsoleSignin",
    "CreateAccessKey",
    "DeleteBucket",
    "PutObject",
    "AssumeRole",
];

/// Where the loader put a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Shard id.
    pub shard: u32,
    /// Index of its LogGroup in the shard (= its cursor − the shard's begin cursor).
    pub group: u32,
    /// Index of the log in the LogGroup.
    pub log: u32,
}

/// The logs of one test, as loaded.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Logs per LogGroup.
    pub logs_per_group: u64,
    /// Shards the loader spreads groups over (group `g` → shard `g % shards`).
    pub shards: u32,
    marks: BTreeMap<u64, Vec<(String, String)>>,
    placed: Vec<Placement>,
    groups_per_shard: Vec<u32>,
}

impl Dataset {
    /// An empty dataset.
    pub fn new(shards: u32, logs_per_group: u64) -> Self {
        Self {
            logs_per_group,
            shards,
            marks: BTreeMap::new(),
            placed: Vec::new(),
            groups_per_shard: vec![0; shards as usize],
        }
    }

    /// Adds content `key=value` to log `seq` (before it is loaded).
    pub fn mark(&mut self, seq: u64, key: &str, value: &str) {
        self.marks
            .entry(seq)
            .or_default()
            .push((key.to_owned(), value.to_owned()));
    }

    /// Logs loaded so far (seqs `0..len`).
    pub fn len(&self) -> u64 {
        self.placed.len() as u64
    }

    /// Where `seq` was put.
    pub fn placement(&self, seq: u64) -> Placement {
        self.placed[seq as usize]
    }

    /// LogGroups loaded per shard.
    pub fn groups_per_shard(&self) -> &[u32] {
        &self.groups_per_shard
    }

    /// The next `count` groups to load: (shard, group), recording their placement.
    pub fn next_groups(&mut self, count: u64) -> Vec<(u32, LogGroup)> {
        let first = self.len() / self.logs_per_group;
        assert_eq!(self.len() % self.logs_per_group, 0, "whole groups only");
        (first..first + count)
            .map(|g| {
                let shard = (g % u64::from(self.shards)) as u32;
                let index = self.groups_per_shard[shard as usize];
                self.groups_per_shard[shard as usize] += 1;
                let seqs = g * self.logs_per_group..(g + 1) * self.logs_per_group;
                for (i, _) in seqs.clone().enumerate() {
                    self.placed.push(Placement {
                        shard,
                        group: index,
                        log: i as u32,
                    });
                }
                (shard, self.group(g))
            })
            .collect()
    }

    fn group(&self, g: u64) -> LogGroup {
        let start = g * self.logs_per_group;
        LogGroup {
            logs: (start..start + self.logs_per_group)
                .map(|seq| self.log(seq))
                .collect(),
            reserved: None,
            topic: Some(topic(g).to_owned()),
            source: Some(source(g)),
            machine_uuid: None,
            log_tags: tags(g)
                .into_iter()
                .map(|(key, value)| LogTag { key, value })
                .collect(),
        }
    }

    fn log(&self, seq: u64) -> Log {
        let (time, ns) = time_of(seq);
        Log {
            time,
            contents: self
                .contents(seq)
                .into_iter()
                .map(|(key, v)| Content {
                    key,
                    value: v.into_bytes(),
                })
                .collect(),
            time_ns: Some(ns),
        }
    }

    /// The contents of log `seq`, in order.
    pub fn contents(&self, seq: u64) -> Vec<(String, String)> {
        let g = seq / self.logs_per_group;
        let user = USERS[(seq % 4) as usize];
        let mut c: Vec<(String, String)> = if g.is_multiple_of(2) {
            let name = EVENT_NAMES[(seq % 5) as usize];
            let id = format!("{:016X}", mix(seq));
            let event = json!({
                "eventId": id,
                "eventName": name,
                "eventVersion": "1",
                "acsRegion": "cn-hangzhou",
                "userIdentity": {"type": "ram-user", "userName": user, "principalId": mix(seq) % 1_000_000},
                "sourceIpAddress": format!("203.0.113.{}", seq % 251),
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64) 日本語 \"quoted\"",
                "requestParameters": {"BucketName": format!("logs-✓-{}", seq % 13), "Key": "dir\\file \"q\".log"},
                "additionalEventData": {"mfaChecked": seq.is_multiple_of(3), "loginCount": seq % 50, "score": 0.75},
                "seq": seq,
            });
            vec![
                ("__event_id__".into(), id),
                ("event_name".into(), name.into()),
                ("event".into(), event.to_string()),
                ("seq".into(), seq.to_string()),
                ("acs_region".into(), "cn-hangzhou".into()),
                (
                    "message".into(),
                    format!("登录 {name} ✓ by {user} 😀 | a=b || c"),
                ),
            ]
        } else {
            vec![
                ("seq".into(), seq.to_string()),
                ("remote_addr".into(), format!("198.51.100.{}", seq % 254)),
                (
                    "method".into(),
                    if seq.is_multiple_of(3) { "POST" } else { "GET" }.into(),
                ),
                (
                    "request_uri".into(),
                    format!("/api/v1/搜索?q=héllo&page={}&x=\"y\"", seq % 97),
                ),
                (
                    "status".into(),
                    ["200", "404", "503", "301"][(seq % 4) as usize].into(),
                ),
                ("body_bytes_sent".into(), (mix(seq) % 100_000).to_string()),
                (
                    "http_user_agent".into(),
                    format!("curl/8.{} \\ {user}", seq % 10),
                ),
                ("request_time".into(), format!("0.{:03}", mix(seq) % 1000)),
            ]
        };
        if let Some(extra) = self.marks.get(&seq) {
            c.extend(extra.iter().cloned());
        }
        c
    }

    /// The log as the official SDK flattens it, the way the host writes it into a
    /// dead-letter entry: `__time__` and `__time_ns_part__` (when non-zero) as numbers.
    pub fn flattened(&self, seq: u64) -> Value {
        let g = seq / self.logs_per_group;
        let (time, ns) = time_of(seq);
        let mut m = Map::new();
        m.insert("__time__".into(), time.into());
        m.insert("__topic__".into(), topic(g).into());
        m.insert("__source__".into(), source(g).into());
        if ns != 0 {
            m.insert("__time_ns_part__".into(), ns.into());
        }
        for (k, v) in tags(g) {
            m.insert(format!("__tag__:{k}"), v.into());
        }
        for (k, v) in self.contents(seq) {
            m.insert(k, v.into());
        }
        Value::Object(m)
    }

    /// The `event` object the splunk-hec and json plugins make of log `seq` (default
    /// `json_fields`): the flattened log minus `__time__`, `__time_ns_part__` as
    /// `["<ns>"]` when non-zero, and the ActionTrail `event` field embedded as JSON.
    pub fn hec_event(&self, seq: u64) -> Value {
        let g = seq / self.logs_per_group;
        let (_, ns) = time_of(seq);
        let mut m = Map::new();
        m.insert("__topic__".into(), topic(g).into());
        m.insert("__source__".into(), source(g).into());
        if ns != 0 {
            m.insert("__time_ns_part__".into(), json!([ns.to_string()]));
        }
        for (k, v) in tags(g) {
            m.insert(format!("__tag__:{k}"), v.into());
        }
        for (k, v) in self.contents(seq) {
            let value = if k == "event" && topic(g) == "actiontrail_audit_event" {
                serde_json::from_str(&v).expect("generated event is JSON")
            } else {
                v.into()
            };
            m.insert(k, value);
        }
        Value::Object(m)
    }

    /// The HEC `time` as shipper renders it: whole seconds, or seconds and the nanosecond
    /// part truncated to microseconds with trailing zeros trimmed.
    pub fn hec_time(&self, seq: u64) -> String {
        let (time, ns) = time_of(seq);
        if ns == 0 {
            return time.to_string();
        }
        let frac = format!("{:06}", ns / 1000);
        format!("{time}.{}", frac.trim_end_matches('0'))
    }

    /// The MSG the syslog-kv plugin makes of log `seq` (default separator `||`): each
    /// flattened pair but `__time__` as `||k=v`, `__time_ns_part__` as the SDK's tuple.
    pub fn kv_message(&self, seq: u64) -> String {
        let g = seq / self.logs_per_group;
        let (_, ns) = time_of(seq);
        let mut out = format!("||__topic__={}||__source__={}", topic(g), source(g));
        if ns != 0 {
            out.push_str(&format!("||__time_ns_part__=('{ns}',)"));
        }
        for (k, v) in tags(g) {
            out.push_str(&format!("||__tag__:{k}={v}"));
        }
        for (k, v) in self.contents(seq) {
            out.push_str(&format!("||{k}={v}"));
        }
        out
    }

    /// The RFC 5424 TIMESTAMP of log `seq` (UTC, 6 fraction digits when the ns part is set).
    pub fn syslog_time(&self, seq: u64) -> String {
        let (time, ns) = time_of(seq);
        let ts = jiff::Timestamp::from_second(i64::from(time)).expect("valid time");
        let base = ts.strftime("%Y-%m-%dT%H:%M:%S").to_string();
        if ns == 0 {
            format!("{base}Z")
        } else {
            format!("{base}.{:06}Z", ns / 1000)
        }
    }
}

/// A reproducible scramble of `seq` (ids, sizes).
fn mix(seq: u64) -> u64 {
    let mut x = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn topic(g: u64) -> &'static str {
    if g.is_multiple_of(2) {
        "actiontrail_audit_event"
    } else {
        "nginx_access"
    }
}

fn source(g: u64) -> String {
    format!("10.0.{}.{}", g % 256, g % 7 + 1)
}

fn tags(g: u64) -> Vec<(String, String)> {
    vec![
        ("__hostname__".into(), format!("web-é-{}", g % 3)),
        (
            "__receive_time__".into(),
            (u64::from(BASE_TIME) + g).to_string(),
        ),
    ]
}

/// (seconds, nanosecond part): every fifth log has no ns part; the others have a non-zero
/// microsecond part (so the HEC time always has a fraction for them).
fn time_of(seq: u64) -> (u32, u32) {
    let time = BASE_TIME + (seq / 10) as u32;
    let ns = if seq.is_multiple_of(5) {
        0
    } else {
        ((seq % 999_983) as u32 + 1) * 1000 + (seq % 1000) as u32
    };
    (time, ns)
}

/// How many times each seq arrived.
#[derive(Debug, Clone)]
pub struct Tally {
    counts: Vec<u32>,
    /// Seqs outside `0..n` (must never happen).
    pub unknown: Vec<u64>,
}

impl Tally {
    /// Counts `seqs` against the expected `0..n`.
    pub fn new(n: u64, seqs: impl IntoIterator<Item = u64>) -> Self {
        let mut counts = vec![0u32; n as usize];
        let mut unknown = Vec::new();
        for s in seqs {
            match counts.get_mut(s as usize) {
                Some(c) => *c += 1,
                None => unknown.push(s),
            }
        }
        Self { counts, unknown }
    }

    /// Seqs that never arrived.
    pub fn missing(&self) -> Vec<u64> {
        self.seqs_where(|c| c == 0)
    }

    /// Seqs that arrived more than once.
    pub fn duplicated(&self) -> Vec<u64> {
        self.seqs_where(|c| c > 1)
    }

    /// Extra deliveries: sum of (count − 1) over duplicated seqs.
    pub fn extra_deliveries(&self) -> u64 {
        self.counts
            .iter()
            .map(|&c| u64::from(c.saturating_sub(1)))
            .sum()
    }

    fn seqs_where(&self, f: impl Fn(u32) -> bool) -> Vec<u64> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| f(**c))
            .map(|(s, _)| s as u64)
            .collect()
    }

    /// Panics unless every seq arrived exactly once.
    pub fn assert_exactly_once(&self, ds: &Dataset, what: &str) {
        self.assert_at_least_once(ds, what);
        let dup = self.duplicated();
        assert!(
            dup.is_empty(),
            "{what}: {} seqs arrived more than once ({} extra deliveries), e.g. {}",
            dup.len(),
            self.extra_deliveries(),
            describe(ds, &dup)
        );
    }

    /// Panics unless every seq arrived at least once; returns the number of extra
    /// deliveries (duplicates).
    pub fn assert_at_least_once(&self, ds: &Dataset, what: &str) -> u64 {
        assert!(
            self.unknown.is_empty(),
            "{what}: {} events with a seq that was never loaded: {:?}",
            self.unknown.len(),
            &self.unknown[..self.unknown.len().min(10)]
        );
        let missing = self.missing();
        assert!(
            missing.is_empty(),
            "{what}: {} of {} seqs never arrived, e.g. {}",
            missing.len(),
            self.counts.len(),
            describe(ds, &missing)
        );
        self.extra_deliveries()
    }
}

/// The first few seqs with their placement, for failure messages.
pub fn describe(ds: &Dataset, seqs: &[u64]) -> String {
    seqs.iter()
        .take(8)
        .map(|&s| {
            let p = ds.placement(s);
            format!(
                "seq {s} (shard {} group {} log {})",
                p.shard, p.group, p.log
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seqs received per HEC channel (each shipper process's sink has its own channel GUID,
/// so this tells which process delivered what), in arrival order.
pub fn seqs_by_channel(
    events: &[shipper_test_support::hec_receiver::ReceivedEvent],
) -> BTreeMap<String, Vec<u64>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for e in events {
        let seq =
            hec_seq(&e.envelope).unwrap_or_else(|| panic!("an event without a seq: {}", e.text));
        out.entry(e.channel.clone().unwrap_or_default())
            .or_default()
            .push(seq);
    }
    out
}

/// The dead-letter file's text and its entries keyed by the `seq` of the original log
/// (`log.seq`); panics on a line that is not JSON or has no seq. A repeated seq keeps the
/// last entry, so callers compare the map's size with the line count.
pub fn dead_letters_by_seq(path: &std::path::Path) -> (String, BTreeMap<u64, Value>) {
    let text = std::fs::read_to_string(path).expect("a dead-letter file");
    let entries = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("dead-letter lines are JSON");
            let seq = v["log"]["seq"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("entry without the log's seq: {v}"));
            (seq, v)
        })
        .collect();
    (text, entries)
}

/// The seqs of rsyslog records of syslog-kv messages (MSG `…||seq=N||…`), in order; records
/// without one (a line rsyslog was killed while writing) are skipped.
pub fn kv_seqs(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .filter_map(|m| {
            m["msg"]
                .as_str()?
                .split("||")
                .find_map(|kv| kv.strip_prefix("seq="))?
                .parse()
                .ok()
        })
        .collect()
}

/// The `seq` of an HEC event whose `event` object carries one.
pub fn hec_seq(envelope: &Value) -> Option<u64> {
    envelope["event"]["seq"].as_str()?.parse().ok()
}

/// The `seq` of each received HEC event, in order; panics on an event without one.
pub fn hec_seqs<'a>(
    events: impl IntoIterator<Item = &'a shipper_test_support::hec_receiver::ReceivedEvent>,
) -> Vec<u64> {
    events
        .into_iter()
        .map(|e| hec_seq(&e.envelope).expect("seq"))
        .collect()
}

impl Dataset {
    /// Checks one received HEC event (`text`: the envelope as sent) against what the
    /// splunk-hec / json plugins make of its log: the `time` text, exactly the envelope keys
    /// `time`, `event` and `meta` (with these values) plus `fields` when `fields` is given,
    /// and the `event` object. Returns the seq.
    pub fn check_hec(
        &self,
        text: &str,
        envelope: &Value,
        meta: &[(&str, &str)],
        fields: Option<&Value>,
    ) -> Result<u64, String> {
        let seq = hec_seq(envelope).ok_or_else(|| format!("no seq in {text}"))?;
        if seq >= self.len() {
            return Err(format!("seq {seq} was never loaded: {text}"));
        }
        let time = self.hec_time(seq);
        if !text.starts_with(&format!("{{\"time\":{time},")) {
            return Err(format!("seq {seq}: expected time {time}: {text}"));
        }
        let obj = envelope.as_object().ok_or("envelope is not an object")?;
        let mut want: Vec<&str> = vec!["time", "event"];
        want.extend(meta.iter().map(|(k, _)| *k));
        if fields.is_some() {
            want.push("fields");
        }
        let mut have: Vec<&str> = obj.keys().map(String::as_str).collect();
        want.sort_unstable();
        have.sort_unstable();
        if want != have {
            return Err(format!(
                "seq {seq}: envelope keys {have:?}, want {want:?}: {text}"
            ));
        }
        for (k, v) in meta {
            if obj[*k] != *v {
                return Err(format!("seq {seq}: {k} is {}, want {v:?}", obj[*k]));
            }
        }
        if let Some(f) = fields
            && obj["fields"] != *f
        {
            return Err(format!("seq {seq}: fields {}, want {f}", obj["fields"]));
        }
        let expected = self.hec_event(seq);
        if obj["event"] != expected {
            return Err(format!(
                "seq {seq}: event differs\n  got:  {}\n  want: {expected}",
                obj["event"]
            ));
        }
        Ok(seq)
    }
}
