//! Value types and checks every config section shares: durations (`500ms`, `20s`, `5m`),
//! SLS names, and the [`Problems`] list that collects every error of one config before any
//! of them is reported.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A duration in config: an integer number of seconds or a string like `500ms`, `20s`, `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Self(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t)
                .map(Self)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Parses `250ms`, `20s`, `5m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        format!("invalid duration {text:?}: expected e.g. \"500ms\", \"20s\", \"5m\"")
    })?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {text:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One configuration problem: the full dotted key (`sink.batch_max_bytes`,
/// `source.endpoint`) and what is wrong with the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The full key, as written in the config file.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config key `{}`: {}", self.key, self.message)
    }
}

/// Every problem found while resolving one configuration, in the order found: a user fixes
/// them all in one edit instead of one per start.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem with `key`.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Records `result`'s error under `key`, passing its value through.
    pub fn check<T>(&mut self, key: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|m| self.push(key, m)).ok()
    }

    /// How many problems were recorded (a section compares it before and after).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems recorded.
    pub fn into_vec(self) -> Vec<Problem> {
        self.0
    }

    /// The problems as the user reads them (tests compare these lines).
    #[cfg(test)]
    pub(crate) fn into_lines(self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// SLS names are `[A-Za-z0-9_-]`, 1 to 128 characters (projects are stricter: lower-case
/// letters, digits and hyphens, which this also accepts).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid SLS name (letters, digits, '-', '_')"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("ok_name-1").is_ok());
        let err = check_name("has space").unwrap_err();
        assert!(err.contains("has space"), "{err}");
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(129)).is_err());
    }

    #[test]
    fn problems_keep_every_entry_in_order() {
        let mut p = Problems::default();
        assert!(p.is_empty());
        assert_eq!(p.check("a.b", Ok::<_, String>(3)), Some(3));
        assert_eq!(p.check::<u8>("a.c", Err("bad".into())), None);
        p.push("a.d", "worse");
        let lines: Vec<String> = p.into_vec().iter().map(ToString::to_string).collect();
        assert_eq!(lines, ["config key `a.c`: bad", "config key `a.d`: worse"]);
    }
}
