//! The time window of `shipper replay` and `shipper reconcile`: `--from` and `--to` as
//! RFC 3339 or unix seconds, checked against each other, the clock and the logstore's
//! retention.

use std::fmt;

/// A bad `--from`/`--to`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Neither RFC 3339 nor unix seconds.
    #[error(
        "{flag} {value:?} is not a time: give RFC 3339 (`2025-06-03T10:00:00Z`, `2025-06-03T12:00:00+02:00`) or unix seconds (`1748944800`)"
    )]
    Unparsable {
        /// `--from` or `--to`.
        flag: &'static str,
        /// What was given.
        value: String,
    },
    /// `--to` is not after `--from`.
    #[error("--to ({to}) must be after --from ({from}): the window is [from, to)")]
    Reversed {
        /// The start.
        from: String,
        /// The end.
        to: String,
    },
    /// `--from` is in the future.
    #[error("--from ({from}) is in the future: nothing was received after it yet")]
    Future {
        /// The start.
        from: String,
    },
    /// The window starts before the logstore's retention: its oldest part is deleted.
    #[error(
        "the window starts at {from}, but logstore {logstore} keeps logs for {ttl_days} days (GetLogStore `ttl`): logs received before {oldest} are deleted and cannot be replayed; start at {oldest} or later"
    )]
    BeyondRetention {
        /// `project/logstore`.
        logstore: String,
        /// The start.
        from: String,
        /// Its `ttl`.
        ttl_days: u32,
        /// `now - ttl`.
        oldest: String,
    },
}

/// The `--from`/`--to` flags of the commands that take a window of SLS receive times.
#[derive(Debug, Clone, clap::Args)]
pub struct WindowArgs {
    /// Start of the window (included), by SLS receive time (as GetCursor reads it): RFC 3339
    /// (`2025-06-03T10:00:00Z`) or unix seconds.
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// End of the window (excluded), after `--from`: RFC 3339 or unix seconds.
    #[arg(long, value_name = "TIME")]
    pub to: String,
}

impl WindowArgs {
    /// The window, checked against `now` (unix s): see [`Window::parse`].
    pub fn parse(&self, now: i64) -> Result<Window, WindowError> {
        Window::parse(&self.from, &self.to, now)
    }
}

/// `[from, to)` in unix seconds, by SLS receive time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First second in the window.
    pub from: i64,
    /// First second after it.
    pub to: i64,
}

impl Window {
    /// Parses and checks `--from` and `--to` against `now` (unix s).
    pub fn parse(from: &str, to: &str, now: i64) -> Result<Self, WindowError> {
        let from = parse_time("--from", from)?;
        let to = parse_time("--to", to)?;
        if to <= from {
            return Err(WindowError::Reversed {
                from: rfc3339(from),
                to: rfc3339(to),
            });
        }
        if from > now {
            return Err(WindowError::Future {
                from: rfc3339(from),
            });
        }
        Ok(Self { from, to })
    }

    /// Refuses a window that starts before `now - ttl_days`: SLS has deleted that data, and
    /// GetCursor would silently answer the oldest cursor left (docs/replay.md "Retention").
    pub fn check_retention(
        &self,
        logstore: &str,
        ttl_days: u32,
        now: i64,
    ) -> Result<(), WindowError> {
        let oldest = now - i64::from(ttl_days) * 86_400;
        if self.from < oldest {
            return Err(WindowError::BeyondRetention {
                logstore: logstore.to_owned(),
                from: rfc3339(self.from),
                ttl_days,
                oldest: rfc3339(oldest),
            });
        }
        Ok(())
    }

    /// The window's own `__time__` range (`--filter-log-time`), clamped to `u32` as SLS
    /// log times are.
    pub fn log_time_range(&self) -> std::ops::Range<u32> {
        let clamp = |t: i64| u32::try_from(t.max(0)).unwrap_or(u32::MAX);
        clamp(self.from)..clamp(self.to)
    }

    /// The replay id the marker carries: the window as an ISO 8601 interval, the same for
    /// every run (and resumed run) of one window.
    pub fn id(&self) -> String {
        format!("{}/{}", rfc3339(self.from), rfc3339(self.to))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", rfc3339(self.from), rfc3339(self.to))
    }
}

/// RFC 3339 (UTC) of unix seconds.
pub fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(|_| t.to_string(), |ts| ts.to_string())
}

/// RFC 3339 or unix seconds → unix seconds (a fractional second rounds down).
fn parse_time(flag: &'static str, value: &str) -> Result<i64, WindowError> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return Ok(secs);
    }
    v.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| WindowError::Unparsable {
            flag,
            value: value.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;

    #[test]
    fn both_forms_parse_to_the_same_second() {
        let w = Window::parse("2025-06-15T10:00:00Z", "1749988800", NOW).unwrap();
        assert_eq!(w.from, 1_749_981_600);
        assert_eq!(w.to, 1_749_988_800);
        let offset = Window::parse("2025-06-15T12:00:00+02:00", "1749988800", NOW).unwrap();
        assert_eq!(offset, w);
        assert_eq!(w.id(), "2025-06-15T10:00:00Z/2025-06-15T12:00:00Z");
        assert_eq!(w.log_time_range(), 1_749_981_600..1_749_988_800);
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        let e = Window::parse("yesterday", "1", NOW).unwrap_err();
        assert!(
            e.to_string().contains("--from \"yesterday\" is not a time"),
            "{e}"
        );
        let e = Window::parse("1749988800", "1749981600", NOW).unwrap_err();
        assert!(matches!(e, WindowError::Reversed { .. }), "{e}");
        assert!(Window::parse("100", "100", NOW).is_err(), "empty window");
        let e = Window::parse(&(NOW + 10).to_string(), &(NOW + 20).to_string(), NOW).unwrap_err();
        assert!(matches!(e, WindowError::Future { .. }), "{e}");
    }

    #[test]
    fn retention_is_now_minus_ttl() {
        let w = Window {
            from: NOW - 31 * 86_400,
            to: NOW,
        };
        let e = w.check_retention("p/ls", 30, NOW).unwrap_err();
        assert!(e.to_string().contains("keeps logs for 30 days"), "{e}");
        assert!(w.check_retention("p/ls", 31, NOW).is_ok());
    }
}
