//! One receiver or a list of them: the `endpoint` / `endpoints` (HEC) and `address` /
//! `addresses` (syslog) pairs of keys, checked alike: one of the two, a list that is not
//! empty, every element valid (errors name it: `endpoints[2]`), none twice. What only one
//! sink cares about (one scheme for every HEC URL, one address for UDP) stays with that sink.

use crate::error::ConfigError;

/// The two keys of a pair, and an example list for the "is empty" message.
pub(crate) struct Keys {
    /// The single key (`endpoint`, `address`).
    pub one: &'static str,
    /// The list key (`endpoints`, `addresses`).
    pub many: &'static str,
    /// A valid list, as the user would write it.
    pub example: &'static str,
}

/// `one` (its value; `one_set` when the user gave it) or `many`, never both; each element
/// through `parse` with its key; an element `same` as an earlier one is refused.
pub(crate) fn one_or_many<C, T>(
    keys: &Keys,
    (one, one_set): (&C, bool),
    many: Option<&[C]>,
    mut parse: impl FnMut(&C, String) -> Result<T, ConfigError>,
    same: impl Fn(&T, &T) -> bool,
) -> Result<Vec<T>, ConfigError> {
    let list = match (many, one_set) {
        (None, _) => return Ok(vec![parse(one, keys.one.to_owned())?]),
        (Some(_), true) => {
            return Err(ConfigError::new(
                keys.many,
                format!("set either `{}` or `{}`, not both", keys.one, keys.many),
            ));
        }
        (Some(list), false) => list,
    };
    if list.is_empty() {
        return Err(ConfigError::new(
            keys.many,
            format!("is empty: list at least one, e.g. {}", keys.example),
        ));
    }
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let key = format!("{}[{i}]", keys.many);
        let parsed = parse(c, key.clone())?;
        if let Some(j) = out.iter().position(|o| same(o, &parsed)) {
            return Err(ConfigError::new(
                key,
                format!("is listed twice (also {}[{j}])", keys.many),
            ));
        }
        out.push(parsed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: Keys = Keys {
        one: "a",
        many: "as",
        example: "[1, 2]",
    };

    fn check(one: (&i32, bool), many: Option<&[i32]>) -> Result<Vec<i32>, ConfigError> {
        one_or_many(
            &KEYS,
            one,
            many,
            |&v, key| {
                if v < 0 {
                    Err(ConfigError::new(key, "negative"))
                } else {
                    Ok(v)
                }
            },
            |a, b| a == b,
        )
    }

    #[test]
    fn one_or_a_list_never_both() {
        assert_eq!(check((&7, true), None).unwrap(), [7]);
        assert_eq!(check((&0, false), Some(&[1, 2])).unwrap(), [1, 2]);
        let e = check((&-1, false), None).unwrap_err();
        assert_eq!(e.field, "a", "an unset single value is still checked: {e}");
        for (many, field, words) in [
            (&[][..], "as", "is empty"),
            (&[1, -2][..], "as[1]", "negative"),
            (&[1, 2, 1][..], "as[2]", "twice (also as[0])"),
        ] {
            let e = check((&0, false), Some(many)).unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.message.contains(words), "{e}");
        }
        assert_eq!(check((&1, true), Some(&[2])).unwrap_err().field, "as");
    }
}
