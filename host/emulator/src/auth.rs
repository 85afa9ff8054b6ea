//! Authentication (docs/sls-protocol.md §3 "Signing v1", §4 "Signing v4"): the signature is
//! recomputed over the headers actually received with `shipper_sls::sign` (the code the
//! client signs with), then the security token and the request time are checked, and
//! failures get SLS-shaped answers.
//!
//! Order, as a client sees it: an unknown AccessKeyId is `401 Unauthorized`; a wrong
//! signature, or (v1) a body that does not match its signed `Content-MD5`, `401
//! SignatureNotMatch`; then, with temporary credentials
//! (`crate::sts`), a token that is not the key's `401
//! InvalidSecurityToken.MismatchWithAccessKey` and an expired one `401
//! SecurityTokenExpired`; last, a `Date` (v1) or `x-log-date` (v4) more than 15 minutes from
//! the emulator's clock is `400 RequestTimeExpired`, as SLS documents. Checking the time after
//! the signature means a fixed-date test vector still proves its signature: it gets
//! `RequestTimeExpired`, never `SignatureNotMatch`.

use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret as _;
use shipper_sls::sign::{self, Credentials, SignedParts, v4};

use crate::error::ApiError;
use crate::request::Request;
use crate::sts::Issuer;

/// How far a request's time may be from the server's: SLS's documented 15 minutes.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// What a request is checked against.
pub(crate) struct Keys<'a> {
    /// The long-term AccessKey pair.
    pub long_term: &'a Credentials,
    /// Temporary credentials, when the emulator issues them.
    pub issuer: Option<&'a Issuer>,
    /// The server clock (the real one, shifted by `--clock-offset`).
    pub now: SystemTime,
}

/// A parsed `Authorization` header.
enum Auth<'a> {
    V1 { id: &'a str, signature: &'a str },
    V4(v4::ParsedAuthorization<'a>),
}

/// Checks the `Authorization` header of `req`, the token and the request time.
pub(crate) fn verify(req: &Request, keys: &Keys<'_>) -> Result<(), ApiError> {
    let Some(header) = req.header("authorization") else {
        return Err(ApiError::new(
            401,
            "Unauthorized",
            "missing Authorization header: sign the request with the emulator's access key",
        ));
    };
    let auth = if header.trim_start().starts_with(v4::ALGORITHM) {
        Auth::V4(v4::parse_authorization(header).ok_or_else(|| {
            ApiError::new(
                401,
                "Unauthorized",
                "malformed v4 Authorization header: expected `SLS4-HMAC-SHA256 \
                 Credential=<id>/<scope>,Signature=<hex>`",
            )
        })?)
    } else {
        let (id, signature) = sign::parse_authorization(header).ok_or_else(|| {
            ApiError::new(
                401,
                "Unauthorized",
                "malformed Authorization header: expected `LOG <AccessKeyId>:<Signature>`",
            )
        })?;
        Auth::V1 { id, signature }
    };
    let id = match &auth {
        Auth::V1 { id, .. } => *id,
        Auth::V4(p) => p.access_key_id,
    };
    let issued = keys.issuer.and_then(|i| i.lookup(id));
    let secret = if let Some(issued) = &issued {
        issued.access_key_secret.expose_secret().to_owned()
    } else if id == keys.long_term.access_key_id {
        if keys.issuer.is_some_and(Issuer::requires_temporary) {
            return Err(ApiError::new(
                401,
                "Unauthorized",
                "this emulator accepts only temporary credentials on SLS APIs \
                 (--require-temporary-credentials): get them from its STS, metadata or \
                 credentials URI endpoints",
            ));
        }
        keys.long_term.access_key_secret.expose_secret().to_owned()
    } else {
        return Err(ApiError::new(
            401,
            "Unauthorized",
            format!("AccessKeyId not found: {id}"),
        ));
    };
    let request_time = match auth {
        Auth::V1 { signature, .. } => {
            verify_v1(req, &secret, signature)?;
            req.header("date")
                .and_then(|d| httpdate::parse_http_date(d).ok())
        }
        Auth::V4(parsed) => {
            verify_v4(req, &secret, &parsed)?;
            req.header("x-log-date")
                .and_then(v4::parse_time)
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
        }
    };
    if let (Some(issuer), Some(issued)) = (keys.issuer, &issued) {
        issuer.check_token(issued, req.header("x-acs-security-token"))?;
    }
    if let Some(at) = request_time {
        let skew = match keys.now.duration_since(at) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        if skew > MAX_CLOCK_SKEW {
            return Err(ApiError::new(
                400,
                "RequestTimeExpired",
                format!(
                    "Request time {} has been expired while server time is {}.",
                    httpdate::fmt_http_date(at),
                    httpdate::fmt_http_date(keys.now)
                ),
            ));
        }
    }
    Ok(())
}

