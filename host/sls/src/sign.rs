//! Request signing v1 (HMAC-SHA1, docs/sls-protocol.md §3 "Signing v1"), used by the client
//! to sign and by the emulator to verify: one implementation, checked once against the SDK
//! vectors.
//!
//! StringToSign = `METHOD\nCONTENT-MD5\nCONTENT-TYPE\nDATE\n` + canonical `x-log-*`/`x-acs-*`
//! headers (`name:value\n`, lower-cased, sorted) + canonical resource (path, then `?` and the
//! decoded query parameters sorted by key, raw values, joined by `&`).
//!
//! `x-log-date` is never part of the v1 signature: the Python SDK adds it *after* signing (a
//! proxy workaround), and the real service accepts that.
//!
//! [`v4`] holds the region-scoped `SLS4-HMAC-SHA256` signature; [`SignatureVersion`] says
//! which one a client uses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use secrecy::SecretString;

pub mod v4;

/// Which signature a client puts on its requests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SignatureVersion {
    /// `LOG <id>:<HMAC-SHA1>` with a `Date` header: every SDK's default.
    #[default]
    V1,
    /// `SLS4-HMAC-SHA256`, scoped to this region (e.g. `cn-hangzhou`).
    V4 {
        /// The SLS region of the endpoint.
        region: String,
    },
}

/// SLS API version sent by every SDK.
pub const API_VERSION: &str = "0.6.0";
/// The v1 signature method header value.
pub const SIGNATURE_METHOD: &str = "hmac-sha1";

/// SLS credentials: an AccessKey pair, plus an STS token for temporary credentials. The
/// secrets are `SecretString`s (secrecy): redacted in `Debug`, zeroed when dropped, read only
/// where a signature or header needs them.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// AccessKey ID (not secret; appears in the `Authorization` header).
    pub access_key_id: String,
    /// AccessKey secret.
    pub access_key_secret: SecretString,
    /// STS security token, sent as the signed header `x-acs-security-token`.
    pub security_token: Option<SecretString>,
}

impl Credentials {
    /// Long-term AccessKey credentials.
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: SecretString::from(access_key_secret.into()),
            security_token: None,
        }
    }

    /// Adds an STS token.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(SecretString::from(token.into()));
        self
    }
}

/// The parts of a request that the v1 signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedParts<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Request path, e.g. `/logstores/ls/shards/0` (`/` for project-level calls).
    pub path: &'a str,
    /// Decoded query parameters, any order.
    pub query: &'a [(String, String)],
    /// `Content-MD5` header value, or "" when absent.
    pub content_md5: &'a str,
    /// `Content-Type` header value, or "" when absent.
    pub content_type: &'a str,
    /// `Date` header value.
    pub date: &'a str,
}

/// Builds the v1 StringToSign. `headers` yields every header of the request (any case);
/// only `x-log-*` and `x-acs-*` ones (minus `x-log-date` and `x-log-meta-*`) are used.
pub fn string_to_sign<'h>(
    parts: &SignedParts<'_>,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
) -> String {
    let mut canon: Vec<(String, &str)> = headers
        .into_iter()
        .filter_map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            let signed = (name.starts_with("x-log-") || name.starts_with("x-acs-"))
                && name != "x-log-date"
                && !name.starts_with("x-log-meta-");
            signed.then(|| (name, value.trim()))
        })
        .collect();
    canon.sort_by(|a, b| a.0.cmp(&b.0));

    let mut s = String::with_capacity(256);
    for part in [
        parts.method,
        parts.content_md5,
        parts.content_type,
        parts.date,
    ] {
        s.push_str(part);
        s.push('\n');
    }
    for (name, value) in canon {
        s.push_str(&name);
        s.push(':');
        s.push_str(value);
        s.push('\n');
    }
    s.push_str(&canonical_resource(parts.path, parts.query));
    s
}

/// Path plus sorted, raw (un-escaped) query parameters.
pub fn canonical_resource(path: &str, query: &[(String, String)]) -> String {
    let mut out = String::from(path);
    if !query.is_empty() {
        let mut params: Vec<&(String, String)> = query.iter().collect();
        params.sort();
        out.push('?');
        for (i, (k, v)) in params.into_iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(k);
            out.push('=');
            out.push_str(v);
        }
    }
    out
}

