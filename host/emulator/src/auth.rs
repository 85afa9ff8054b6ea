//! Signature verification (docs/sls-protocol.md §3 "Signing v1"): recompute the v1
//! HMAC-SHA1 over the headers actually received, with `shipper_sls::sign` (the same code the
//! client signs with), and answer SLS-shaped 401s. `x-log-date` is ignored by
//! `string_to_sign` (Python adds it after signing). The `Date` is not checked against the
//! clock: the SDK's test vectors carry a fixed 2024 date and must be accepted (item A0 of
//! docs/sls-protocol.md §13.5). STS tokens are signed headers; their value is not validated.
//!
//! v4 (`SLS4-HMAC-SHA256`, docs/sls-protocol.md §4 "Signing v4") is verified here too
//! (shipper-sls signs v1 only): canonical request over the received `content-type`, `host`,
//! `x-log-*` and `x-acs-*` headers, the RFC 3986-encoded query, and `x-log-content-sha256`,
//! which must match the body.

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret as _;
use sha2::{Digest, Sha256};
use shipper_sls::sign::{self, Credentials, SignedParts};

use crate::error::ApiError;
use crate::request::Request;

/// Checks the `Authorization` header of `req` against `credentials`.
pub(crate) fn verify(req: &Request, credentials: &Credentials) -> Result<(), ApiError> {
    let Some(auth) = req.header("authorization") else {
        return Err(ApiError::new(
            401,
            "Unauthorized",
            "missing Authorization header: sign the request with the emulator's access key",
        ));
    };
    if let Some(v4) = auth.trim_start().strip_prefix("SLS4-HMAC-SHA256") {
        return verify_v4(req, credentials, v4.trim());
    }
    let Some((id, signature)) = sign::parse_authorization(auth) else {
        return Err(ApiError::new(
            401,
            "Unauthorized",
            "malformed Authorization header: expected `LOG <AccessKeyId>:<Signature>`",
        ));
    };
    if id != credentials.access_key_id {
        return Err(ApiError::new(
            401,
            "Unauthorized",
            format!("AccessKeyId not found: {id}"),
        ));
    }
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
    let expected = sign::signature(
        credentials.access_key_secret.expose_secret(),
        &string_to_sign,
    );
    if sign::signatures_equal(&expected, signature) {
        Ok(())
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

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding: unreserved `A-Za-z0-9-_.~` kept, everything else `%XX` (upper case).
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `Credential=<id>/<date>/<region>/sls/aliyun_v4_request,Signature=<hex>`.
fn verify_v4(req: &Request, credentials: &Credentials, rest: &str) -> Result<(), ApiError> {
    let malformed = || {
        ApiError::new(
            401,
            "Unauthorized",
            "malformed v4 Authorization header: expected `SLS4-HMAC-SHA256 Credential=<id>/<scope>,Signature=<hex>`",
        )
    };
    let mut credential = None;
    let mut signature = None;
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (credential, signature) = credential.zip(signature).ok_or_else(malformed)?;
    let (id, scope) = credential.split_once('/').ok_or_else(malformed)?;
    let scope_parts: Vec<&str> = scope.split('/').collect();
    let [date, region, "sls", "aliyun_v4_request"] = scope_parts.as_slice() else {
        return Err(malformed());
    };
    if id != credentials.access_key_id {
        return Err(ApiError::new(
            401,
            "Unauthorized",
            format!("AccessKeyId not found: {id}"),
        ));
    }
    let time = req.header("x-log-date").unwrap_or("");
    let payload_hash = req.header("x-log-content-sha256").unwrap_or("");
    if !payload_hash.eq_ignore_ascii_case(&hex::encode(Sha256::digest(&req.body))) {
        return Err(ApiError::new(
            401,
            "SignatureNotMatch",
            "x-log-content-sha256 does not match the body",
        ));
    }
    let mut params: Vec<(&str, String)> = req
        .query
        .iter()
        .map(|(k, v)| (k.as_str(), uri_encode(v)))
        .collect();
    params.sort();
    let query = params
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                (*k).to_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(String, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").trim(),
            )
        })
        .filter(|(n, _)| {
            n == "content-type" || n == "host" || n.starts_with("x-log-") || n.starts_with("x-acs-")
        })
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        req.method, req.path
    );
    let string_to_sign = format!(
        "SLS4-HMAC-SHA256\n{time}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac_sha256(
        format!("aliyun_v4{}", credentials.access_key_secret.expose_secret()).as_bytes(),
        date.as_bytes(),
    );
    for part in [region.as_bytes(), b"sls", b"aliyun_v4_request"] {
        key = hmac_sha256(&key, part);
    }
    let expected = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    if sign::signatures_equal(&expected, signature) {
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
            verify(&req, &creds).unwrap_or_else(|e| panic!("{name}: {e}"));
            let err = verify(&req, &wrong).unwrap_err();
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