fn verify_v1(req: &Request, secret: &str, signature: &str) -> Result<(), ApiError> {
    let parts = SignedParts {
        method: req.method.as_str(),
        path: &req.path,
        query: &req.query,
        content_md5: req.header("content-md5").unwrap_or(""),
        content_type: req.header("content-type").unwrap_or(""),
        date: req.header("date").unwrap_or(""),
    };
    let headers = req
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or("")));
    let string_to_sign = sign::string_to_sign(&parts, headers);
    let expected = sign::signature(secret, &string_to_sign);
    if sign::signatures_equal(&expected, signature) {
        // The signature covers the body only through `Content-MD5`: a body that does not
        // match it (or a body sent without one) was not signed.
        if req.body.is_empty()
            || parts
                .content_md5
                .eq_ignore_ascii_case(&sign::content_md5(&req.body))
        {
            return Ok(());
        }
        Err(ApiError::new(
            401,
            "SignatureNotMatch",
            "Content-MD5 does not match the body (the signature covers the body through it)",
        ))
    } else {
        // Showing the server-side string to sign makes client signing bugs easy to find;
        // it contains no secret.
        Err(ApiError::new(
            401,
            "SignatureNotMatch",
            format!("signature {signature} does not match; the server signed {string_to_sign:?}"),
        ))
    }
}

/// v4: the canonical request over the received `content-type`, `host`, `x-log-*` and
/// `x-acs-*` headers, the RFC 3986-encoded query, and `x-log-content-sha256`, which must
/// match the body.
fn verify_v4(
    req: &Request,
    secret: &str,
    auth: &v4::ParsedAuthorization<'_>,
) -> Result<(), ApiError> {
    let time = req.header("x-log-date").unwrap_or("");
    let payload_hash = req.header("x-log-content-sha256").unwrap_or("");
    if !payload_hash.eq_ignore_ascii_case(&v4::content_sha256(&req.body)) {
        return Err(ApiError::new(
            401,
            "SignatureNotMatch",
            "x-log-content-sha256 does not match the body",
        ));
    }
    let (canonical_request, _) = v4::canonical_request(
        req.method.as_str(),
        &req.path,
        &req.query,
        req.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or(""))),
        payload_hash,
    );
    let string_to_sign = v4::string_to_sign(time, auth.scope, &canonical_request);
    let expected = v4::signature(secret, auth.date, auth.region, &string_to_sign);
    if sign::signatures_equal(&expected, auth.signature) {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "SignatureNotMatch",
            format!(
                "v4 signature does not match; the server's canonical request was {canonical_request:?}"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::parse_query;
    use http::{HeaderMap, HeaderName, HeaderValue, Method};

    /// Every v1 case of the SDK's signature vectors is accepted, as received on the wire
    /// (query still percent-encoded, `x-log-date` present); a wrong secret is rejected.
    #[test]
    fn sdk_vectors_verify() {
        let path = format!(
            "{}/../../tests/fixtures/sls/signature_vectors.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let creds = Credentials::new(
            doc["access_key_id"].as_str().unwrap(),
            doc["access_key_secret"].as_str().unwrap(),
        );
        let wrong = Credentials::new(doc["access_key_id"].as_str().unwrap(), "nope");
        let mut checked = 0;
        for case in doc["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            // The v4 case records no wire target; its query is rebuilt from the signed params.
            let v4_target;
            let target = match case["request_target_on_wire"].as_str() {
                Some(t) => t,
                None => {
                    let q: Vec<String> = case["query_params_as_signed"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                        .collect();
                    v4_target = format!(
                        "/logstores/test-logstore/consumergroups/test-cg?{}",
                        q.join("&")
                    );
                    &v4_target
                }
            };
            let (path, raw_query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            let mut headers = HeaderMap::new();
            for (k, v) in case["headers_sent_by_sdk"].as_object().unwrap() {
                headers.insert(
                    HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
                    HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
                );
            }
            // What the Python SDK adds after signing, and `requests`' own headers.
            if !name.ends_with("_v4") {
                headers.insert("x-log-date", HeaderValue::from_static("whatever"));
            }
            headers.insert(
                "authorization",
                HeaderValue::from_str(case["authorization"].as_str().unwrap()).unwrap(),
            );
            headers.insert("accept-encoding", HeaderValue::from_static("gzip, deflate"));
            let req = Request {
                method: Method::from_bytes(case["method"].as_str().unwrap().as_bytes()).unwrap(),
                path: path.to_owned(),
                query: parse_query(raw_query),
                headers,
                body: bytes::Bytes::from(
                    hex::decode(case["body_hex"].as_str().unwrap_or("")).unwrap(),
                ),
                project: None,
                peer: std::net::IpAddr::from([127, 0, 0, 1]),
            };
            // The vectors carry a fixed 2024 date: the signature passes, the clock does not.
            let at = |creds| Keys {
                long_term: creds,
                issuer: None,
                now: SystemTime::now(),
            };
            let err = verify(&req, &at(&creds)).unwrap_err();
            assert_eq!(
                (err.status, &*err.code),
                (400, "RequestTimeExpired"),
                "{name}: {err}"
            );
            let then = httpdate::parse_http_date("Mon, 01 Jan 2024 00:05:00 GMT").unwrap();
            verify(
                &req,
                &Keys {
                    now: then,
                    ..at(&creds)
                },
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            let err = verify(
                &req,
                &Keys {
                    now: then,
                    ..at(&wrong)
                },
            )
            .unwrap_err();
            assert_eq!(
                (err.status, &*err.code),
                (401, "SignatureNotMatch"),
                "{name}"
            );
            checked += 1;
        }
        assert_eq!(
            checked, 12,
            "11 v1 cases (incl. STS, lz4 PutLogs) and the v4 case"
        );
    }
}
