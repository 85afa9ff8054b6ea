//! The SPL subset PullLogs accepts in `query` (docs/sls-protocol.md §5.6, §13.1): a pipeline
//! starting with `*`, then any number of stages
//!
//! - `where <expr>` with `f = 'v'`, `f != 'v'` (`<>`), `f like 'a%'`, `f [not] in ('a', 'b')`,
//!   `f is [not] null`, `and`, `or`, `not` and parentheses;
//! - `project f1, f2` (keeps only those content fields, in that order).
//!
//! Fields are content keys, or `__topic__`, `__source__`, `__time__`, `__tag__:<key>`;
//! names may be double-quoted (`"a b"`). Values are compared as strings, as SPL does for the
//! varchar fields of a logstore; a missing field is null (every comparison false).
//! Anything else is rejected with what real SLS answers for a bad query:
//! `400 ParameterInvalid` "invalid query: line 1:<col> …".
//!
//! Evaluation walks the encoded LogGroup ([`shipper_sls::proto::FieldIter`]) without decoding
//! it into owned messages; logs that pass `where` unchanged are copied byte for byte.

use shipper_sls::proto::{FieldIter, WireError};

use crate::error::ApiError;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    stages: Vec<Stage>,
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Where(Expr),
    Project(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Eq(String, String),
    Like(String, String),
    In(String, Vec<String>),
    IsNull(String),
}

/// A syntax error with its 1-based column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplError {
    /// 1-based column in the query text.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

