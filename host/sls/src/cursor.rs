//! SLS cursors (docs/sls-protocol.md §7 "Cursors"): standard base64, with `=` padding, of
//! the ASCII decimal of a signed 64-bit LogGroup position within one shard. Consecutive
//! LogGroups have consecutive positions. The emulator relies on that; clients are told to
//! compare cursors only for equality, and shipper does, except for the lag gauge and the
//! dead-letter cursor, which count LogGroups from a cursor.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// A decoded cursor: a LogGroup position in one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor(pub i64);

/// A string that is not a valid SLS cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor {0:?}: expected base64 of a decimal integer")]
pub struct CursorError(pub String);

impl Cursor {
    /// Parses the wire form.
    pub fn parse(s: &str) -> Result<Self, CursorError> {
        let bytes = STANDARD
            .decode(s.trim())
            .map_err(|_| CursorError(s.to_owned()))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CursorError(s.to_owned()))?;
        // Python's base64.decodebytes tolerates a trailing newline inside; SLS never sends one.
        let n = text
            .trim()
            .parse::<i64>()
            .map_err(|_| CursorError(s.to_owned()))?;
        Ok(Self(n))
    }

    /// The wire form.
    pub fn encode(self) -> String {
        STANDARD.encode(self.0.to_string())
    }

    /// The position `n` groups later.
    pub fn advance(self, n: i64) -> Self {
        Self(self.0.saturating_add(n))
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

impl std::str::FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_examples() {
        let path = format!(
            "{}/../../tests/fixtures/sls/cursor_examples.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let mut checked = 0;
        for ex in doc["examples"].as_array().unwrap() {
            let n = ex["int"].as_i64().unwrap();
            let s = ex["cursor"].as_str().unwrap();
            assert_eq!(Cursor(n).encode(), s);
            assert_eq!(Cursor::parse(s).unwrap(), Cursor(n));
            checked += 1;
        }
        for (s, n) in doc["doc_examples_from_alibaba_docs"].as_object().unwrap() {
            assert_eq!(Cursor::parse(s).unwrap().0.to_string(), n.as_str().unwrap());
            checked += 1;
        }
        assert_eq!(checked, 6);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "not base64!",
            "YWJj",     /* "abc" */
            "MTIzYQ==", /* "123a" */
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn advance_is_consecutive() {
        let c = Cursor(1_700_000_000_000_000_000);
        assert_eq!(c.advance(2).encode(), "MTcwMDAwMDAwMDAwMDAwMDAwMg==");
    }
}
