//! The emulator's signature check against requests signed the way shipper's SLS client signs
//! them (v1, docs/sls-protocol.md §3 "Signing v1"): the fuzzer chooses the method, path,
//! query (form-encoded on the wire), extra `x-log-*` headers, body and clock skew.
//!
//! Properties: a signed request within SLS's 15-minute window is accepted; beyond it, refused
//! as `RequestTimeExpired`; without `Authorization`, with one signature character changed,
//! with a signed header, a query value or the body altered after signing, refused.

#![no_main]

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use shipper_sls::sign::{self, Credentials, SignedParts};

const ID: &str = "fuzzAccessKeyId";
const SECRET: &str = "fuzzAccessKeySecret";
/// SLS's window (the emulator's `MAX_CLOCK_SKEW`).
const WINDOW_SECS: i64 = 15 * 60;

#[derive(Arbitrary, Debug)]
struct Input {
    method: u8,
    path: Vec<u8>,
    query: Vec<(Vec<u8>, String)>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    content_type: Option<u8>,
    body: Vec<u8>,
    /// Seconds between the request's `Date` and the server clock.
    skew: i16,
    /// Which character of the signature, signed header or query value to change.
    pick: u8,
}

/// The request as the client would build it, before and after signing.
#[derive(Clone)]
struct Built {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn ident(raw: &[u8], fallback: &str) -> String {
    let s: String = raw
        .iter()
        .take(24)
        .map(|&b| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789_-"[usize::from(b) % 38]))
        .collect();
    if s.is_empty() { fallback.to_owned() } else { s }
}

fn build(input: &Input, now: SystemTime) -> (Built, Vec<(String, String)>) {
    let method = ["GET", "POST", "PUT", "DELETE"][usize::from(input.method % 4)];
    let path = format!("/{}", ident(&input.path, "logstores"));
    let query: Vec<(String, String)> = input
        .query
        .iter()
        .take(8)
        .map(|(k, v)| (ident(k, "k").replace('-', "_"), v.clone()))
        .collect();
    let mut target = path.clone();
    for (i, (k, v)) in query.iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(k);
        target.push('=');
        target.extend(utf8_percent_encode(v, NON_ALPHANUMERIC));
    }
    let at = now
        .checked_add(Duration::from_secs(u64::from(input.skew.unsigned_abs())))
        .filter(|_| input.skew > 0)
        .unwrap_or_else(|| now - Duration::from_secs(u64::from(input.skew.unsigned_abs())));
    let date = httpdate::fmt_http_date(at);
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), "fuzzproject.sls.test".into()),
        ("x-log-apiversion".into(), sign::API_VERSION.into()),
        (
            "x-log-signaturemethod".into(),
            sign::SIGNATURE_METHOD.into(),
        ),
        ("date".into(), date.clone()),
    ];
    for (name, value) in input.headers.iter().take(6) {
        // Header values as they survive the wire: visible ASCII and inner spaces.
        let value: String = value
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    char::from(b)
                } else {
                    '_'
                }
            })
            .collect();
        headers.push((
            format!("x-log-f{}", ident(name, "x")),
            value.trim().to_owned(),
        ));
    }
    let content_type = input
        .content_type
        .map(|c| ["application/x-protobuf", "application/json", "text/plain"][usize::from(c % 3)]);
    if let Some(ct) = content_type {
        headers.push(("content-type".into(), ct.into()));
    }
    let content_md5 = if input.body.is_empty() {
        String::new()
    } else {
        sign::content_md5(&input.body)
    };
    if !content_md5.is_empty() {
        headers.push(("content-md5".into(), content_md5.clone()));
    }
    let string_to_sign = sign::string_to_sign(
        &SignedParts {
            method,
            path: &path,
            query: &query,
            content_md5: &content_md5,
            content_type: content_type.unwrap_or(""),
            date: &date,
        },
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let signature = sign::signature(SECRET, &string_to_sign);
    headers.push(("authorization".into(), sign::authorization(ID, &signature)));
    let built = Built {
        method,
        target,
        headers,
        body: input.body.clone(),
    };
    (built, query)
}

fn check(b: &Built, now: SystemTime) -> Result<(), shipper_emulator::ApiError> {
    let mut builder = http::Request::builder().method(b.method).uri(&b.target);
    for (k, v) in &b.headers {
        builder = builder.header(k, v);
    }
    let (parts, ()) = builder.body(()).expect("a valid request").into_parts();
    let creds = Credentials::new(ID, SECRET);
    shipper_emulator::fuzzing::check(parts, Bytes::from(b.body.clone()), &creds, now).verdict
}

fn refused(b: &Built, now: SystemTime, what: &str) {
    let err = check(b, now).expect_err(what);
    assert_eq!(err.status, 401, "{what}: {err:?}");
}

fn change_char(s: &mut String, pick: u8) {
    let chars: Vec<char> = s.chars().collect();
    let i = usize::from(pick) % chars.len().max(1);
    let mut out: String = chars.iter().take(i).collect();
    out.push(if chars.get(i) == Some(&'A') { 'B' } else { 'A' });
    out.extend(chars.iter().skip(i + 1));
    *s = out;
}

fuzz_target!(|input: Input| {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let (signed, query) = build(&input, now);
    let verdict = check(&signed, now);
    if i64::from(input.skew).abs() > WINDOW_SECS {
        let err = verdict.expect_err("a stale request was accepted");
        assert_eq!((err.status, &*err.code), (400, "RequestTimeExpired"));
        return;
    }
    verdict.expect("a request signed with the right secret was refused");

    let header = |b: &Built, name: &str| b.headers.iter().position(|(k, _)| k == name);

    let mut b = signed.clone();
    let i = header(&b, "authorization").expect("signed");
    b.headers.remove(i);
    refused(&b, now, "a request without Authorization was accepted");

    let mut b = signed.clone();
    let i = header(&b, "authorization").expect("signed");
    let sig_start = b.headers[i].1.rfind(':').expect("LOG id:sig") + 1;
    let mut sig = b.headers[i].1[sig_start..].to_owned();
    change_char(&mut sig, input.pick);
    b.headers[i].1 = format!("LOG {ID}:{sig}");
    refused(&b, now, "a request with a changed signature was accepted");

    if !signed.body.is_empty() {
        let mut b = signed.clone();
        let i = usize::from(input.pick) % b.body.len();
        b.body[i] ^= 0x01;
        refused(&b, now, "a body changed after signing was accepted");
    }

    let extra: Vec<usize> = (0..signed.headers.len())
        .filter(|&i| signed.headers[i].0.starts_with("x-log-f"))
        .collect();
    if !extra.is_empty() {
        let mut b = signed.clone();
        let i = extra[usize::from(input.pick) % extra.len()];
        change_char(&mut b.headers[i].1, input.pick);
        refused(
            &b,
            now,
            "a signed header changed after signing was accepted",
        );
    }

    if !query.is_empty() {
        let mut b = signed.clone();
        let mut q = query.clone();
        let i = usize::from(input.pick) % q.len();
        change_char(&mut q[i].1, input.pick);
        let mut target = b.target[..b.target.find('?').expect("has a query")].to_owned();
        for (j, (k, v)) in q.iter().enumerate() {
            target.push(if j == 0 { '?' } else { '&' });
            target.push_str(k);
            target.push('=');
            target.extend(utf8_percent_encode(v, NON_ALPHANUMERIC));
        }
        b.target = target;
        refused(&b, now, "a query value changed after signing was accepted");
    }
});
