//! RFC 5424 and RFC 3164 rendering of a [`SyslogMessage`] (docs/rendering.md §2 rules 5–6,
//! §4, §5 and §7): PRI range checked; UTC timestamps with exactly six fraction digits (or
//! none) and upper-case `T`/`Z`; header fields reduced to PRINTUSASCII (other bytes → `_`)
//! and cut to 255/48/128/32; SD-IDs and PARAM-NAMEs validated, PARAM-VALUEs escaped
//! (`"` `\` `]`); MSG cut on a UTF-8 boundary so the message fits `max_message_bytes`.
//! Framing is applied afterwards by `framing.rs`.

use std::io::Write as _;

use super::config::{Format, Framing};
use super::framing::push_escaped;
use crate::error::RenderError;
use crate::payload::{SyslogMessage, Timestamp};
use crate::util::push_digits;

/// What rendering needs from the sink settings.
#[derive(Debug, Clone)]
pub(crate) struct RenderSettings {
    pub format: Format,
    /// Default HOSTNAME, already sanitised.
    pub hostname: String,
    pub bom: bool,
    pub rfc3164_offset_secs: i32,
    pub max_message_bytes: usize,
    pub framing: Option<Framing>,
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Renders `msg` (unframed) at the end of `out`. Returns whether MSG was truncated. On
/// error `out` is unchanged.
pub(crate) fn render(
    msg: &SyslogMessage,
    s: &RenderSettings,
    out: &mut Vec<u8>,
) -> Result<bool, RenderError> {
    if msg.facility > 23 {
        return Err(RenderError::Facility(msg.facility));
    }
    let start = out.len();
    let pri = u32::from(msg.facility) * 8 + u32::from(msg.severity.code());
    let escape_lf = s.framing == Some(Framing::Lf);
    let msg_start = match s.format {
        Format::Rfc5424 => {
            push_pri(out, pri);
            out.extend_from_slice(b"1 ");
            write_timestamp_5424(out, msg.timestamp);
            out.push(b' ');
            header_field(out, msg.hostname.as_deref().unwrap_or(&s.hostname), 255);
            out.push(b' ');
            header_field(out, msg.app_name.as_deref().unwrap_or(""), 48);
            out.push(b' ');
            header_field(out, msg.proc_id.as_deref().unwrap_or(""), 128);
            out.push(b' ');
            header_field(out, msg.msg_id.as_deref().unwrap_or(""), 32);
            out.push(b' ');
            if let Err(e) = structured_data(out, msg, escape_lf) {
                out.truncate(start);
                return Err(e);
            }
            if msg.msg.is_empty() {
                return Ok(false);
            }
            out.push(b' ');
            if s.bom {
                out.extend_from_slice(UTF8_BOM);
            }
            out.len()
        }
        Format::Rfc3164 => {
            push_pri(out, pri);
            write_timestamp_3164(
                out,
                msg.timestamp.unwrap_or_else(Timestamp::now),
                s.rfc3164_offset_secs,
            );
            out.push(b' ');
            header_field(out, msg.hostname.as_deref().unwrap_or(&s.hostname), 255);
            out.push(b' ');
            tag(
                out,
                msg.app_name.as_deref().unwrap_or(""),
                msg.proc_id.as_deref(),
            );
            out.push(b':');
            if msg.msg.is_empty() {
                return Ok(false);
            }
            out.push(b' ');
            out.len()
        }
    };
    push_escaped(out, msg.msg.as_bytes(), escape_lf);
    fit(out, start, msg_start, s.max_message_bytes)
}

/// Renders a raw payload (framing only): cut to the limit on a UTF-8 boundary, LFs
/// escaped under LF framing.
pub(crate) fn render_raw(
    raw: &[u8],
    s: &RenderSettings,
    out: &mut Vec<u8>,
) -> Result<bool, RenderError> {
    let start = out.len();
    push_escaped(out, raw, s.framing == Some(Framing::Lf));
    fit(out, start, start, s.max_message_bytes)
}

/// Cuts the message part `out[msg_start..]` so the whole message `out[start..]` fits `max`.
fn fit(out: &mut Vec<u8>, start: usize, msg_start: usize, max: usize) -> Result<bool, RenderError> {
    let size = out.len() - start;
    if size <= max {
        return Ok(false);
    }
    let header = msg_start - start;
    if header >= max {
        out.truncate(start);
        return Err(RenderError::TooLarge { size, limit: max });
    }
    let mut cut = start + max;
    // Back up to a character boundary (never split a UTF-8 sequence, RFC 5424 §6.1).
    while cut > msg_start && (out[cut] & 0b1100_0000) == 0b1000_0000 {
        cut -= 1;
    }
    out.truncate(cut);
    Ok(true)
}

/// PRINTUSASCII only (33..=126, other bytes → `_`), at most `max` bytes, `-` when empty.
fn header_field(out: &mut Vec<u8>, v: &str, max: usize) {
    if v.is_empty() {
        out.push(b'-');
        return;
    }
    out.extend(
        v.bytes()
            .take(max)
            .map(|b| if (33..=126).contains(&b) { b } else { b'_' }),
    );
}

/// RFC 3164 TAG: `app[procid]` or `app`; `[`, `]` and `:` would end the TAG early for
/// parsers, so they become `_` too. At most 32 bytes of app name.
fn tag(out: &mut Vec<u8>, app: &str, proc_id: Option<&str>) {
    let clean = |b: u8| {
        if (33..=126).contains(&b) && !matches!(b, b'[' | b']' | b':') {
            b
        } else {
            b'_'
        }
    };
    if app.is_empty() {
        out.push(b'-');
    } else {
        out.extend(app.bytes().take(32).map(clean));
    }
    if let Some(p) = proc_id.filter(|p| !p.is_empty()) {
        out.push(b'[');
        out.extend(p.bytes().take(128).map(clean));
        out.push(b']');
    }
}

fn sd_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| (33..=126).contains(&b) && !matches!(b, b'=' | b']' | b'"'))
}

