//! `json.dumps(json.loads(text))` as CPython 3.11 computes it, without Python.
//!
//! The seed HEC script parses some fields with `json.loads` and then serialises the whole
//! log with `json.dumps` (default separators, `ensure_ascii=True`). To reproduce its bytes,
//! [`python_redump`] accepts what `json.loads` accepts and writes what `json.dumps` writes:
//!
//! - accepted beyond strict JSON: `NaN`, `Infinity`, `-Infinity`, lone surrogate escapes;
//! - refused like Python: a leading BOM, raw control characters in strings, integers of
//!   more than 4300 digits (CPython's `int` conversion limit);
//! - objects keep the first position of a repeated key with its last value (a `dict`);
//! - integers are written as parsed (`-0` becomes `0`); other numbers go through `float`
//!   and are written with `repr` (`1e+16`, `1e-05`, `100.0`, `Infinity`);
//! - nesting deeper than [`MAX_DEPTH`](super::MAX_DEPTH) is refused (CPython's limit is
//!   its recursion limit, ~1000: text nested between the two behaves differently).

use super::MAX_DEPTH;
use super::write::push_python_unit;

/// CPython's default `sys.get_int_max_str_digits()`.
const PY_INT_MAX_DIGITS: usize = 4300;

/// Appends `json.dumps(json.loads(text))` to `out` and returns `true`, or returns `false`
/// (leaving `out` as it was) when `json.loads(text)` would raise.
pub fn python_redump(text: &str, out: &mut String) -> bool {
    let mark = out.len();
    let mut p = Parser {
        b: text.as_bytes(),
        s: text,
        pos: 0,
    };
    p.ws();
    let ok = p.value(out, 0).is_some() && {
        p.ws();
        p.pos == p.b.len()
    };
    if !ok {
        out.truncate(mark);
    }
    ok
}

struct Parser<'a> {
    b: &'a [u8],
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn starts_with(&self, word: &str) -> bool {
        self.b[self.pos..].starts_with(word.as_bytes())
    }

    fn value(&mut self, out: &mut String, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' => self.object(out, depth + 1),
            b'[' => self.array(out, depth + 1),
            b'"' => {
                let mut units = Vec::new();
                self.string(&mut units)?;
                write_units(out, &units);
                Some(())
            }
            _ => {
                for (word, repr) in [
                    ("true", "true"),
                    ("false", "false"),
                    ("null", "null"),
                    ("NaN", "NaN"),
                    ("Infinity", "Infinity"),
                    ("-Infinity", "-Infinity"),
                ] {
                    if self.starts_with(word) {
                        self.pos += word.len();
                        out.push_str(repr);
                        return Some(());
                    }
                }
                self.number(out)
            }
        }
    }

    fn object(&mut self, out: &mut String, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        // (decoded key, rendered member) in first-seen order.
        let mut members: Vec<(Vec<u16>, String)> = Vec::new();
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            out.push_str("{}");
            return Some(());
        }
        loop {
            if self.peek()? != b'"' {
                return None;
            }
            let mut key = Vec::new();
            self.string(&mut key)?;
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.pos += 1;
            self.ws();
            let mut member = String::new();
            write_units(&mut member, &key);
            member.push_str(": ");
            self.value(&mut member, depth)?;
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = member,
                None => members.push((key, member)),
            }
            self.ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    self.ws();
                }
                b'}' => {
                    self.pos += 1;
                    break;
                }
                _ => return None,
            }
        }
        out.push('{');
        for (i, (_, member)) in members.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(member);
        }
        out.push('}');
        Some(())
    }

    fn array(&mut self, out: &mut String, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.pos += 1;
        out.push('[');
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            out.push(']');
            return Some(());
        }
        loop {
            self.value(out, depth)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.pos += 1;
                    out.push_str(", ");
                    self.ws();
                }
                b']' => {
                    self.pos += 1;
                    out.push(']');
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u16> {
        let h = self.b.get(self.pos..self.pos + 4)?;
        let mut v = 0u16;
        for &c in h {
            v = v << 4 | char::from(c).to_digit(16)? as u16;
        }
        self.pos += 4;
        Some(v)
    }

    /// Decodes a string (at its opening quote) into UTF-16 code units, as Python's `str`
    /// would hold it (lone surrogates kept).
    fn string(&mut self, units: &mut Vec<u16>) -> Option<()> {
        self.pos += 1;
        loop {
            let start = self.pos;
            while let Some(c) = self.peek() {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            units.extend(self.s[start..self.pos].encode_utf16());
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' => {
                    self.pos += 1;
                    let c = self.peek()?;
                    self.pos += 1;
                    units.push(match c {
                        b'"' => 0x22,
                        b'\\' => 0x5c,
                        b'/' => 0x2f,
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => 0x0a,
                        b'r' => 0x0d,
                        b't' => 0x09,
                        // A surrogate pair re-encodes to the same two units, so units can be
                        // kept one by one.
                        b'u' => self.hex4()?,
                        _ => return None,
                    });
                }
                // Raw control character: json.loads(strict=True) refuses it.
                _ => return None,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self, out: &mut String) -> Option<()> {
        let start = self.pos;
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let int_start = self.pos;
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        let int_end = self.pos;
        let mut is_float = false;
        // Python's number regex only takes `.digits` / `e[+-]digits` when complete;
        // otherwise the number ends there and the leftover fails the parse later.
        if self.peek() == Some(b'.') && matches!(self.b.get(self.pos + 1), Some(b'0'..=b'9')) {
            self.pos += 1;
            self.digits();
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            let save = self.pos;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                self.pos = save;
            } else {
                is_float = true;
            }
        }
        if !is_float {
            let digits = &self.s[int_start..int_end];
            if digits.len() > PY_INT_MAX_DIGITS {
                return None;
            }
            if negative && digits != "0" {
                out.push('-');
            }
            out.push_str(digits);
            return Some(());
        }
        let value: f64 = self.s[start..self.pos].parse().ok()?;
        write_float_repr(out, value);
        Some(())
    }
}

