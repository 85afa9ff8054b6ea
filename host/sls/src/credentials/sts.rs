//! The Alibaba Cloud STS RPC protocol as the role providers use it (and the emulator serves
//! it): `POST /` with form-encoded parameters `Action`, `Version=2015-04-01`,
//! `Format=JSON`, `Timestamp`, and for signed calls `AccessKeyId`, `SignatureMethod=HMAC-SHA1`,
//! `SignatureVersion=1.0`, `SignatureNonce` and `Signature` (the "RPC" signature of Alibaba
//! Cloud's POP APIs: HMAC-SHA1 with key `secret + "&"` over
//! `METHOD&%2F&percent(sorted, percent-encoded parameters)`). The answer carries
//! `Credentials` with `AccessKeyId`, `AccessKeySecret`, `SecurityToken`, `Expiration`, or
//! `Code` and `Message` on failure.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret as _;
use serde::Deserialize;

use super::http::{ProviderHttp, excerpt};
use super::{CredentialsError, Fetched, JsonCredentials};
use crate::sign::Credentials;

/// Default STS endpoint.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";
/// The STS API version.
pub const VERSION: &str = "2015-04-01";

/// Percent-encoding of the RPC signature: RFC 3986 unreserved kept, the rest `%XX`.
pub fn percent_encode(s: &str) -> String {
    crate::sign::v4::uri_encode(s)
}

/// The RPC string to sign for `method` and the parameters (without `Signature`).
pub fn string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort();
    let canonical = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical)
    )
}

/// `base64(HMAC-SHA1(secret + "&", string_to_sign))`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `YYYY-MM-DDTHH:MM:SSZ` now.
fn timestamp() -> String {
    super::format_expiration(std::time::SystemTime::now())
}

/// The common parameters of an STS call.
pub(crate) fn base_params(action: &str) -> Vec<(String, String)> {
    vec![
        ("Action".into(), action.into()),
        ("Version".into(), VERSION.into()),
        ("Format".into(), "JSON".into()),
        ("Timestamp".into(), timestamp()),
    ]
}

/// What AssumeRole and AssumeRoleWithOIDC share: the endpoint, the role and the session.
#[derive(Debug, Clone)]
pub struct RoleRequest {
    /// The STS endpoint.
    pub http: ProviderHttp,
    /// `acs:ram::<account>:role/<name>`.
    pub role_arn: String,
    /// The session name (in the target account's audit trail).
    pub session_name: String,
    /// Requested lifetime.
    pub duration: std::time::Duration,
    /// An inline policy narrowing the role, if any.
    pub policy: Option<String>,
}

impl RoleRequest {
    /// The parameters of `action` for this role.
    pub(crate) fn params(&self, action: &str) -> Vec<(String, String)> {
        let mut params = base_params(action);
        params.push(("RoleArn".into(), self.role_arn.clone()));
        params.push(("RoleSessionName".into(), self.session_name.clone()));
        params.push((
            "DurationSeconds".into(),
            self.duration.as_secs().to_string(),
        ));
        if let Some(p) = &self.policy {
            params.push(("Policy".into(), p.clone()));
        }
        params
    }
}

/// Adds the signature parameters for `base` credentials.
pub(crate) fn sign(params: &mut Vec<(String, String)>, base: &Credentials) {
    params.push(("AccessKeyId".into(), base.access_key_id.clone()));
    params.push(("SignatureMethod".into(), "HMAC-SHA1".into()));
    params.push(("SignatureVersion".into(), "1.0".into()));
    params.push((
        "SignatureNonce".into(),
        format!("{:032x}", rand::random::<u128>()),
    ));
    if let Some(token) = &base.security_token {
        params.push(("SecurityToken".into(), token.expose_secret().to_owned()));
    }
    let sts = string_to_sign("POST", params);
    params.push((
        "Signature".into(),
        signature(base.access_key_secret.expose_secret(), &sts),
    ));
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Credentials")]
    credentials: Option<JsonCredentials>,
    // SLS-shaped answers (`errorCode`) come from an endpoint that is not STS, e.g. the
    // emulator's own errors; read both.
    #[serde(rename = "Code", alias = "errorCode")]
    code: Option<String>,
    #[serde(rename = "Message", alias = "errorMessage")]
    message: Option<String>,
}

/// POSTs `params` to the STS endpoint and reads the credentials out of the answer.
pub(crate) async fn call(
    provider: &'static str,
    http: &ProviderHttp,
    params: &[(String, String)],
) -> Result<Fetched, CredentialsError> {
    let mut body = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            body.push('&');
        }
        body.push_str(&percent_encode(k));
        body.push('=');
        body.push_str(&percent_encode(v));
    }
    let req = http
        .client
        .post(http.url("/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    let (status, text) = http.send(provider, req).await?;
    let answer: Answer = serde_json::from_str(&text).map_err(|e| {
        CredentialsError::new(
            provider,
            format!(
                "STS at {} answered HTTP {status} with no JSON ({e}): {}; check `{}`",
                http.base,
                excerpt(&text),
                http.key
            ),
        )
    })?;
    match answer.credentials {
        Some(c) if status == 200 => c.into_fetched(provider, "the STS answer"),
        _ => Err(CredentialsError::new(
            provider,
            format!(
                "STS refused the call: HTTP {status} {} {}",
                answer.code.unwrap_or_default(),
                answer.message.unwrap_or_default()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Alibaba Cloud's "Request signatures" page for RPC APIs
    /// (DescribeRegions with AccessKey secret `testsecret`).
    #[test]
    fn rpc_signature_matches_the_documented_example() {
        let params: Vec<(String, String)> = [
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let sts = string_to_sign("GET", &params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            signature("testsecret", &sts),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }
}