fn structured_data(
    out: &mut Vec<u8>,
    msg: &SyslogMessage,
    escape_lf: bool,
) -> Result<(), RenderError> {
    if msg.structured_data.is_empty() {
        out.push(b'-');
        return Ok(());
    }
    for (i, el) in msg.structured_data.iter().enumerate() {
        if !sd_name_ok(&el.id) {
            return Err(RenderError::StructuredData(format!(
                "SD-ID {:?} must be 1..=32 printable ASCII characters without '=', ']', '\"' or space",
                el.id
            )));
        }
        if msg.structured_data[..i].iter().any(|e| e.id == el.id) {
            return Err(RenderError::StructuredData(format!(
                "SD-ID {:?} appears twice (RFC 5424 §6.3.2)",
                el.id
            )));
        }
        out.push(b'[');
        out.extend_from_slice(el.id.as_bytes());
        for p in &el.params {
            if !sd_name_ok(&p.key) {
                return Err(RenderError::StructuredData(format!(
                    "PARAM-NAME {:?} in [{}] must be 1..=32 printable ASCII characters without '=', ']', '\"' or space",
                    p.key, el.id
                )));
            }
            out.push(b' ');
            out.extend_from_slice(p.key.as_bytes());
            out.extend_from_slice(b"=\"");
            let v = p.value.as_bytes();
            let mut run = 0;
            for (j, &b) in v.iter().enumerate() {
                if matches!(b, b'"' | b'\\' | b']') {
                    push_escaped(out, &v[run..j], escape_lf);
                    out.extend_from_slice(&[b'\\', b]);
                    run = j + 1;
                }
            }
            push_escaped(out, &v[run..], escape_lf);
            out.push(b'"');
        }
        out.push(b']');
    }
    Ok(())
}

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31) (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn civil(seconds: i64) -> Civil {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let sod = seconds.rem_euclid(86_400) as u32;
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod / 60 % 60,
        second: sod % 60,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, or `-` when absent or outside years 0..=9999.
fn write_timestamp_5424(out: &mut Vec<u8>, t: Option<Timestamp>) {
    let Some(t) = t else {
        out.push(b'-');
        return;
    };
    let c = civil(t.seconds);
    if !(0..=9999).contains(&c.year) {
        out.push(b'-');
        return;
    }
    // Fixed-width digits, not `write!`: core::fmt showed up in the render profile.
    let year = u32::try_from(c.year).expect("checked to be in 0..=9999");
    push_digits(out, year, 4);
    out.push(b'-');
    push_digits(out, c.month, 2);
    out.push(b'-');
    push_digits(out, c.day, 2);
    out.push(b'T');
    push_digits(out, c.hour, 2);
    out.push(b':');
    push_digits(out, c.minute, 2);
    out.push(b':');
    push_digits(out, c.second, 2);
    if t.nanos > 0 {
        out.push(b'.');
        push_digits(out, t.nanos.min(999_999_999) / 1_000, 6);
    }
    out.push(b'Z');
}

/// `<PRI>`.
fn push_pri(out: &mut Vec<u8>, pri: u32) {
    out.push(b'<');
    out.extend_from_slice(itoa::Buffer::new().format(pri).as_bytes());
    out.push(b'>');
}

/// `Mmm dd hh:mm:ss`, day space-padded, shifted by the configured offset.
fn write_timestamp_3164(out: &mut Vec<u8>, t: Timestamp, offset_secs: i32) {
    let c = civil(t.seconds.saturating_add(i64::from(offset_secs)));
    write!(
        out,
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[(c.month - 1) as usize],
        c.day,
        c.hour,
        c.minute,
        c.second
    )
    .expect("writing to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{Field, SdElement, Severity};

    fn settings(format: Format) -> RenderSettings {
        RenderSettings {
            format,
            hostname: "myhost".into(),
            bom: false,
            rfc3164_offset_secs: 0,
            max_message_bytes: 8192,
            framing: Some(Framing::OctetCounting),
        }
    }

    fn r(msg: &SyslogMessage, s: &RenderSettings) -> String {
        let mut out = Vec::new();
        render(msg, s, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn full() -> SyslogMessage {
        SyslogMessage {
            facility: 16,
            severity: Severity::Notice,
            timestamp: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789,
            }),
            hostname: Some("web-1.example.com".into()),
            app_name: Some("nginx".into()),
            proc_id: Some("4242".into()),
            msg_id: Some("ACCESS".into()),
            structured_data: vec![
                SdElement {
                    id: "sls@32473".into(),
                    params: vec![Field::new("project", "p"), Field::new("q", r#"a"b\c]d"#)],
                },
                SdElement {
                    id: "origin".into(),
                    params: vec![Field::new("ip", "10.0.0.1")],
                },
            ],
            msg: "GET / 200 — ünïcode".into(),
        }
    }

    #[test]
    fn rfc5424_timestamps_are_zero_padded_at_every_width() {
        let ts = |seconds, nanos| {
            let mut out = Vec::new();
            write_timestamp_5424(&mut out, Some(Timestamp { seconds, nanos }));
            String::from_utf8(out).unwrap()
        };
        assert_eq!(ts(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(ts(0, 1_000), "1970-01-01T00:00:00.000001Z");
        // Sub-microsecond only: the fraction is present, truncated to microseconds.
        assert_eq!(ts(0, 999), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            ts(1_700_000_000, 123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(ts(-62_135_596_800, 0), "0001-01-01T00:00:00Z");
        assert_eq!(
            ts(253_402_300_799, 999_999_999),
            "9999-12-31T23:59:59.999999Z"
        );
        assert_eq!(ts(253_402_300_800, 0), "-", "year 10000");
        let mut out = Vec::new();
        push_pri(&mut out, 191);
        push_digits(&mut out, 7, 3);
        assert_eq!(out, b"<191>007");
    }

    #[test]
    fn rfc5424_full() {
        assert_eq!(
            r(&full(), &settings(Format::Rfc5424)),
            r#"<133>1 2023-11-14T22:13:20.123456Z web-1.example.com nginx 4242 ACCESS [sls@32473 project="p" q="a\"b\\c\]d"][origin ip="10.0.0.1"] GET / 200 — ünïcode"#
        );
    }

    #[test]
    fn rfc5424_nil_values_and_empty_msg() {
        let m = SyslogMessage {
            msg: String::new(),
            ..SyslogMessage::new("")
        };
        assert_eq!(r(&m, &settings(Format::Rfc5424)), "<14>1 - myhost - - - -");
        let m = SyslogMessage {
            timestamp: Some(Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            facility: 23,
            severity: Severity::Debug,
            ..SyslogMessage::new("x")
        };
        assert_eq!(
            r(&m, &settings(Format::Rfc5424)),
            "<191>1 1970-01-01T00:00:00Z myhost - - - - x"
        );
        let m = SyslogMessage {
            timestamp: Some(Timestamp {
                seconds: 1,
                nanos: 999,
            }),
            ..SyslogMessage::new("x")
        };
        assert!(
            r(&m, &settings(Format::Rfc5424)).contains("00:00:01.000000Z"),
            "exactly 6 digits when nanos != 0"
        );
    }

    #[test]
    fn header_sanitising_and_limits() {
        let m = SyslogMessage {
            hostname: Some("host name\u{e9}".into()),
            app_name: Some("a".repeat(60)),
            proc_id: Some(String::new()),
            msg_id: Some("m".repeat(40)),
            ..SyslogMessage::new("x")
        };
        let out = r(&m, &settings(Format::Rfc5424));
        assert_eq!(
            out,
            format!(
                "<14>1 - host_name__ {} - {} - x",
                "a".repeat(48),
                "m".repeat(32)
            )
        );
    }

    #[test]
    fn bad_structured_data_and_facility() {
        let mut m = SyslogMessage::new("x");
        m.structured_data = vec![SdElement {
            id: "bad id".into(),
            params: vec![],
        }];
        let mut out = b"keep".to_vec();
        assert!(matches!(
            render(&m, &settings(Format::Rfc5424), &mut out),
            Err(RenderError::StructuredData(_))
        ));
        assert_eq!(out, b"keep", "unchanged on error");
        m.structured_data = vec![
            SdElement {
                id: "a".into(),
                params: vec![],
            },
            SdElement {
                id: "a".into(),
                params: vec![],
            },
        ];
        assert!(render(&m, &settings(Format::Rfc5424), &mut out).is_err());
        m.structured_data = vec![SdElement {
            id: "a".into(),
            params: vec![Field::new("k=", "v")],
        }];
        assert!(render(&m, &settings(Format::Rfc5424), &mut out).is_err());
        m.structured_data.clear();
        m.facility = 24;
        assert_eq!(
            render(&m, &settings(Format::Rfc5424), &mut out),
            Err(RenderError::Facility(24))
        );
    }

    #[test]
    fn truncation_on_utf8_boundary() {
        let mut s = settings(Format::Rfc5424);
        s.max_message_bytes = 480;
        let m = SyslogMessage::new("é".repeat(400));
        let mut out = Vec::new();
        assert!(render(&m, &s, &mut out).unwrap());
        assert!(out.len() <= 480 && out.len() >= 479, "{}", out.len());
        let text = String::from_utf8(out).expect("still valid UTF-8");
        assert!(text.ends_with('é'));
        // Header alone over the limit → error.
        let m = SyslogMessage {
            hostname: Some("h".repeat(255)),
            app_name: Some("a".repeat(48)),
            proc_id: Some("p".repeat(128)),
            msg_id: Some("m".repeat(32)),
            ..SyslogMessage::new("x")
        };
        let mut out = Vec::new();
        s.max_message_bytes = 400;
        assert!(matches!(
            render(&m, &s, &mut out),
            Err(RenderError::TooLarge { .. })
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn lf_framing_escapes_line_feeds() {
        let mut s = settings(Format::Rfc5424);
        s.framing = Some(Framing::Lf);
        let mut m = SyslogMessage::new("line1\nline2");
        m.structured_data = vec![SdElement {
            id: "x".into(),
            params: vec![Field::new("v", "a\nb")],
        }];
        assert_eq!(
            r(&m, &s),
            r#"<14>1 - myhost - - - [x v="a\nb"] line1\nline2"#
        );
        s.framing = Some(Framing::OctetCounting);
        assert_eq!(
            r(&m, &s),
            "<14>1 - myhost - - - [x v=\"a\nb\"] line1\nline2"
        );
    }

    #[test]
    fn bom_option() {
        let mut s = settings(Format::Rfc5424);
        s.bom = true;
        assert_eq!(
            r(&SyslogMessage::new("x"), &s),
            "<14>1 - myhost - - - - \u{feff}x"
        );
    }

    #[test]
    fn rfc3164() {
        let s = settings(Format::Rfc3164);
        assert_eq!(
            r(&full(), &s),
            "<133>Nov 14 22:13:20 web-1.example.com nginx[4242]: GET / 200 — ünïcode"
        );
        let m = SyslogMessage {
            timestamp: Some(Timestamp {
                seconds: 1_699_056_000,
                nanos: 0,
            }),
            ..SyslogMessage::new("hi")
        };
        assert_eq!(r(&m, &s), "<14>Nov  4 00:00:00 myhost -: hi");
        let s = RenderSettings {
            rfc3164_offset_secs: 8 * 3600,
            ..settings(Format::Rfc3164)
        };
        let m = SyslogMessage {
            app_name: Some("a[b]:c".into()),
            ..m
        };
        assert_eq!(r(&m, &s), "<14>Nov  4 08:00:00 myhost a_b__c: hi");
    }

    #[test]
    fn civil_dates_agree_with_jiff() {
        for secs in [
            0i64,
            951_782_400,
            1_700_000_000,
            4_102_444_799,
            -86_400,
            253_402_207_200,
        ] {
            let c = civil(secs);
            let z = jiff::Timestamp::from_second(secs)
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC);
            assert_eq!(
                (c.year, c.month, c.day, c.hour, c.minute, c.second),
                (
                    i64::from(z.year()),
                    z.month() as u32,
                    z.day() as u32,
                    z.hour() as u32,
                    z.minute() as u32,
                    z.second() as u32
                ),
                "{secs}"
            );
        }
    }
}
