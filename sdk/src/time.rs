//! Time conversion: SLS `Time` + `Time_ns` → [`Timestamp`], and the text forms SIEM formats
//! want (RFC 3339, epoch milliseconds for CEF `rt`, `MMM dd yyyy HH:mm:ss.SSS` for LEEF
//! `devTime`). Everything is UTC and written into a caller's `String` (no allocation).
//!
//! Does not own: how the host renders a [`Timestamp`] in an HEC envelope or a syslog header
//! (that is the sink's job; plugins hand over the `Timestamp` itself).

use std::fmt::Write as _;

use crate::Timestamp;

/// Java `SimpleDateFormat` pattern of [`write_leef_dev_time`], for the LEEF `devTimeFormat`
/// attribute (IBM's suggested pattern, docs/rendering.md §9 "LEEF").
pub const LEEF_DEV_TIME_FORMAT: &str = "MMM dd yyyy HH:mm:ss.SSS";

const NANOS_PER_SEC: u32 = 1_000_000_000;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Timestamp {
    /// A timestamp from SLS `Log.Time` (seconds) and `Log.Time_ns` (nanosecond part).
    /// An absent `Time_ns` is 0; an out-of-range one (≥ 10⁹, which SLS never sends) carries
    /// into the seconds rather than producing an invalid timestamp.
    #[inline]
    pub fn from_sls(time: u32, time_ns: Option<u32>) -> Self {
        let ns = time_ns.unwrap_or(0);
        Self {
            seconds: i64::from(time) + i64::from(ns / NANOS_PER_SEC),
            nanos: ns % NANOS_PER_SEC,
        }
    }

    /// Milliseconds since the Unix epoch (CEF `rt`, `start`, `end`), truncated.
    #[inline]
    pub fn epoch_millis(&self) -> i64 {
        self.seconds * 1000 + i64::from(self.nanos / 1_000_000)
    }
}

/// A calendar date and time of day in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month 1..=12.
    pub month: u32,
    /// Day of month 1..=31.
    pub day: u32,
    /// Hour 0..=23.
    pub hour: u32,
    /// Minute 0..=59.
    pub minute: u32,
    /// Second 0..=59.
    pub second: u32,
}

impl Civil {
    /// The UTC calendar time of `seconds` since the Unix epoch (days-from-civil inverse,
    /// after Howard Hinnant's `civil_from_days`; valid for the whole `i64` day range we use).
    pub fn from_unix(seconds: i64) -> Self {
        let days = seconds.div_euclid(86_400);
        let secs = seconds.rem_euclid(86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097) as u32; // [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
        let mp = (5 * doy + 2) / 153; // [0, 11]
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = i64::from(yoe) + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
        }
    }

    /// English three-letter month abbreviation (`Jan`…`Dec`).
    pub fn month_abbrev(&self) -> &'static str {
        MONTHS[(self.month - 1) as usize]
    }
}

/// Digits after the seconds in [`write_rfc3339`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fraction {
    /// No fraction (`…:20Z`).
    None,
    /// Milliseconds (`…:20.123Z`).
    Millis,
    /// Microseconds (`…:20.123456Z`).
    Micros,
    /// Nanoseconds (`…:20.123456789Z`).
    Nanos,
    /// Microseconds when the nanosecond part is non-zero, none otherwise (the rule shipper's
    /// syslog sink uses for RFC 5424 headers).
    MicrosIfAny,
}

/// Writes `ts` as RFC 3339 in UTC (`2023-11-14T22:13:20.123456Z`), fraction truncated.
pub fn write_rfc3339(out: &mut String, ts: Timestamp, fraction: Fraction) {
    let c = Civil::from_unix(ts.seconds);
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    );
    let (digits, value) = match fraction {
        Fraction::None => (0, 0),
        Fraction::Millis => (3, ts.nanos / 1_000_000),
        Fraction::Micros => (6, ts.nanos / 1_000),
        Fraction::Nanos => (9, ts.nanos),
        Fraction::MicrosIfAny if ts.nanos != 0 => (6, ts.nanos / 1_000),
        Fraction::MicrosIfAny => (0, 0),
    };
    if digits > 0 {
        let _ = write!(out, ".{value:0digits$}");
    }
    out.push('Z');
}

