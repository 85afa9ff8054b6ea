//! Plugin config: the JSON object `init` receives (the `[plugin.config]` table of shipper's
//! config), read key by key with errors that name the key.
//!
//! A plugin's [`crate::Plugin::init`] takes the keys it knows with the typed getters; the SDK
//! then refuses any key left over ("unknown config key `sourctype`; known keys: …"), so a
//! typo fails at start-up instead of being silently ignored.

use std::fmt;

use crate::json::Value;

/// Why a plugin config was refused. The message names the key and says what is expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    /// An error about config key `key`.
    pub fn key(key: &str, message: impl fmt::Display) -> Self {
        Self(format!("config key `{key}`: {message}"))
    }

    /// An error with a free-form message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The plugin's config object (or a nested object of it), consumed key by key.
#[derive(Debug)]
pub struct Config {
    members: Vec<(String, Value)>,
    known: Vec<&'static str>,
    /// `outer.` for a nested object, so errors name the full path.
    prefix: String,
}

impl Config {
    /// Parses the config text `init` received. It must be a JSON object.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let value = Value::parse(text)
            .map_err(|e| ConfigError::new(format!("plugin config is not valid JSON: {e}")))?;
        match value {
            Value::Object(members) => Ok(Config {
                members,
                known: Vec::new(),
                prefix: String::new(),
            }),
            other => Err(ConfigError::new(format!(
                "plugin config must be a JSON object, got {}",
                other.kind()
            ))),
        }
    }

    /// The full path of `key` for messages (`header.vendor` inside `header`).
    pub fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn err(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        ConfigError::key(&self.path(key), message)
    }

    /// Takes a nested object as a [`Config`] of its own (errors name `key.inner`); call
    /// [`finish`](Self::finish) on it when done.
    pub fn object(&mut self, key: &'static str) -> Result<Option<Config>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Object(members)) => Ok(Some(Config {
                members,
                known: Vec::new(),
                prefix: format!("{}{key}.", self.prefix),
            })),
            Some(other) => Err(self.err(
                key,
                format_args!("expected an object, got {}", other.kind()),
            )),
        }
    }

    /// Takes a nested object as its ordered `(key, value)` members (for mappings whose
    /// keys are data, like a field map).
    pub fn members(
        &mut self,
        key: &'static str,
    ) -> Result<Option<Vec<(String, Value)>>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Object(members)) => Ok(Some(members)),
            Some(other) => Err(self.err(
                key,
                format_args!("expected an object, got {}", other.kind()),
            )),
        }
    }

    /// Removes and returns the value of `key` (`None` when absent). A JSON `null` counts as
    /// absent, so `key = null` means "use the default".
    pub fn take(&mut self, key: &'static str) -> Option<Value> {
        self.known.push(key);
        let mut found = None;
        // A repeated key: the last one wins, as in most JSON readers.
        while let Some(i) = self.members.iter().position(|(k, _)| k == key) {
            found = Some(self.members.remove(i).1);
        }
        found.filter(|v| *v != Value::Null)
    }

    /// Takes a string.
    pub fn string(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(self.err(key, format_args!("expected a string, got {}", other.kind())))
            }
        }
    }

    /// Takes a string that, when present, is one of `allowed`.
    pub fn choice(
        &mut self,
        key: &'static str,
        allowed: &[&'static str],
    ) -> Result<Option<&'static str>, ConfigError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => allowed
                .iter()
                .find(|a| **a == s)
                .copied()
                .map(Some)
                .ok_or_else(|| {
                    self.err(
                        key,
                        format_args!("`{s}` is not one of: {}", allowed.join(", ")),
                    )
                }),
        }
    }

    /// Takes a boolean.
    pub fn bool(&mut self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(self.err(
                key,
                format_args!("expected true or false, got {}", other.kind()),
            )),
        }
    }

    /// Takes a non-negative integer no larger than `max`.
    pub fn uint(&mut self, key: &'static str, max: u64) -> Result<Option<u64>, ConfigError> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n <= max => Ok(Some(n)),
                _ => Err(self.err(
                    key,
                    format_args!("expected an integer from 0 to {max}, got {v}"),
                )),
            },
        }
    }

    /// Takes any JSON value (for keys with several accepted shapes).
    pub fn value(&mut self, key: &'static str) -> Option<Value> {
        self.take(key)
    }

    /// Fails if a key was not taken by the plugin (called by the SDK after `init`).
    pub fn finish(self) -> Result<(), ConfigError> {
        match self.members.first() {
            None => Ok(()),
            Some((key, _)) => {
                let mut known = self.known.clone();
                known.sort_unstable();
                known.dedup();
                let key = self.path(key);
                Err(ConfigError::new(if known.is_empty() {
                    format!("unknown config key `{key}`: this plugin takes no config")
                } else {
                    format!(
                        "unknown config key `{key}`; known keys here: {}",
                        known.join(", ")
                    )
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_getters_name_the_key() {
        let mut c = Config::parse(r#"{"a":"x","b":5,"c":true,"d":null,"e":"maybe"}"#).unwrap();
        assert_eq!(c.string("a").unwrap().as_deref(), Some("x"));
        assert_eq!(
            c.string("b").unwrap_err().to_string(),
            "config key `b`: expected a string, got a number"
        );
        assert_eq!(c.bool("c").unwrap(), Some(true));
        assert_eq!(c.string("d").unwrap(), None);
        assert_eq!(
            c.choice("e", &["yes", "no"]).unwrap_err().to_string(),
            "config key `e`: `maybe` is not one of: yes, no"
        );
        c.finish().unwrap();
    }

    #[test]
    fn leftover_keys_are_refused() {
        let mut c = Config::parse(r#"{"sourctype":"x","index":"i"}"#).unwrap();
        let _ = c.string("sourcetype");
        let _ = c.string("index");
        assert_eq!(
            c.finish().unwrap_err().to_string(),
            "unknown config key `sourctype`; known keys here: index, sourcetype"
        );
        let c = Config::parse(r#"{"x":1}"#).unwrap();
        assert!(
            c.finish()
                .unwrap_err()
                .to_string()
                .contains("takes no config")
        );
    }

    #[test]
    fn nested_objects_name_the_path() {
        let mut c =
            Config::parse(r#"{"header":{"vendor":1,"x":2},"map":{"b":"1","a":"2"}}"#).unwrap();
        let mut h = c.object("header").unwrap().unwrap();
        assert_eq!(
            h.string("vendor").unwrap_err().to_string(),
            "config key `header.vendor`: expected a string, got a number"
        );
        assert_eq!(
            h.finish().unwrap_err().to_string(),
            "unknown config key `header.x`; known keys here: vendor"
        );
        let m = c.members("map").unwrap().unwrap();
        assert_eq!(m[0].0, "b", "document order is kept");
        c.finish().unwrap();
    }

    #[test]
    fn not_an_object() {
        assert!(
            Config::parse("[1]")
                .unwrap_err()
                .to_string()
                .contains("an array")
        );
        assert!(
            Config::parse("{")
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
        let mut c = Config::parse(r#"{"n":300}"#).unwrap();
        assert!(
            c.uint("n", 255)
                .unwrap_err()
                .to_string()
                .contains("0 to 255")
        );
    }
}
