//! The official SDK's flattened view of a log, which the seed scripts format.
//!
//! `PullLogResponse.loggroups_to_flattern_list(groups, time_as_str=True, decode_bytes=True)`
//! turns each log into a Python `dict` with keys in this order (docs/sls-protocol.md §10):
//! `__time__`, `__topic__`, `__source__`, `__time_ns_part__` (only when `Time_ns` is
//! non-zero, and — an SDK bug the seeds carry — as the 1-tuple `('123456789',)`), one
//! `__tag__:<key>` per group tag, then the contents. A later duplicate key overwrites the
//! value in place (a `dict` keeps the first position). The seed scripts then delete
//! `__time__` and write the rest.
//!
//! [`flatten`] yields exactly that dict minus `__time__`, borrowing everything: keys as
//! [`FlatKey`] (a tag key is the prefix plus the tag name, never joined into a new string)
//! and values as [`FlatValue`]. A content key `__time__` disappears with the deleted entry,
//! as in the seed. Only when two keys collide does it allocate (one `Vec` for that log).

use std::fmt;

use crate::decode::{Group, Log};
use crate::json::{
    JsonStyle, ObjectWriter, escape_str_ascii_into, escape_str_into, is_valid, python_redump,
    trim_ws, write_string,
};

/// The prefix the flattened form puts before tag keys.
pub const TAG_PREFIX: &str = "__tag__:";

/// A key of the flattened form.
#[derive(Debug, Clone, Copy)]
pub enum FlatKey<'a> {
    /// A key used as is (`__topic__`, a content key…).
    Plain(&'a str),
    /// A group tag: the key is [`TAG_PREFIX`] followed by this tag name.
    Tag(&'a str),
}

impl<'a> FlatKey<'a> {
    /// Length of the key in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            FlatKey::Plain(k) => k.len(),
            FlatKey::Tag(k) => TAG_PREFIX.len() + k.len(),
        }
    }

    /// Whether the key is empty (only a content key can be).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this key equals the flattened key `key` (e.g. `"__tag__:host"`).
    #[inline]
    pub fn is(&self, key: &str) -> bool {
        match self {
            FlatKey::Plain(k) => *k == key,
            FlatKey::Tag(k) => key.strip_prefix(TAG_PREFIX) == Some(k),
        }
    }

    #[inline]
    fn same(&self, other: &FlatKey<'_>) -> bool {
        match (self, other) {
            (FlatKey::Plain(a), FlatKey::Plain(b)) | (FlatKey::Tag(a), FlatKey::Tag(b)) => a == b,
            (FlatKey::Plain(a), tag @ FlatKey::Tag(_))
            | (tag @ FlatKey::Tag(_), FlatKey::Plain(a)) => tag.is(a),
        }
    }

    /// Appends the key's text.
    #[inline]
    pub fn push_to(&self, out: &mut String) {
        if let FlatKey::Tag(k) = self {
            out.push_str(TAG_PREFIX);
            out.push_str(k);
        } else if let FlatKey::Plain(k) = self {
            out.push_str(k);
        }
    }

    /// Starts an object member with this key in `obj`; returns the buffer for the value.
    #[inline]
    pub fn write_json_key<'w>(&self, obj: &'w mut ObjectWriter<'_>) -> &'w mut String {
        match self {
            FlatKey::Plain(k) => obj.key(k),
            FlatKey::Tag(k) => obj.key_parts(TAG_PREFIX, k),
        }
    }

    /// Appends the key's contents escaped as inside a JSON string in `style`.
    #[inline]
    pub fn escape_json_into(&self, out: &mut String, style: JsonStyle) {
        let esc = match style {
            JsonStyle::Compact => escape_str_into,
            JsonStyle::Python => escape_str_ascii_into,
        };
        if let FlatKey::Tag(k) = self {
            esc(out, TAG_PREFIX);
            esc(out, k);
        } else if let FlatKey::Plain(k) = self {
            esc(out, k);
        }
    }
}

impl fmt::Display for FlatKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlatKey::Plain(k) => f.write_str(k),
            FlatKey::Tag(k) => write!(f, "{TAG_PREFIX}{k}"),
        }
    }
}

