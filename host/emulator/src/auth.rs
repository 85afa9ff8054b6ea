//! Signature verification (shared/sls-protocol.md §2.1): recompute the v1 HMAC-SHA1 over the
//! headers actually received, with `shipper_sls::sign` (the same code the client signs with),
//! and answer SLS-shaped 401s. `x-log-date` is ignored by `string_to_sign` (Python adds it
//! after signing). The `Date` is not checked against the clock: the SDK's test vectors carry
//! a fixed 2024 date and must be accepted (§11 A0). STS tokens are signed headers; their
//! value is not validated. v4 (`SLS4-HMAC-SHA256`) is not implemented and answered with an
//! explicit `Unauthorized`.

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
    if auth.trim_start().starts_with("SLS4-HMAC-SHA256") {
        return Err(ApiError::new(
            401,
            "Unauthorized",
            "signature version 4 is not supported by this emulator; use v1 (the SDK default)",
        ));
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
    let expected = sign::signature(credentials.access_key_secret.expose(), &string_to_sign);
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
            if name.ends_with("_v4") {
                continue;
            }
            let target = case["request_target_on_wire"].as_str().unwrap();
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
            headers.insert("x-log-date", HeaderValue::from_static("whatever"));
            headers.insert("accept-encoding", HeaderValue::from_static("gzip, deflate"));
            let req = Request {
                method: Method::from_bytes(case["method"].as_str().unwrap().as_bytes()).unwrap(),
                path: path.to_owned(),
                query: parse_query(raw_query),
                headers,
                body: bytes::Bytes::new(),
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
        assert_eq!(checked, 11);
    }
}
