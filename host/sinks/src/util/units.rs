//! Deserializers for config numbers with a unit, so a wrong value is named for what it is
//! (`-5 is not a byte count`) rather than as a Rust type (`expected usize`).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// A whole number of `unit` (`bytes`, `milliseconds`): zero or more.
struct Count {
    /// What the number counts, for the error message.
    what: &'static str,
    /// A valid example, for the error message.
    example: &'static str,
}

impl Count {
    fn refuse<E: de::Error>(&self, shown: impl fmt::Display) -> E {
        E::custom(format!(
            "{shown} is not {}: use a whole number, e.g. {}",
            self.what, self.example
        ))
    }
}

impl Visitor<'_> for Count {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (a whole number, e.g. {})", self.what, self.example)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| self.refuse(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        Err(self.refuse(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        Err(self.refuse(format_args!("{v:?}")))
    }
}

/// A size in bytes (`batch_max_bytes`, `max_event_bytes`, …).
pub(crate) fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let count = Count {
        what: "a byte count",
        example: "1000000",
    };
    let v = d.deserialize_any(count)?;
    usize::try_from(v).map_err(|_| de::Error::custom(format!("{v} bytes is too large")))
}

/// A duration in milliseconds (`batch_linger_ms`, `request_timeout_ms`, …).
pub(crate) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(Count {
        what: "a number of milliseconds",
        example: "1000",
    })
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::bytes")]
        size: usize,
        #[serde(deserialize_with = "super::millis", default)]
        wait_ms: u64,
    }

    #[test]
    fn counts_name_their_unit_when_refused() {
        let ok: T = serde_json::from_str(r#"{"size": 5, "wait_ms": 7}"#).unwrap();
        assert_eq!((ok.size, ok.wait_ms), (5, 7));
        for (json, want) in [
            (r#"{"size": -5}"#, "-5 is not a byte count"),
            (r#"{"size": 1.5}"#, "1.5 is not a byte count"),
            (r#"{"size": "1MB"}"#, "\"1MB\" is not a byte count"),
            (
                r#"{"size": 1, "wait_ms": -1}"#,
                "-1 is not a number of milliseconds",
            ),
        ] {
            let err = serde_json::from_str::<T>(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