/// A value of the flattened form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlatValue<'a> {
    /// A string (topic, source, tag or content value).
    Str(&'a str),
    /// `__time_ns_part__`: the SDK stores the 1-tuple `(str(Time_ns),)`. Its `Display` is
    /// Python's `str()` of it, `('123456789',)`; as JSON it is `["123456789"]`.
    TimeNsPart(u32),
}

impl FlatValue<'_> {
    /// Appends the value as JSON in `style`.
    #[inline]
    pub fn write_json(&self, out: &mut String, style: JsonStyle) {
        match self {
            FlatValue::Str(s) => crate::json::write_string(out, s, style),
            FlatValue::TimeNsPart(ns) => {
                out.push_str("[\"");
                out.push_str(itoa::Buffer::new().format(*ns));
                out.push_str("\"]");
            }
        }
    }

    /// The string, unless this is the `__time_ns_part__` tuple.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FlatValue::Str(s) => Some(s),
            FlatValue::TimeNsPart(_) => None,
        }
    }
}

impl fmt::Display for FlatValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlatValue::Str(s) => f.write_str(s),
            FlatValue::TimeNsPart(ns) => write!(f, "('{ns}',)"),
        }
    }
}

/// One entry of the flattened form.
pub type FlatEntry<'a> = (FlatKey<'a>, FlatValue<'a>);

/// The raw sequence, before duplicate keys are merged.
#[derive(Clone)]
struct Raw<'a> {
    group: Group<'a>,
    log: Log<'a>,
    stage: u8,
    index: usize,
}

impl<'a> Iterator for Raw<'a> {
    type Item = FlatEntry<'a>;

    #[inline]
    fn next(&mut self) -> Option<FlatEntry<'a>> {
        loop {
            match self.stage {
                0 => {
                    self.stage = 1;
                    return Some((
                        FlatKey::Plain("__topic__"),
                        FlatValue::Str(self.group.topic()),
                    ));
                }
                1 => {
                    self.stage = 2;
                    return Some((
                        FlatKey::Plain("__source__"),
                        FlatValue::Str(self.group.source()),
                    ));
                }
                2 => {
                    self.stage = 3;
                    // `if log.Time_ns:` — absent and zero are both left out.
                    if let Some(ns) = self.log.time_ns().filter(|&ns| ns != 0) {
                        return Some((
                            FlatKey::Plain("__time_ns_part__"),
                            FlatValue::TimeNsPart(ns),
                        ));
                    }
                }
                3 => match self.group.tags().get(self.index) {
                    Some((k, v)) => {
                        self.index += 1;
                        return Some((FlatKey::Tag(k), FlatValue::Str(v)));
                    }
                    None => {
                        self.stage = 4;
                        self.index = 0;
                    }
                },
                4 => match self.log.contents().get(self.index) {
                    Some((k, v)) => {
                        self.index += 1;
                        // The seed deletes `__time__`, which a content of that name overwrote.
                        if *k != "__time__" {
                            return Some((FlatKey::Plain(k), FlatValue::Str(v)));
                        }
                    }
                    None => {
                        self.stage = 5;
                    }
                },
                _ => return None,
            }
        }
    }
}

/// Iterator over the flattened form of one log; see the module docs.
pub struct Flattened<'a>(Inner<'a>);

enum Inner<'a> {
    Direct(Raw<'a>),
    Merged(std::vec::IntoIter<FlatEntry<'a>>),
}

impl<'a> Iterator for Flattened<'a> {
    type Item = FlatEntry<'a>;

    #[inline]
    fn next(&mut self) -> Option<FlatEntry<'a>> {
        match &mut self.0 {
            Inner::Direct(raw) => raw.next(),
            Inner::Merged(v) => v.next(),
        }
    }
}

/// The seed's flattened dict of `log` (minus `__time__`), in order; see the module docs.
/// [`for_each`] is the faster way to visit it when an iterator is not needed.
pub fn flatten<'a>(group: &Group<'a>, log: &Log<'a>) -> Flattened<'a> {
    let raw = Raw {
        group: *group,
        log: *log,
        stage: 0,
        index: 0,
    };
    if needs_merge(group, log) {
        Flattened(Inner::Merged(merged(raw).into_iter()))
    } else {
        Flattened(Inner::Direct(raw))
    }
}

