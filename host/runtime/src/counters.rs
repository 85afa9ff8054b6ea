//! `PluginCounters`: the values plugins add with `counter-add`, shared by every instance of
//! one loaded plugin so the app can export them (`shipper_plugin_events_total{plugin,name}`).
//! The number of names is capped (each name is a time series); additions to names past the
//! cap, and to names that are not metric-label friendly, go to one overflow counter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Name of the counter that collects additions refused by the cap or by name validation.
pub const OVERFLOW_COUNTER: &str = "_overflow";

/// Longest accepted counter name, in bytes.
const MAX_NAME_BYTES: usize = 64;

/// Counters of one plugin; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct PluginCounters {
    inner: Arc<Mutex<BTreeMap<String, u64>>>,
    max_names: usize,
}

impl PluginCounters {
    pub(crate) fn new(max_names: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(BTreeMap::new())),
            max_names,
        }
    }

    /// Adds `delta` to `name`. Returns false when the addition went to [`OVERFLOW_COUNTER`].
    pub fn add(&self, name: &str, delta: u64) -> bool {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_BYTES
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
        if valid && let Some(value) = map.get_mut(name) {
            *value = value.saturating_add(delta);
            return true;
        }
        // The overflow counter does not count against the cap.
        let named = map.len() - usize::from(map.contains_key(OVERFLOW_COUNTER));
        if valid && named < self.max_names {
            map.insert(name.to_owned(), delta);
            return true;
        }
        let overflow = map.entry(OVERFLOW_COUNTER.to_owned()).or_insert(0);
        *overflow = overflow.saturating_add(delta);
        false
    }

    /// A copy of every counter, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// One counter's value.
    pub fn get(&self, name: &str) -> Option<u64> {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_past_the_cap_and_invalid_names_overflow() {
        let counters = PluginCounters::new(2);
        assert!(counters.add("a", 1));
        assert!(counters.add("b", 2));
        assert!(counters.add("a", 3));
        assert!(!counters.add("c", 5));
        assert!(!counters.add("bad name", 7));
        assert!(!counters.add(&"x".repeat(65), 1));
        assert_eq!(
            counters.snapshot(),
            vec![
                ("_overflow".to_owned(), 13),
                ("a".to_owned(), 4),
                ("b".to_owned(), 2)
            ]
        );
        assert_eq!(counters.get("a"), Some(4));
    }
}
