//! Syslog facility and severity names ↔ numbers (RFC 5424 §6.2.1; the names rsyslog and
//! `logger` use, docs/rendering.md §4.1), for plugin config such as `"facility": "local0"`.
//!
//! Does not own: the message layout (the host renders RFC 5424 / 3164 from a
//! [`crate::SyslogMessage`]); see [`crate::SyslogMessage::new`] for building one.

use crate::Severity;

/// Facility `user` (1): what the seed script's `syslogclient.FAC_USER` default is.
pub const DEFAULT_FACILITY: u8 = 1;

const FACILITIES: [(&str, u8); 28] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("security", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("audit", 13),
    ("alert", 14),
    ("clock", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
    // Aliases last so that `facility_name` returns the canonical names.
    ("kernel", 0),
    ("logaudit", 13),
    ("logalert", 14),
];

const SEVERITIES: [(&str, Severity); 14] = [
    ("emerg", Severity::Emergency),
    ("alert", Severity::Alert),
    ("crit", Severity::Critical),
    ("err", Severity::Error),
    ("warning", Severity::Warning),
    ("notice", Severity::Notice),
    ("info", Severity::Informational),
    ("debug", Severity::Debug),
    ("emergency", Severity::Emergency),
    ("panic", Severity::Emergency),
    ("critical", Severity::Critical),
    ("error", Severity::Error),
    ("warn", Severity::Warning),
    ("informational", Severity::Informational),
];

/// The facility number of a name (`"local0"` → 16), case-insensitive.
pub fn facility_from_name(name: &str) -> Option<u8> {
    FACILITIES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, f)| f)
}

/// The canonical name of facility `code` (16 → `"local0"`).
pub fn facility_name(code: u8) -> Option<&'static str> {
    FACILITIES
        .iter()
        .find(|&&(_, f)| f == code)
        .map(|&(n, _)| n)
}

/// Names accepted by [`facility_from_name`], for error messages.
pub fn facility_names() -> impl Iterator<Item = &'static str> {
    FACILITIES.iter().map(|&(n, _)| n)
}

impl Severity {
    /// The severity of a name (`"info"`, `"informational"`, `"warn"`…), case-insensitive.
    pub fn from_name(name: &str) -> Option<Severity> {
        SEVERITIES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, s)| s)
    }

    /// The severity of a number 0..=7.
    pub fn from_code(code: u8) -> Option<Severity> {
        SEVERITIES[..8].get(usize::from(code)).map(|&(_, s)| s)
    }

    /// The RFC 5424 number (0 = emergency … 7 = debug).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The short name (`emerg`, `alert`, `crit`, `err`, `warning`, `notice`, `info`,
    /// `debug`).
    pub fn name(self) -> &'static str {
        SEVERITIES[usize::from(self.code())].0
    }

    /// Names accepted by [`Severity::from_name`], for error messages.
    pub fn names() -> impl Iterator<Item = &'static str> {
        SEVERITIES.iter().map(|&(n, _)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities() {
        assert_eq!(facility_from_name("user"), Some(1));
        assert_eq!(facility_from_name("LOCAL7"), Some(23));
        assert_eq!(facility_from_name("security"), Some(4));
        assert_eq!(facility_from_name("nope"), None);
        for code in 0..24 {
            let name = facility_name(code).unwrap();
            assert_eq!(facility_from_name(name), Some(code));
        }
        assert_eq!(facility_name(16), Some("local0"));
        assert_eq!(facility_name(24), None);
    }

    #[test]
    fn severities() {
        for code in 0..8 {
            let s = Severity::from_code(code).unwrap();
            assert_eq!(s.code(), code);
            assert_eq!(Severity::from_name(s.name()), Some(s));
        }
        assert_eq!(Severity::from_code(8), None);
        assert_eq!(Severity::from_name("Info"), Some(Severity::Informational));
        assert_eq!(Severity::from_name("warn"), Some(Severity::Warning));
        assert_eq!(Severity::Informational.name(), "info");
    }
}