/// Calls `visit` for each entry of the flattened dict of `log` (minus `__time__`), in order;
/// the same entries as [`flatten`] without the iterator's state machine.
#[inline]
pub fn for_each<'a>(
    group: &Group<'a>,
    log: &Log<'a>,
    mut visit: impl FnMut(FlatKey<'a>, FlatValue<'a>),
) {
    if needs_merge(group, log) {
        let raw = Raw {
            group: *group,
            log: *log,
            stage: 0,
            index: 0,
        };
        for (k, v) in merged(raw) {
            visit(k, v);
        }
        return;
    }
    visit(FlatKey::Plain("__topic__"), FlatValue::Str(group.topic()));
    visit(FlatKey::Plain("__source__"), FlatValue::Str(group.source()));
    if let Some(ns) = log.time_ns().filter(|&ns| ns != 0) {
        visit(
            FlatKey::Plain("__time_ns_part__"),
            FlatValue::TimeNsPart(ns),
        );
    }
    for (k, v) in group.tags() {
        visit(FlatKey::Tag(k), FlatValue::Str(v));
    }
    for (k, v) in log.contents() {
        if *k != "__time__" {
            visit(FlatKey::Plain(k), FlatValue::Str(v));
        }
    }
}

#[cold]
fn merged(raw: Raw<'_>) -> Vec<FlatEntry<'_>> {
    let mut merged: Vec<FlatEntry<'_>> = Vec::new();
    for (k, v) in raw {
        match merged.iter_mut().find(|(mk, _)| mk.same(&k)) {
            Some(slot) => slot.1 = v,
            None => merged.push((k, v)),
        }
    }
    merged
}

/// Whether two keys of the flattened dict collide (so values must be merged like a dict).
/// Meta and tag keys all start with `__`, so only content keys with that prefix can hit
/// them; content keys among themselves go through a 64-bit fingerprint set (length and last
/// byte), with an exact comparison only when fingerprints collide.
#[inline]
fn needs_merge(group: &Group<'_>, log: &Log<'_>) -> bool {
    let tags = group.tags();
    let tags_repeat = || (1..tags.len()).any(|i| tags[..i].iter().any(|(k, _)| *k == tags[i].0));
    let tags_repeat = match group.cache() {
        Some(cache) => *cache.tags_repeat.get_or_init(tags_repeat),
        None => tags_repeat(),
    };
    if tags_repeat {
        return true;
    }
    // The decoder already checked the content keys (the common case: no `__` key, no
    // repeat), so a plain log cannot collide with anything.
    if log.plain_keys() {
        return false;
    }
    let contents = log.contents();
    let mut seen = 0u64;
    for (i, (k, _)) in contents.iter().enumerate() {
        let b = k.as_bytes();
        // The decoder's test; the match then tells which meta keys really collide here.
        if crate::decode::collides_with_meta(b) {
            match *k {
                // Deleted with the seed's `__time__`, however many there are.
                "__time__" => continue,
                "__topic__" | "__source__" => return true,
                "__time_ns_part__" if log.time_ns().is_some_and(|ns| ns != 0) => return true,
                _ => {
                    if let Some(t) = k.strip_prefix(TAG_PREFIX)
                        && tags.iter().any(|(tk, _)| *tk == t)
                    {
                        return true;
                    }
                }
            }
        }
        let bit = crate::decode::key_fingerprint(b);
        if seen & bit != 0 && contents[..i].iter().any(|(p, _)| p == k) {
            return true;
        }
        seen |= bit;
    }
    false
}

/// The value the flattened dict holds for `key` (e.g. `__topic__`, `__tag__:host`, a
/// content key): later entries win, as in the dict.
pub fn lookup<'a>(group: &Group<'a>, log: &Log<'a>, key: &str) -> Option<FlatValue<'a>> {
    if let Some(v) = log.get(key) {
        return (key != "__time__").then_some(FlatValue::Str(v));
    }
    match key {
        "__topic__" => Some(FlatValue::Str(group.topic())),
        "__source__" => Some(FlatValue::Str(group.source())),
        "__time_ns_part__" => log
            .time_ns()
            .filter(|&ns| ns != 0)
            .map(FlatValue::TimeNsPart),
        _ => key
            .strip_prefix(TAG_PREFIX)
            .and_then(|t| group.tag(t))
            .map(FlatValue::Str),
    }
}

/// Writes the flattened log (minus `__time__`) as one JSON object, in the seed's key order.
/// Values of the keys in `json_fields` are embedded as JSON when their text parses (see
/// [`embed_json`]); everything else is a string (`__time_ns_part__`: `["123456789"]`).
///
/// With [`JsonStyle::Python`] the bytes are what the seed's `json.dumps(log)` writes after
/// its `json.loads` of the JSON fields.
pub fn write_json_object(
    out: &mut String,
    group: &Group<'_>,
    log: &Log<'_>,
    json_fields: &[String],
    style: JsonStyle,
) {
    // Fast path: the group's entries rendered once per call, the contents written with as
    // few buffer operations as possible. Not when keys collide (dict merging) or when a
    // JSON field names a group entry.
    if let Some(cache) = group.cache()
        && !json_fields.iter().any(|f| f.starts_with("__"))
        && !needs_merge(group, log)
    {
        let meta = cache.json[style as usize].get_or_init(|| JsonMeta::new(group, style));
        // One monomorphised loop per style, so the escaping inlines.
        match style {
            JsonStyle::Compact => write_json_fast::<false>(out, meta, log, json_fields),
            JsonStyle::Python => write_json_fast::<true>(out, meta, log, json_fields),
        }
        return;
    }
    let mut obj = ObjectWriter::new(out, style);
    for_each(group, log, |key, value| {
        let buf = key.write_json_key(&mut obj);
        match value {
            FlatValue::Str(text) if json_fields.iter().any(|f| key.is(f)) => {
                embed_json(buf, text, style);
            }
            other => other.write_json(buf, style),
        }
    });
    obj.finish();
}

/// The group's part of the flattened JSON object in one style: `head` is
/// `{"__topic__":…,"__source__":…` and `tags` is `,"__tag__:k":"v"…`.
#[derive(Debug)]
pub(crate) struct JsonMeta {
    head: String,
    tags: String,
}

impl JsonMeta {
    fn new(group: &Group<'_>, style: JsonStyle) -> Self {
        let mut head = String::new();
        let mut obj = ObjectWriter::new(&mut head, style);
        obj.str("__topic__", group.topic());
        obj.str("__source__", group.source());
        // Unfinished on purpose: the log's entries follow.
        let mut tags = String::new();
        for (k, v) in group.tags() {
            let mut one = String::new();
            let mut obj = ObjectWriter::new(&mut one, style);
            obj.key_parts(TAG_PREFIX, k);
            write_string(&mut one, v, style);
            // `{"__tag__:k":"v"` → `,"__tag__:k":"v"` (`, ` in Python style).
            tags.push_str(sep(style));
            tags.push_str(&one[1..]);
        }
        Self { head, tags }
    }
}

fn sep(style: JsonStyle) -> &'static str {
    match style {
        JsonStyle::Compact => ",",
        JsonStyle::Python => ", ",
    }
}