impl From<SplError> for ApiError {
    fn from(e: SplError) -> Self {
        ApiError::parameter_invalid(format!("invalid query: line 1:{} {}", e.column, e.message))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Star,
    Pipe,
    Comma,
    LParen,
    RParen,
    Eq,
    Ne,
    Word(String),
    Quoted(String),
    Str(String),
    End,
}

fn tokenize(s: &str) -> Result<Vec<(Tok, usize)>, SplError> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let col = |i: usize| s[..chars.get(i).map_or(s.len(), |c| c.0)].chars().count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        let start = col(i);
        match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '*' => out.push((Tok::Star, start)),
            '|' => out.push((Tok::Pipe, start)),
            ',' => out.push((Tok::Comma, start)),
            '(' => out.push((Tok::LParen, start)),
            ')' => out.push((Tok::RParen, start)),
            '=' => out.push((Tok::Eq, start)),
            '!' | '<' => {
                let next = chars.get(i + 1).map(|c| c.1);
                match (c, next) {
                    ('!', Some('=')) | ('<', Some('>')) => {
                        out.push((Tok::Ne, start));
                        i += 1;
                    }
                    _ => {
                        return Err(SplError {
                            column: start,
                            message: format!(
                                "unsupported operator starting with '{c}' (supported: =, !=, <>, like, in)"
                            ),
                        });
                    }
                }
            }
            '\'' | '"' => {
                let quote = c;
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i).map(|c| c.1) {
                        None => {
                            return Err(SplError {
                                column: start,
                                message: "unterminated quoted string".into(),
                            });
                        }
                        Some(q) if q == quote => {
                            if chars.get(i + 1).map(|c| c.1) == Some(quote) {
                                text.push(quote);
                                i += 2;
                            } else {
                                break;
                            }
                        }
                        Some(ch) => {
                            text.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((
                    if quote == '\'' {
                        Tok::Str(text)
                    } else {
                        Tok::Quoted(text)
                    },
                    start,
                ));
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' => {
                let mut word = String::new();
                while let Some(&(_, ch)) = chars.get(i) {
                    if ch.is_alphanumeric() || matches!(ch, '_' | '-' | '.' | ':' | '@') {
                        word.push(ch);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((Tok::Word(word), start));
                continue;
            }
            other => {
                return Err(SplError {
                    column: start,
                    message: format!("unexpected character '{other}'"),
                });
            }
        }
        i += 1;
    }
    out.push((Tok::End, s.chars().count() + 1));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn column(&self) -> usize {
        self.toks[self.pos].1
    }

    fn bump(&mut self) -> Tok {
        let t = self.toks[self.pos].0.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn error<T>(&self, expected: &str) -> Result<T, SplError> {
        let found = match self.peek() {
            Tok::End => "<EOF>".to_owned(),
            Tok::Word(w) | Tok::Quoted(w) => format!("'{w}'"),
            Tok::Str(s) => format!("'{s}' (string)"),
            t => format!("{t:?}"),
        };
        Err(SplError {
            column: self.column(),
            message: format!("mismatched input {found} expecting {expected}"),
        })
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), SplError> {
        if self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            self.error(what)
        }
    }

    fn query(&mut self) -> Result<Query, SplError> {
        self.expect(&Tok::Star, "'*'")?;
        let mut stages = Vec::new();
        while self.peek() == &Tok::Pipe {
            self.bump();
            if self.keyword("where") {
                self.bump();
                stages.push(Stage::Where(self.or()?));
            } else if self.keyword("project") {
                self.bump();
                let mut fields = vec![self.field()?];
                while self.peek() == &Tok::Comma {
                    self.bump();
                    fields.push(self.field()?);
                }
                stages.push(Stage::Project(fields));
            } else {
                return self.error("{WHERE, PROJECT} (the emulator's SPL subset)");
            }
        }
        if self.peek() != &Tok::End {
            return self.error("{'|', <EOF>}");
        }
        Ok(Query { stages })
    }

    fn or(&mut self) -> Result<Expr, SplError> {
        let mut terms = vec![self.and()?];
        while self.keyword("or") {
            self.bump();
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, SplError> {
        let mut terms = vec![self.not()?];
        while self.keyword("and") {
            self.bump();
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Expr::And(terms)
        })
    }

    fn not(&mut self) -> Result<Expr, SplError> {
        if self.keyword("not") {
            self.bump();
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, SplError> {
        if self.peek() == &Tok::LParen {
            self.bump();
            let e = self.or()?;
            self.expect(&Tok::RParen, "')'")?;
            return Ok(e);
        }
        let field = self.field()?;
        match self.peek().clone() {
            Tok::Eq => {
                self.bump();
                Ok(Expr::Eq(field, self.literal()?))
            }
            Tok::Ne => {
                self.bump();
                let v = self.literal()?;
                // `f != v` is false for a missing field, like SQL's null semantics.
                Ok(Expr::And(vec![
                    Expr::Not(Box::new(Expr::IsNull(field.clone()))),
                    Expr::Not(Box::new(Expr::Eq(field, v))),
                ]))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("like") => {
                self.bump();
                Ok(Expr::Like(field, self.literal()?))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("in") => {
                self.bump();
                Ok(Expr::In(field, self.list()?))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("not") => {
                self.bump();
                if self.keyword("in") {
                    self.bump();
                    let list = self.list()?;
                    Ok(Expr::And(vec![
                        Expr::Not(Box::new(Expr::IsNull(field.clone()))),
                        Expr::Not(Box::new(Expr::In(field, list))),
                    ]))
                } else if self.keyword("like") {
                    self.bump();
                    let pattern = self.literal()?;
                    Ok(Expr::And(vec![
                        Expr::Not(Box::new(Expr::IsNull(field.clone()))),
                        Expr::Not(Box::new(Expr::Like(field, pattern))),
                    ]))
                } else {
                    self.error("{IN, LIKE}")
                }
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("is") => {
                self.bump();
                let negate = self.keyword("not");
                if negate {
                    self.bump();
                }
                if !self.keyword("null") {
                    return self.error("NULL");
                }
                self.bump();
                let e = Expr::IsNull(field);
                Ok(if negate { Expr::Not(Box::new(e)) } else { e })
            }
            _ => self.error("{'=', '!=', '<>', LIKE, IN, NOT, IS}"),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, SplError> {
        self.expect(&Tok::LParen, "'('")?;
        let mut values = vec![self.literal()?];
        while self.peek() == &Tok::Comma {
            self.bump();
            values.push(self.literal()?);
        }
        self.expect(&Tok::RParen, "')'")?;
        Ok(values)
    }

    fn field(&mut self) -> Result<String, SplError> {
        match self.peek().clone() {
            Tok::Word(w)
                if ![
                    "and", "or", "not", "in", "like", "is", "null", "where", "project",
                ]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                self.bump();
                Ok(w)
            }
            Tok::Quoted(w) => {
                self.bump();
                Ok(w)
            }
            _ => self.error("a field name"),
        }
    }

    fn literal(&mut self) -> Result<String, SplError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            // Bare numbers compare as their text.
            Tok::Word(w)
                if w.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') =>
            {
                self.bump();
                Ok(w)
            }
            _ => self.error("a 'string' literal"),
        }
    }
}

/// Group-level values a field name can refer to.
struct Meta<'a> {
    topic: &'a [u8],
    source: &'a [u8],
    tags: Vec<(&'a [u8], &'a [u8])>,
}

/// One log while it goes through the stages.
struct Row<'a> {
    time: Option<u64>,
    contents: Vec<(&'a [u8], &'a [u8])>,
}

impl Row<'_> {
    fn lookup(&self, meta: &Meta<'_>, field: &str) -> Option<Vec<u8>> {
        // A later duplicate key wins, as in the SDK's flattened view (docs/sls-protocol.md §10).
        if let Some((_, v)) = self
            .contents
            .iter()
            .rev()
            .find(|(k, _)| *k == field.as_bytes())
        {
            return Some(v.to_vec());
        }
        match field {
            "__topic__" => Some(meta.topic.to_vec()),
            "__source__" => Some(meta.source.to_vec()),
            "__time__" => self.time.map(|t| t.to_string().into_bytes()),
            f => f.strip_prefix("__tag__:").and_then(|k| {
                meta.tags
                    .iter()
                    .rev()
                    .find(|(tk, _)| *tk == k.as_bytes())
                    .map(|(_, v)| v.to_vec())
            }),
        }
    }
}

fn like(value: &[u8], pattern: &[u8]) -> bool {
    // `%` any run, `_` one byte; iterative with backtracking to the last `%`.
    let (mut v, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && (pattern[p] == b'_' || pattern[p] == value[v]) {
            v += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == b'%' {
            star = Some((p, v));
            p += 1;
        } else if let Some((sp, sv)) = star {
            p = sp + 1;
            v = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'%')
}

impl Expr {
    fn eval(&self, row: &Row<'_>, meta: &Meta<'_>) -> bool {
        match self {
            Expr::Or(terms) => terms.iter().any(|t| t.eval(row, meta)),
            Expr::And(terms) => terms.iter().all(|t| t.eval(row, meta)),
            Expr::Not(e) => !e.eval(row, meta),
            Expr::Eq(f, v) => row.lookup(meta, f).is_some_and(|x| x == v.as_bytes()),
            Expr::Like(f, p) => row.lookup(meta, f).is_some_and(|x| like(&x, p.as_bytes())),
            Expr::In(f, vs) => row
                .lookup(meta, f)
                .is_some_and(|x| vs.iter().any(|v| x == v.as_bytes())),
            Expr::IsNull(f) => row.lookup(meta, f).is_none(),
        }
    }
}

/// Counters of one application, for the `x-log-*lines` headers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Logs read.
    pub lines_in: usize,
    /// Logs kept.
    pub lines_out: usize,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len_field(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Key and value of a `Content`/`LogTag` message (fields 1 and 2).
fn key_value(buf: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let (mut k, mut v): (&[u8], &[u8]) = (&[], &[]);
    for f in FieldIter::new(buf) {
        let f = f?;
        match f.number {
            1 => k = &buf[f.payload],
            2 => v = &buf[f.payload],
            _ => {}
        }
    }
    Ok((k, v))
}

impl Query {
    /// Parses a query.
    pub fn parse(text: &str) -> Result<Self, SplError> {
        let toks = tokenize(text)?;
        Parser { toks, pos: 0 }.query()
    }

    /// `*` alone: every log, unchanged.
    pub fn is_identity(&self) -> bool {
        self.stages.is_empty()
    }

    /// Runs the query over one encoded LogGroup and appends the resulting LogGroup, framed as
    /// a `LogGroupList` element, to `out` when at least one log survives.
    pub fn apply(&self, group: &[u8], out: &mut Vec<u8>) -> Result<Applied, WireError> {
        let mut meta = Meta {
            topic: &[],
            source: &[],
            tags: Vec::new(),
        };
        for f in FieldIter::new(group) {
            let f = f?;
            match f.number {
                3 => meta.topic = &group[f.payload],
                4 => meta.source = &group[f.payload],
                6 => meta.tags.push(key_value(&group[f.payload])?),
                _ => {}
            }
        }
        let mut applied = Applied::default();
        let mut result = Vec::with_capacity(group.len());
        for f in FieldIter::new(group) {
            let f = f?;
            if f.number != 1 {
                result.extend_from_slice(&group[f.whole]);
                continue;
            }
            applied.lines_in += 1;
            let log = &group[f.payload.clone()];
            if let Some(encoded) = self.apply_log(log, &meta)? {
                applied.lines_out += 1;
                match encoded {
                    None => result.extend_from_slice(&group[f.whole]),
                    Some(bytes) => put_len_field(&mut result, 0x0a, &bytes),
                }
            }
        }
        if applied.lines_out > 0 {
            put_len_field(out, 0x0a, &result);
        }
        Ok(applied)
    }

    /// `None`: dropped. `Some(None)`: kept unchanged. `Some(Some(bytes))`: kept, re-encoded.
    #[expect(
        clippy::option_option,
        reason = "three outcomes, each cheap to express"
    )]
    fn apply_log(&self, log: &[u8], meta: &Meta<'_>) -> Result<Option<Option<Vec<u8>>>, WireError> {
        let mut row = Row {
            time: None,
            contents: Vec::new(),
        };
        for f in FieldIter::new(log) {
            let f = f?;
            match f.number {
                1 => row.time = Some(f.varint),
                2 => row.contents.push(key_value(&log[f.payload])?),
                _ => {}
            }
        }
        let mut projected = false;
        for stage in &self.stages {
            match stage {
                Stage::Where(e) => {
                    if !e.eval(&row, meta) {
                        return Ok(None);
                    }
                }
                Stage::Project(fields) => {
                    let contents = fields
                        .iter()
                        .filter_map(|name| {
                            row.contents
                                .iter()
                                .rev()
                                .find(|(k, _)| *k == name.as_bytes())
                                .copied()
                        })
                        .collect();
                    row.contents = contents;
                    projected = true;
                }
            }
        }
        if !projected {
            return Ok(Some(None));
        }
        let mut out = Vec::with_capacity(log.len());
        for f in FieldIter::new(log) {
            let f = f?;
            if f.number == 1 {
                out.extend_from_slice(&log[f.whole]);
            }
        }
        for (k, v) in &row.contents {
            let mut content = Vec::with_capacity(k.len() + v.len() + 6);
            put_len_field(&mut content, 0x0a, k);
            put_len_field(&mut content, 0x12, v);
            put_len_field(&mut out, 0x12, &content);
        }
        for f in FieldIter::new(log) {
            let f = f?;
            if f.number != 1 && f.number != 2 {
                out.extend_from_slice(&log[f.whole]);
            }
        }
        Ok(Some(Some(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use shipper_sls::proto::{Content, Log, LogGroup, LogGroupList, LogTag};

    fn group() -> LogGroup {
        let log = |pairs: &[(&str, &str)]| Log {
            time: 1_700_000_000,
            contents: pairs
                .iter()
                .map(|(k, v)| Content {
                    key: (*k).into(),
                    value: v.as_bytes().to_vec(),
                })
                .collect(),
            time_ns: Some(5),
        };
        LogGroup {
            logs: vec![
                log(&[("level", "INFO"), ("msg", "a"), ("host", "h1")]),
                log(&[("level", "WARN"), ("msg", "b"), ("host", "h2")]),
                log(&[("level", "ERROR"), ("msg", "c")]),
            ],
            topic: Some("t".into()),
            source: Some("10.0.0.1".into()),
            log_tags: vec![LogTag {
                key: "env".into(),
                value: "prod".into(),
            }],
            ..Default::default()
        }
    }

    fn run(q: &str) -> Vec<Log> {
        let query = Query::parse(q).unwrap_or_else(|e| panic!("{q}: {e:?}"));
        let mut out = Vec::new();
        query.apply(&group().encode_to_vec(), &mut out).unwrap();
        LogGroupList::decode(out.as_slice())
            .unwrap()
            .log_groups
            .into_iter()
            .flat_map(|g| {
                assert_eq!(g.topic.as_deref(), Some("t"), "metadata kept");
                g.logs
            })
            .collect()
    }

    fn msgs(logs: &[Log]) -> Vec<String> {
        logs.iter()
            .map(|l| {
                l.contents
                    .iter()
                    .find(|c| c.key == "msg")
                    .map(|c| String::from_utf8(c.value.clone()).unwrap())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn filters() {
        assert_eq!(msgs(&run("*")), ["a", "b", "c"]);
        assert_eq!(msgs(&run("* | where level = 'WARN'")), ["b"]);
        assert_eq!(
            msgs(&run("* | where level in ('WARN', 'ERROR')")),
            ["b", "c"]
        );
        assert_eq!(
            msgs(&run("* | where level = 'INFO' or msg = 'c'")),
            ["a", "c"]
        );
        assert_eq!(
            msgs(&run(
                "* | where (level = 'INFO' or level = 'WARN') and host = 'h2'"
            )),
            ["b"]
        );
        assert_eq!(msgs(&run("* | where level != 'INFO'")), ["b", "c"]);
        assert_eq!(
            msgs(&run("* | where host != 'h1'")),
            ["b"],
            "null is not != h1"
        );
        assert_eq!(msgs(&run("* | where host is null")), ["c"]);
        assert_eq!(msgs(&run("* | where not level in ('INFO')")), ["b", "c"]);
        assert_eq!(msgs(&run("* | where level like 'W%'")), ["b"]);
        assert_eq!(
            msgs(&run("* | where __tag__:env = 'prod' and __topic__ = 't'")).len(),
            3
        );
        assert_eq!(msgs(&run("* | where __source__ = '10.0.0.2'")).len(), 0);
        assert_eq!(
            msgs(&run("* | where \"level\" = 'ERROR' | where msg = 'c'")),
            ["c"]
        );
        assert_eq!(msgs(&run("* | WHERE level = 'it''s'")).len(), 0);
    }

    #[test]
    fn project_trims_and_orders_columns() {
        let logs = run("* | where level = 'WARN' | project msg, level, nope");
        assert_eq!(logs.len(), 1);
        let keys: Vec<&str> = logs[0].contents.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["msg", "level"]);
        assert_eq!(logs[0].time, 1_700_000_000);
        assert_eq!(logs[0].time_ns, Some(5));
        // A where after project sees only the projected columns.
        assert!(run("* | project msg | where level = 'WARN'").is_empty());
    }

    #[test]
    fn unsupported_queries_are_errors() {
        for bad in [
            "",
            "level = 'x'",
            "* | stats count(*)",
            "* | where level > '1'",
            "* | where level = ",
            "* | where (level = 'x'",
            "* | where level = 'x' extra",
            "* | project",
            "* | where level = 'unterminated",
            "* | select *",
        ] {
            let err = Query::parse(bad).unwrap_err();
            let api: ApiError = err.into();
            assert_eq!((api.status, &*api.code), (400, "ParameterInvalid"), "{bad}");
            assert!(
                api.message.starts_with("invalid query: line 1:"),
                "{bad}: {}",
                api.message
            );
        }
    }

    #[test]
    fn like_patterns() {
        assert!(like(b"abc", b"a%"));
        assert!(like(b"abc", b"%c"));
        assert!(like(b"abc", b"a_c"));
        assert!(like(b"abc", b"%"));
        assert!(!like(b"abc", b"a_"));
        assert!(like(b"aXbXc", b"a%b%c"));
    }
}
