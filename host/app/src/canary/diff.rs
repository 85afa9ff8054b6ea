//! Comparing one rendered event of the current plugin with the canary's: equal, or the
//! names of the fields that differ. Rendered events that are JSON (HEC envelopes) are
//! compared field by field, descending into objects (`event.user`, `fields.env`) and into
//! string values that are themselves JSON objects; anything else is compared as text.

use serde_json::Value;

/// How two rendered events compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// Byte for byte the same.
    Same,
    /// Both are JSON and these fields (dotted paths) differ.
    Json(Vec<String>),
    /// Not JSON; the texts differ.
    Text,
}

/// Compares two rendered events.
pub fn compare(current: &[u8], canary: &[u8]) -> Comparison {
    if current == canary {
        return Comparison::Same;
    }
    match (
        serde_json::from_slice::<Value>(current),
        serde_json::from_slice::<Value>(canary),
    ) {
        (Ok(a), Ok(b)) => {
            let mut fields = Vec::new();
            diff("", &a, &b, &mut fields);
            if fields.is_empty() {
                // Same JSON, different bytes (key order, spacing).
                fields.push("(formatting)".into());
            }
            Comparison::Json(fields)
        }
        _ => Comparison::Text,
    }
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff(&join(k), va, vb, out),
                    _ => out.push(join(k)),
                }
            }
        }
        (Value::String(x), Value::String(y)) if x != y => {
            match (
                serde_json::from_str::<Value>(x),
                serde_json::from_str::<Value>(y),
            ) {
                (Ok(va @ Value::Object(_)), Ok(vb @ Value::Object(_))) => {
                    diff(path, &va, &vb, out);
                }
                _ => out.push(path.to_owned()),
            }
        }
        (a, b) if a != b => out.push(if path.is_empty() {
            "(event)".to_owned()
        } else {
            path.to_owned()
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_events_name_the_fields_that_differ() {
        let a = br#"{"time":1,"sourcetype":"a","event":{"user":"x","n":1},"fields":{"env":"p"}}"#;
        let b = br#"{"time":1,"sourcetype":"b","event":{"user":"y","n":1},"fields":{"env":"p","new":"1"}}"#;
        assert_eq!(
            compare(a, b),
            Comparison::Json(vec![
                "event.user".into(),
                "fields.new".into(),
                "sourcetype".into()
            ])
        );
        assert_eq!(compare(a, a), Comparison::Same);
        // A JSON event carried as a string is compared inside.
        let s1 = br#"{"event":"{\"a\":1,\"b\":2}"}"#;
        let s2 = br#"{"event":"{\"a\":1,\"b\":3}"}"#;
        assert_eq!(compare(s1, s2), Comparison::Json(vec!["event.b".into()]));
        assert_eq!(
            compare(br#"{"a":1}"#, br#"{ "a": 1 }"#),
            Comparison::Json(vec!["(formatting)".into()])
        );
    }

    #[test]
    fn other_events_are_compared_as_text() {
        assert_eq!(compare(b"<14>1 a b", b"<14>1 a c"), Comparison::Text);
        assert_eq!(compare(b"<14>1 a b", b"<14>1 a b"), Comparison::Same);
    }
}