#[inline]
fn write_json_fast<const PYTHON: bool>(
    out: &mut String,
    meta: &JsonMeta,
    log: &Log<'_>,
    json_fields: &[String],
) {
    let (style, open_key, colon) = if PYTHON {
        (JsonStyle::Python, ", \"", "\": ")
    } else {
        (JsonStyle::Compact, ",\"", "\":")
    };
    let escape = |out: &mut String, s: &str| {
        if PYTHON {
            escape_str_ascii_into(out, s);
        } else {
            escape_str_into(out, s);
        }
    };
    out.push_str(&meta.head);
    if let Some(ns) = log.time_ns().filter(|&ns| ns != 0) {
        out.push_str(open_key);
        out.push_str("__time_ns_part__");
        out.push_str(colon);
        FlatValue::TimeNsPart(ns).write_json(out, style);
    }
    out.push_str(&meta.tags);
    for (k, v) in log.contents() {
        if *k == "__time__" {
            continue;
        }
        out.push_str(open_key);
        escape(out, k);
        out.push_str(colon);
        if !json_fields.is_empty() && json_fields.iter().any(|f| f == k) {
            embed_json(out, v, style);
        } else {
            out.push('"');
            escape(out, v);
            out.push('"');
        }
    }
    out.push('}');
}

/// Writes `text` as embedded JSON when it parses, else as a JSON string:
/// - [`JsonStyle::Compact`]: strict JSON ([`is_valid`]) is inserted verbatim, surrounding
///   whitespace trimmed (so `NaN` stays a string: Splunk would refuse it);
/// - [`JsonStyle::Python`]: whatever Python's `json.loads` accepts, re-serialised as
///   `json.dumps` would ([`python_redump`]).
pub fn embed_json(out: &mut String, text: &str, style: JsonStyle) {
    match style {
        JsonStyle::Compact => {
            let trimmed = trim_ws(text);
            if is_valid(trimmed) {
                out.push_str(trimmed);
            } else {
                write_string(out, text, style);
            }
        }
        JsonStyle::Python => {
            if !python_redump(text, out) {
                write_string(out, text, style);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchInfo, Timestamp};

    fn batch() -> BatchInfo {
        BatchInfo {
            project: "p".into(),
            logstore: "l".into(),
            shard: 0,
            received: Timestamp {
                seconds: 0,
                nanos: 0,
            },
        }
    }

    fn render(group: &Group<'_>, log: &Log<'_>) -> Vec<String> {
        flatten(group, log)
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    #[test]
    fn order_matches_the_sdk() {
        let b = batch();
        let tags = [("host", "web-1"), ("env", "prod")];
        let g = Group::new(&b, "topic-a", "10.0.0.1", &tags);
        let contents = [("level", "INFO"), ("message", "hello world")];
        let log = Log::new(1_700_000_000, Some(123_456_789), &contents);
        assert_eq!(
            render(&g, &log),
            [
                "__topic__=topic-a",
                "__source__=10.0.0.1",
                "__time_ns_part__=('123456789',)",
                "__tag__:host=web-1",
                "__tag__:env=prod",
                "level=INFO",
                "message=hello world"
            ]
        );
        // Zero and absent nanoseconds are both left out.
        for ns in [None, Some(0)] {
            let log = Log::new(1, ns, &contents);
            assert_eq!(render(&g, &log).len(), 6);
        }
    }

    #[test]
    fn duplicates_overwrite_in_place_like_a_dict() {
        let b = batch();
        let tags = [("host", "a"), ("env", "x"), ("host", "b")];
        let g = Group::new(&b, "t", "s", &tags);
        let contents = [
            ("k", "1"),
            ("__tag__:env", "from-content"),
            ("__topic__", "content-topic"),
            ("__time__", "gone"),
            ("k", "2"),
            ("__time_ns_part__", "str"),
        ];
        let log = Log::new(1, Some(5), &contents);
        assert_eq!(
            render(&g, &log),
            [
                "__topic__=content-topic",
                "__source__=s",
                "__time_ns_part__=str",
                "__tag__:host=b",
                "__tag__:env=from-content",
                "k=2"
            ]
        );
        assert_eq!(
            lookup(&g, &log, "__topic__"),
            Some(FlatValue::Str("content-topic"))
        );
        assert_eq!(lookup(&g, &log, "__tag__:host"), Some(FlatValue::Str("b")));
        assert_eq!(lookup(&g, &log, "__time__"), None);
        assert_eq!(lookup(&g, &log, "missing"), None);
    }

    #[test]
    fn for_each_visits_what_flatten_yields() {
        let b = batch();
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Pairs<'_>, Pairs<'_>, Option<u32>); 6] = [
            (&[("h", "1")], &[("a", "1"), ("b", "2")], Some(3)),
            (&[("h", "1"), ("h", "2")], &[("a", "1")], None),
            (
                &[("h", "1")],
                &[("__tag__:h", "x"), ("__time__", "t")],
                Some(0),
            ),
            (
                &[],
                &[("__time_ns_part__", "s"), ("__time_ns_part__", "u")],
                None,
            ),
            (&[], &[("__time_ns_part__", "s")], Some(1)),
            (&[], &[("ax", "1"), ("bx", "2"), ("ax", "3")], None),
        ];
        for (tags, contents, ns) in cases {
            let g = Group::new(&b, "t", "s", tags);
            let log = Log::new(1, ns, contents);
            let mut visited = Vec::new();
            for_each(&g, &log, |k, v| visited.push(format!("{k}={v}")));
            assert_eq!(visited, render(&g, &log), "{tags:?} {contents:?} {ns:?}");
            let keys: Vec<_> = visited
                .iter()
                .map(|e| e.split('=').next().unwrap())
                .collect();
            let mut unique = keys.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), keys.len(), "no key twice: {visited:?}");
        }
    }

    #[test]
    fn fingerprint_collisions_without_duplicates_keep_everything() {
        let b = batch();
        let g = Group::new(&b, "", "", &[]);
        // Same length and last byte: the fingerprints collide, the keys differ.
        let contents = [("ax", "1"), ("bx", "2"), ("cx", "3")];
        let log = Log::new(1, None, &contents);
        assert_eq!(render(&g, &log)[2..], ["ax=1", "bx=2", "cx=3"]);
    }

    #[test]
    fn json_object_in_both_styles() {
        let b = batch();
        let tags = [("é", "v")];
        let g = Group::new(&b, "t", "s", &tags);
        let contents = [
            ("event", " {\"a\": [1, 2.50]} "),
            ("bad", "{x"),
            ("n", "NaN"),
        ];
        let log = Log::new(1, Some(9), &contents);
        let fields = ["event".to_string(), "bad".to_string(), "n".to_string()];
        let mut out = String::new();
        write_json_object(&mut out, &g, &log, &fields, JsonStyle::Compact);
        assert_eq!(
            out,
            r#"{"__topic__":"t","__source__":"s","__time_ns_part__":["9"],"__tag__:é":"v","event":{"a": [1, 2.50]},"bad":"{x","n":"NaN"}"#
        );
        let mut out = String::new();
        write_json_object(&mut out, &g, &log, &fields, JsonStyle::Python);
        assert_eq!(
            out,
            r#"{"__topic__": "t", "__source__": "s", "__time_ns_part__": ["9"], "__tag__:\u00e9": "v", "event": {"a": [1, 2.5]}, "bad": "{x", "n": NaN}"#
        );
    }

    #[test]
    fn cached_group_prefix_writes_the_same_bytes() {
        let b = batch();
        let tags = [("h\"1", "v é"), ("path", "/a")];
        let cache = crate::decode::GroupCache::default();
        let plain = Group::new(&b, "t\n", "s", &tags);
        let cached = plain.with_cache(&cache);
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        let logs: [(Pairs<'_>, Option<u32>); 4] = [
            (
                &[("a", "1"), ("event", "{\"x\": [1]}"), ("__time__", "gone")],
                Some(7),
            ),
            (
                &[("é\t", "\u{1}"), ("__raw__", "r"), ("event", "not json")],
                None,
            ),
            (&[], Some(0)),
            (&[("k", "v"), ("k", "w")], None),
        ];
        let fields = ["event".to_string()];
        for style in [JsonStyle::Compact, JsonStyle::Python] {
            for (contents, ns) in logs {
                let log = Log::new(1, ns, contents);
                let (mut slow, mut fast) = (String::new(), String::new());
                write_json_object(&mut slow, &plain, &log, &fields, style);
                write_json_object(&mut fast, &cached, &log, &fields, style);
                assert_eq!(fast, slow, "{style:?} {contents:?}");
            }
        }
    }

    #[test]
    fn flat_key_helpers() {
        assert!(FlatKey::Tag("host").is("__tag__:host"));
        assert!(!FlatKey::Tag("host").is("host"));
        assert_eq!(FlatKey::Tag("h").len(), 9);
        assert_eq!(FlatKey::Tag("h").to_string(), "__tag__:h");
        let mut s = String::new();
        FlatValue::TimeNsPart(7).write_json(&mut s, JsonStyle::Compact);
        assert_eq!(s, r#"["7"]"#);
    }
}
