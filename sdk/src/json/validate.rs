//! A fast, allocation-free validator for strict JSON (RFC 8259), used to decide whether a
//! field's text can be embedded in an event verbatim.
//!
//! Stricter than the grammar in one respect: a `\u` escape of a lone surrogate is refused
//! (Splunk's parser and serde_json reject it, and one bad event fails a whole HEC request).
//! Nesting deeper than [`MAX_DEPTH`] is refused too, so a hostile field cannot make a
//! plugin's output pathological. Leading and trailing JSON whitespace is allowed.

use super::write::find_escape;

/// Deepest nesting of arrays and objects [`is_valid`] accepts.
pub const MAX_DEPTH: usize = 128;

/// Whether `text` is exactly one strict JSON value (surrounded by optional whitespace).
pub fn is_valid(text: &str) -> bool {
    Validator {
        b: text.as_bytes(),
        pos: 0,
    }
    .run()
    .is_some()
}

/// `text` without leading and trailing JSON whitespace (space, tab, LF, CR).
pub fn trim_ws(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r'])
}

struct Validator<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Validator<'_> {
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.pos) {
            self.pos += 1;
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.pos += 1)
    }

    fn run(mut self) -> Option<()> {
        // Container stack as bits: 1 = object, 0 = array.
        let mut stack = [0u64; MAX_DEPTH / 64];
        let mut depth = 0usize;
        self.ws();
        'value: loop {
            // Expecting a value.
            match self.peek()? {
                b'{' => {
                    self.pos += 1;
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    stack[depth / 64] |= 1 << (depth % 64);
                    depth += 1;
                    self.ws();
                    if self.eat(b'}').is_some() {
                        depth -= 1;
                    } else {
                        self.key()?;
                        continue 'value;
                    }
                }
                b'[' => {
                    self.pos += 1;
                    if depth == MAX_DEPTH {
                        return None;
                    }
                    stack[depth / 64] &= !(1 << (depth % 64));
                    depth += 1;
                    self.ws();
                    if self.eat(b']').is_some() {
                        depth -= 1;
                    } else {
                        continue 'value;
                    }
                }
                b'"' => self.string()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // After a complete value: close containers or move to the next element.
            loop {
                self.ws();
                if depth == 0 {
                    return (self.pos == self.b.len()).then_some(());
                }
                let in_object = stack[(depth - 1) / 64] & (1 << ((depth - 1) % 64)) != 0;
                match (self.peek()?, in_object) {
                    (b',', true) => {
                        self.pos += 1;
                        self.ws();
                        self.key()?;
                        continue 'value;
                    }
                    (b',', false) => {
                        self.pos += 1;
                        self.ws();
                        continue 'value;
                    }
                    (b'}', true) | (b']', false) => {
                        self.pos += 1;
                        depth -= 1;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// `"key"` `:` and the whitespace before the value.
    #[inline(always)]
    fn key(&mut self) -> Option<()> {
        if self.peek()? != b'"' {
            return None;
        }
        self.string()?;
        self.ws();
        self.eat(b':')?;
        self.ws();
        Some(())
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.b.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    #[inline(always)]
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match self.peek()? {
            b'0' => self.pos += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// A string starting at the opening quote. The input is `&str`, so UTF-8 is known good.
    /// Inlined into the walk so that `pos` stays in a register (a `&mut self` call would
    /// keep it in the wasm shadow stack); escapes, rare in logs, go out of line.
    #[inline(always)]
    fn string(&mut self) -> Option<()> {
        self.pos += 1;
        loop {
            self.pos = find_escape(self.b, self.pos);
            match self.peek()? {
                b'"' => {
                    self.pos += 1;
                    return Some(());
                }
                b'\\' => self.pos = escape(self.b, self.pos + 1)?,
                // A raw control character.
                _ => return None,
            }
        }
    }
}

/// The escape after a backslash at `pos - 1`: the position after it, or `None` if invalid.
#[cold]
#[inline(never)]
fn escape(b: &[u8], pos: usize) -> Option<usize> {
    let hex4 = |at: usize| -> Option<u16> {
        let h = b.get(at..at + 4)?;
        let mut v = 0u16;
        for &c in h {
            v = v << 4 | char::from(c).to_digit(16)? as u16;
        }
        Some(v)
    };
    match *b.get(pos)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(pos + 1),
        b'u' => {
            let unit = hex4(pos + 1)?;
            let next = pos + 5;
            match unit {
                0xd800..=0xdbff => {
                    if b.get(next..next + 2)? != b"\\u" {
                        return None;
                    }
                    (0xdc00..=0xdfff)
                        .contains(&hex4(next + 2)?)
                        .then_some(next + 6)
                }
                0xdc00..=0xdfff => None,
                _ => Some(next),
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_json() {
        for ok in [
            "0",
            "-0",
            "-12.5e+3",
            "1E2",
            "\"\"",
            "\"a\\u00e9\\ud83d\\ude00\\n\\/\"",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            " { \"a\" : [ 1 , {\"b\":null} , \"x\" ] , \"c\":{} } ",
            "\n[\t1\r]\n",
            "{\"a\":1,\"a\":2}",
            "\"héllo ✓\"",
            "[\"\\\\\", \"\\\"q\\\"\", \"\\ud83d\\ude00\", \"\\uFFFF\"]",
        ] {
            assert!(is_valid(ok), "{ok:?} should be valid");
        }
    }

    #[test]
    fn rejects_invalid_json() {
        for bad in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "NaN",
            "Infinity",
            "-Infinity",
            "tru",
            "nul",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":1]",
            "[1}",
            "[1] [2]",
            "\"unterminated",
            "\"raw\ncontrol\"",
            "\"bad \\x escape\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\ud800\\u0041\"",
            "\"\\udc00\"",
            "\"\\",
            "\"\\u",
            "\"\\ud83d\\",
            "\"\\ud83d\\ude0\"",
            "\"\\ud83d\\\"\"",
            "{\"a\":1}}",
            "'single'",
            "\u{feff}{}",
        ] {
            assert!(!is_valid(bad), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn depth_is_capped() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(is_valid(&ok));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(!is_valid(&deep));
        let mixed = "{\"a\":".repeat(70) + "[]" + &"}".repeat(70);
        assert!(is_valid(&mixed));
    }

    #[test]
    fn trim_ws_only_trims_json_whitespace() {
        assert_eq!(trim_ws(" \t\n{}\r "), "{}");
        assert_eq!(trim_ws("\u{a0}{}"), "\u{a0}{}");
    }
}