/// Writes `ts` in UTC as `MMM dd yyyy HH:mm:ss.SSS` (e.g. `Nov 14 2023 22:13:20.123`), the
/// pattern [`LEEF_DEV_TIME_FORMAT`] names, for LEEF `devTime` and CEF's date form.
pub fn write_leef_dev_time(out: &mut String, ts: Timestamp) {
    let c = Civil::from_unix(ts.seconds);
    let _ = write!(
        out,
        "{} {:02} {:04} {:02}:{:02}:{:02}.{:03}",
        c.month_abbrev(),
        c.day,
        c.year,
        c.hour,
        c.minute,
        c.second,
        ts.nanos / 1_000_000
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(seconds: i64, nanos: u32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    #[test]
    fn from_sls_handles_absent_zero_and_overflowing_nanos() {
        assert_eq!(Timestamp::from_sls(5, None), ts(5, 0));
        assert_eq!(Timestamp::from_sls(5, Some(0)), ts(5, 0));
        assert_eq!(Timestamp::from_sls(5, Some(123)), ts(5, 123));
        assert_eq!(Timestamp::from_sls(5, Some(2_000_000_001)), ts(7, 1));
    }

    #[test]
    fn civil_matches_known_dates() {
        let c = Civil::from_unix(1_700_000_000);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2023, 11, 14, 22, 13, 20)
        );
        let c = Civil::from_unix(0);
        assert_eq!((c.year, c.month, c.day), (1970, 1, 1));
        // Leap day, and the day after.
        assert_eq!(Civil::from_unix(951_782_400).day, 29); // 2000-02-29
        let c = Civil::from_unix(951_868_800);
        assert_eq!((c.month, c.day), (3, 1));
        let c = Civil::from_unix(-1);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (1969, 12, 31, 23, 59, 59)
        );
        // 2038 and beyond (u32 SLS times reach 2106).
        let c = Civil::from_unix(i64::from(u32::MAX));
        assert_eq!((c.year, c.month, c.day), (2106, 2, 7));
    }

    #[test]
    fn civil_agrees_with_a_day_by_day_walk() {
        // Walk 1970-01-01 .. 2110 one day at a time and compare against a naive calendar.
        let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
        for day in 0..(140 * 366) {
            let c = Civil::from_unix(day * 86_400 + 86_399);
            assert_eq!((c.year, c.month, c.day), (y, m, d), "day {day}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > len[(m - 1) as usize] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn rfc3339_fractions() {
        let t = ts(1_700_000_000, 123_456_789);
        let f = |fr| {
            let mut s = String::new();
            write_rfc3339(&mut s, t, fr);
            s
        };
        assert_eq!(f(Fraction::None), "2023-11-14T22:13:20Z");
        assert_eq!(f(Fraction::Millis), "2023-11-14T22:13:20.123Z");
        assert_eq!(f(Fraction::Micros), "2023-11-14T22:13:20.123456Z");
        assert_eq!(f(Fraction::Nanos), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(f(Fraction::MicrosIfAny), "2023-11-14T22:13:20.123456Z");
        let mut s = String::new();
        write_rfc3339(&mut s, ts(1_700_000_000, 0), Fraction::MicrosIfAny);
        assert_eq!(s, "2023-11-14T22:13:20Z");
        let mut s = String::new();
        write_rfc3339(&mut s, ts(1_700_000_000, 5_000), Fraction::Micros);
        assert_eq!(s, "2023-11-14T22:13:20.000005Z");
    }

    #[test]
    fn leef_dev_time_and_epoch_millis() {
        let mut s = String::new();
        write_leef_dev_time(&mut s, ts(1_700_000_000, 5_999_999));
        assert_eq!(s, "Nov 14 2023 22:13:20.005");
        let mut s = String::new();
        write_leef_dev_time(&mut s, ts(1_704_067_200, 0)); // 2024-01-01
        assert_eq!(s, "Jan 01 2024 00:00:00.000");
        assert_eq!(
            ts(1_700_000_000, 123_456_789).epoch_millis(),
            1_700_000_000_123
        );
    }
}
