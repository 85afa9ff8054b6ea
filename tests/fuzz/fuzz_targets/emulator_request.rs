//! The emulator's request parsing and authentication on raw HTTP/1.1 requests: the request
//! line and headers (httparse, as hyper parses them), absolute-form targets, `Host` →
//! project, form-decoded queries, `Authorization` v1 and v4 parsing, signature, token and
//! request-time checks.
//!
//! Properties: no panic; nothing is accepted, since the fuzzer does not know the secret (an
//! accepted request would be a forged signature); every refusal is an SLS-shaped 400 or 401.

#![no_main]

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shipper_sls::sign::Credentials;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = parsed.parse(data) else {
        return;
    };
    let mut builder = http::Request::builder()
        .method(parsed.method.unwrap_or("GET"))
        .uri(parsed.path.unwrap_or("/"));
    for h in parsed.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    // What hyper would refuse (a bad method, URI or header) never reaches the emulator.
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let body = Bytes::copy_from_slice(&data[head_len..]);
    // 2026-01-01T00:00:00Z: a fixed clock keeps every run of the corpus identical.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let creds = Credentials::new("fuzzAccessKeyId", "a secret the fuzzer never sees");
    let checked = shipper_emulator::fuzzing::check(parts, body, &creds, now);
    let err = checked
        .verdict
        .expect_err("a request signed without the secret was accepted");
    assert!(matches!(err.status, 400 | 401), "{err:?}");
    if let Some(project) = &checked.project {
        assert!(!project.is_empty() && !project.contains('.'), "{project:?}");
    }
});