fn write_units(out: &mut String, units: &[u16]) {
    out.push('"');
    for &u in units {
        push_python_unit(out, u);
    }
    out.push('"');
}

/// Writes `repr(value)` as CPython does (`float_repr_style = 'short'`): the shortest
/// digits that round-trip, in positional form when the decimal exponent is in -4..16 and
/// in scientific form (`1e+16`, `1.5e-05`) otherwise; `NaN`/`Infinity` as `json.dumps`
/// spells them.
pub fn write_float_repr(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
        return;
    }
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits too: `d[.ddd]e[-]x`.
    let sci = format!("{:e}", value.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    if value.is_sign_negative() {
        out.push('-');
    }
    let decpt = exp + 1;
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in 0..-decpt {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let decpt = decpt as usize;
        if decpt >= digits.len() {
            out.push_str(&digits);
            for _ in digits.len()..decpt {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt]);
            out.push('.');
            out.push_str(&digits[decpt..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redump(s: &str) -> Option<String> {
        let mut out = String::from("prefix:");
        let ok = python_redump(s, &mut out);
        if ok {
            Some(out["prefix:".len()..].to_string())
        } else {
            assert_eq!(out, "prefix:", "failed parse must not leave output");
            None
        }
    }

    fn repr(v: f64) -> String {
        let mut s = String::new();
        write_float_repr(&mut s, v);
        s
    }

    // Expected strings below were produced by CPython 3.11.7:
    // `json.dumps(json.loads(s))` and `repr(float)`.

    #[test]
    fn float_repr_matches_cpython() {
        for (v, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e22, "1e+22"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (2.5, "2.5"),
            (-3.25e-10, "-3.25e-10"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(repr(v), want, "{v:e}");
        }
    }

    #[test]
    fn redump_matches_cpython() {
        for (input, want) in [
            (
                r#"{"a":1,"b":[true,false,null]}"#,
                r#"{"a": 1, "b": [true, false, null]}"#,
            ),
            (" { } ", "{}"),
            ("[ ]", "[]"),
            ("-0", "0"),
            ("-0.0", "-0.0"),
            ("1E2", "100.0"),
            ("1.50", "1.5"),
            ("1e400", "Infinity"),
            ("-1e400", "-Infinity"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            ("NaN", "NaN"),
            ("[Infinity, -Infinity]", "[Infinity, -Infinity]"),
            (r#""h\u00e9llo ✓ é""#, r#""h\u00e9llo \u2713 \u00e9""#),
            (r#""\ud83d\ude00😀""#, r#""\ud83d\ude00\ud83d\ude00""#),
            (r#""\ud800 lone""#, r#""\ud800 lone""#),
            (r#""\u0041\u0022\/""#, r#""A\"/""#),
            (r#"{"a":1,"b":2,"a":3}"#, r#"{"a": 3, "b": 2}"#),
            (r#"{"a":1,"\u0061":2}"#, r#"{"a": 2}"#),
            ("\"\\u007f\u{7f}\"", r#""\u007f\u007f""#),
            ("\t\n\r 7 \n", "7"),
        ] {
            assert_eq!(redump(input).as_deref(), Some(want), "{input:?}");
        }
    }

    #[test]
    fn redump_refuses_what_json_loads_refuses() {
        for bad in [
            "",
            "01",
            "1.",
            "1e",
            ".5",
            "{'a':1}",
            "[1,]",
            "{\"a\":1,}",
            "\"raw\ttab\"",
            "\"\\x41\"",
            "\u{feff}1",
            "nan",
            "infinity",
            "[1] 2",
            "tru",
        ] {
            assert_eq!(redump(bad), None, "{bad:?}");
        }
        let huge = "9".repeat(PY_INT_MAX_DIGITS + 1);
        assert_eq!(redump(&huge), None);
        assert!(redump(&"9".repeat(PY_INT_MAX_DIGITS)).is_some());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(redump(&deep), None);
    }
}