/// `base64(HMAC-SHA1(secret, string_to_sign))`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value.
pub fn authorization(access_key_id: &str, signature: &str) -> String {
    format!("LOG {access_key_id}:{signature}")
}

/// Upper-case hex MD5 of the body as sent (after compression), for `Content-MD5`.
pub fn content_md5(body: &[u8]) -> String {
    hex::encode_upper(Md5::digest(body))
}

/// Splits `Authorization: LOG <id>:<signature>` into id and signature.
pub fn parse_authorization(value: &str) -> Option<(&str, &str)> {
    let rest = value.trim().strip_prefix("LOG ")?;
    let (id, sig) = rest.rsplit_once(':')?;
    (!id.is_empty() && !sig.is_empty()).then_some((id.trim(), sig.trim()))
}

/// Current time in the `Date` header format (RFC 1123, GMT).
pub fn http_date_now() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

/// Constant-time comparison of two signatures.
pub fn signatures_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> serde_json::Value {
        let path = format!(
            "{}/../../tests/fixtures/sls/signature_vectors.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A vector's `query_params_as_signed`, as the signers take them (v1 and v4 tests).
    pub(super) fn query_as_signed(case: &serde_json::Value) -> Vec<(String, String)> {
        case["query_params_as_signed"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn every_v1_vector_reproduces_the_sdk_signature() {
        let doc = vectors();
        let secret = doc["access_key_secret"].as_str().unwrap();
        let id = doc["access_key_id"].as_str().unwrap();
        let mut checked = 0;
        for case in doc["cases"].as_array().unwrap() {
            let name = case["name"].as_str().unwrap();
            if name.ends_with("_v4") {
                continue;
            }
            let headers = case["headers_sent_by_sdk"].as_object().unwrap();
            let h = |k: &str| headers.get(k).and_then(|v| v.as_str()).unwrap_or("");
            let query = query_as_signed(case);
            let path = case["canonical_resource"]
                .as_str()
                .unwrap()
                .split('?')
                .next()
                .unwrap();
            let parts = SignedParts {
                method: case["method"].as_str().unwrap(),
                path,
                query: &query,
                content_md5: h("Content-MD5"),
                content_type: h("Content-Type"),
                date: h("Date"),
            };
            let sts = string_to_sign(
                &parts,
                headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str().unwrap())),
            );
            assert_eq!(sts, case["string_to_sign"].as_str().unwrap(), "case {name}");
            let auth = authorization(id, &signature(secret, &sts));
            assert_eq!(auth, case["authorization"].as_str().unwrap(), "case {name}");
            if let Some(body) = case["body_hex"].as_str().filter(|b| !b.is_empty()) {
                assert_eq!(
                    content_md5(&hex::decode(body).unwrap()),
                    h("Content-MD5"),
                    "{name}"
                );
            }
            checked += 1;
        }
        assert_eq!(checked, 11, "all v1 cases, including STS and lz4 PutLogs");
    }

    #[test]
    fn heartbeat_example_from_the_doc() {
        let sts = "POST\n264884439B70AB09A86BC848421C6DE6\napplication/json\nMon, 01 Jan 2024 00:00:00 GMT\nx-log-apiversion:0.6.0\nx-log-signaturemethod:hmac-sha1\n/logstores/test-logstore/consumergroups/test-cg?consumer=consumer-1&type=heartbeat";
        assert_eq!(
            signature("testAkSecret", sts),
            "9luqP3hxS4dDdMARGKnX0d4aWCI="
        );
        assert_eq!(content_md5(b"[0, 1]"), "264884439B70AB09A86BC848421C6DE6");
    }

    #[test]
    fn authorization_parsing() {
        assert_eq!(parse_authorization("LOG id:sig="), Some(("id", "sig=")));
        assert_eq!(parse_authorization("Bearer x"), None);
        assert_eq!(parse_authorization("LOG :x"), None);
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Credentials::new("id", "very-secret").with_security_token("tok");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("tok\""),
            "{shown}"
        );
    }
}
