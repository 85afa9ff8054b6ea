//! Temporary credentials (`--token-lifetime`): the emulator issues STS-style credentials
//! with an expiry and accepts them on every SLS API, as SLS accepts what Alibaba Cloud's STS
//! issues. It serves the endpoints shipper's credential providers fetch them from, on the
//! same listener, so tests point every provider at the emulator:
//! - STS (`POST /` with `Action=AssumeRole`, RPC-signed with the emulator's AccessKey, or
//!   `Action=AssumeRoleWithOIDC`, unsigned, with any non-empty `OIDCToken`);
//! - the ECS metadata service (`PUT /latest/api/token`, then
//!   `GET /latest/meta-data/ram/security-credentials/[ROLE]` with the session token);
//! - a credentials URI (`GET /credentials`).
//!
//! On SLS requests (docs/sls-protocol.md §3.3 "STS tokens"): an issued key whose token is
//! expired is answered `401 SecurityTokenExpired`; a token that is not the one issued with
//! the key, or an issued key without its token, `401 InvalidSecurityToken.MismatchWithAccessKey`;
//! with `--require-temporary-credentials` the long-term key is refused on SLS APIs
//! (`401 Unauthorized`), so a test proves every request carried issued credentials.
//! [`StsStats`] counts what was issued and refused.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use http::Method;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use shipper_sls::credentials::{format_expiration, sts as rpc};
use shipper_sls::sign::Credentials;

use crate::error::ApiError;
use crate::request::{Reply, Request, parse_query};

/// The role name the emulated metadata service reports.
pub const METADATA_ROLE: &str = "shipper-emulator-role";
/// Longest metadata session token lifetime (what ECS allows).
const MAX_METADATA_TOKEN_TTL: u64 = 21_600;

/// How temporary credentials behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsConfig {
    /// Lifetime of every issued credential (STS issues 15 min to 12 h; tests use seconds).
    pub token_lifetime: Duration,
    /// Refuse the long-term AccessKey on SLS APIs (it still signs AssumeRole).
    pub require_temporary: bool,
}

/// One issued credential.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    /// `STS.…`.
    pub access_key_id: String,
    /// Its secret.
    pub access_key_secret: SecretString,
    /// Its token.
    pub security_token: SecretString,
    /// When it expires.
    pub expiration: SystemTime,
}

impl IssuedCredentials {
    /// As shipper-sls signs with them.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            access_key_id: self.access_key_id.clone(),
            access_key_secret: self.access_key_secret.clone(),
            security_token: Some(self.security_token.clone()),
        }
    }

    /// The JSON credentials file / metadata / URI shape.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "Code": "Success",
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.access_key_secret.expose_secret(),
            "SecurityToken": self.security_token.expose_secret(),
            "Expiration": format_expiration(self.expiration),
            "LastUpdated": format_expiration(SystemTime::now()),
        })
    }
}

/// What the issuer did, for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StsStats {
    /// Credentials issued, by any endpoint.
    pub issued: u64,
    /// SLS requests refused with `SecurityTokenExpired`.
    pub expired_refusals: u64,
    /// SLS requests refused for a token that does not match its key.
    pub invalid_refusals: u64,
}

/// Issues and checks temporary credentials.
#[derive(Debug)]
pub(crate) struct Issuer {
    config: StsConfig,
    issued: Mutex<HashMap<String, IssuedCredentials>>,
    metadata_tokens: Mutex<HashSet<String>>,
    count_issued: AtomicU64,
    expired_refusals: AtomicU64,
    invalid_refusals: AtomicU64,
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

impl Issuer {
    pub(crate) fn new(config: StsConfig) -> Self {
        Self {
            config,
            issued: Mutex::new(HashMap::new()),
            metadata_tokens: Mutex::new(HashSet::new()),
            count_issued: AtomicU64::new(0),
            expired_refusals: AtomicU64::new(0),
            invalid_refusals: AtomicU64::new(0),
        }
    }

    pub(crate) fn requires_temporary(&self) -> bool {
        self.config.require_temporary
    }

    pub(crate) fn stats(&self) -> StsStats {
        StsStats {
            issued: self.count_issued.load(Ordering::Relaxed),
            expired_refusals: self.expired_refusals.load(Ordering::Relaxed),
            invalid_refusals: self.invalid_refusals.load(Ordering::Relaxed),
        }
    }

    /// New credentials valid for the configured lifetime.
    pub(crate) fn issue(&self) -> IssuedCredentials {
        let c = IssuedCredentials {
            access_key_id: format!("STS.{}", random_hex(12)),
            access_key_secret: SecretString::from(random_hex(16)),
            security_token: SecretString::from(format!("CAIS{}", random_hex(48))),
            expiration: SystemTime::now() + self.config.token_lifetime,
        };
        let mut issued = self.issued.lock().expect("issuer lock");
        // Forget what expired long ago, so a long test does not grow the map forever.
        let horizon =
            SystemTime::now() - Duration::from_secs(3600).max(self.config.token_lifetime * 4);
        issued.retain(|_, v| v.expiration > horizon);
        issued.insert(c.access_key_id.clone(), c.clone());
        self.count_issued.fetch_add(1, Ordering::Relaxed);
        c
    }

    /// The issued credentials of `access_key_id`, if any.
    pub(crate) fn lookup(&self, access_key_id: &str) -> Option<IssuedCredentials> {
        self.issued
            .lock()
            .expect("issuer lock")
            .get(access_key_id)
            .cloned()
    }

    /// After the signature matched: the token must be the one issued with the key and not
    /// expired.
    pub(crate) fn check_token(
        &self,
        issued: &IssuedCredentials,
        token: Option<&str>,
    ) -> Result<(), ApiError> {
        if token != Some(issued.security_token.expose_secret()) {
            self.invalid_refusals.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::new(
                401,
                "InvalidSecurityToken.MismatchWithAccessKey",
                "the security token does not match the AccessKeyId (or is missing)",
            ));
        }
        if SystemTime::now() >= issued.expiration {
            self.expired_refusals.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                access_key_id = %issued.access_key_id,
                expired_at = %format_expiration(issued.expiration),
                "refused a request with an expired security token (SecurityTokenExpired)"
            );
            return Err(ApiError::new(
                401,
                "SecurityTokenExpired",
                format!(
                    "the security token expired at {}",
                    format_expiration(issued.expiration)
                ),
            ));
        }
        Ok(())
    }

    /// Serves the credential endpoints; `None` for any other request (an SLS API).
    pub(crate) fn serve(
        &self,
        req: &Request,
        base: &Credentials,
    ) -> Option<Result<Reply, ApiError>> {
        if req.path.starts_with("/latest/") {
            return Some(self.metadata(req));
        }
        if req.path == "/credentials" && req.method == Method::GET {
            return Some(Ok(Reply::json(&self.issue().to_json())));
        }
        let mut params = req.query.clone();
        let form = req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if form {
            params.extend(parse_query(std::str::from_utf8(&req.body).ok()));
        }
        let action = params.iter().find(|(k, _)| k == "Action")?.1.clone();
        if req.path != "/" {
            return None;
        }
        Some(self.sts(req, &params, &action, base))
    }

    fn metadata(&self, req: &Request) -> Result<Reply, ApiError> {
        let text = |s: String| Reply {
            content_type: "text/plain",
            headers: Vec::new(),
            body: bytes::Bytes::from(s),
        };
        if req.path == "/latest/api/token" && req.method == Method::PUT {
            let ttl = req
                .header("x-aliyun-ecs-metadata-token-ttl-seconds")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|t| (1..=MAX_METADATA_TOKEN_TTL).contains(t))
                .ok_or_else(|| {
                    ApiError::new(
                        400,
                        "MissingParameter",
                        "X-aliyun-ecs-metadata-token-ttl-seconds must be 1..=21600",
                    )
                })?;
            let token = random_hex(24);
            self.metadata_tokens
                .lock()
                .expect("issuer lock")
                .insert(token.clone());
            tracing::debug!(ttl, "metadata session token issued");
            return Ok(text(token));
        }
        let known = req.header("x-aliyun-ecs-metadata-token").is_some_and(|t| {
            self.metadata_tokens
                .lock()
                .expect("issuer lock")
                .contains(t)
        });
        if !known {
            return Err(ApiError::new(
                401,
                "Unauthorized",
                "send X-aliyun-ecs-metadata-token from PUT /latest/api/token",
            ));
        }
        match req
            .path
            .strip_prefix("/latest/meta-data/ram/security-credentials/")
        {
            Some("") => Ok(text(METADATA_ROLE.to_owned())),
            Some(role) if role == METADATA_ROLE => Ok(Reply::json(&self.issue().to_json())),
            Some(role) => Err(ApiError::new(
                404,
                "NotFound",
                format!("no RAM role {role:?} is attached to this instance"),
            )),
            None => Err(ApiError::new(404, "NotFound", "unknown metadata path")),
        }
    }

    fn sts(
        &self,
        req: &Request,
        params: &[(String, String)],
        action: &str,
        base: &Credentials,
    ) -> Result<Reply, ApiError> {
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let missing = |k: &str| ApiError::new(400, "MissingParameter", format!("{k} is required"));
        let role_arn = get("RoleArn").ok_or_else(|| missing("RoleArn"))?;
        if !role_arn.starts_with("acs:ram::") {
            return Err(ApiError::new(
                400,
                "InvalidParameter.RoleArn",
                format!("RoleArn {role_arn:?} is not acs:ram::<account>:role/<name>"),
            ));
        }
        get("RoleSessionName").ok_or_else(|| missing("RoleSessionName"))?;
        match action {
            "AssumeRole" => {
                let id = get("AccessKeyId").ok_or_else(|| missing("AccessKeyId"))?;
                let signature = get("Signature").ok_or_else(|| missing("Signature"))?;
                if id != base.access_key_id {
                    return Err(ApiError::new(
                        404,
                        "InvalidAccessKeyId.NotFound",
                        format!("Specified access key is not found: {id}"),
                    ));
                }
                let expected = rpc::signature(
                    base.access_key_secret.expose_secret(),
                    &rpc::string_to_sign(req.method.as_str(), params),
                );
                if !shipper_sls::sign::signatures_equal(&expected, signature) {
                    return Err(ApiError::new(
                        400,
                        "SignatureDoesNotMatch",
                        "the request signature does not conform to Alibaba Cloud standards",
                    ));
                }
            }
            "AssumeRoleWithOIDC" => {
                get("OIDCProviderArn").ok_or_else(|| missing("OIDCProviderArn"))?;
                get("OIDCToken").ok_or_else(|| missing("OIDCToken"))?;
            }
            other => {
                return Err(ApiError::new(
                    400,
                    "InvalidAction.NotFound",
                    format!("action {other:?} is not served by the emulator's STS"),
                ));
            }
        }
        let c = self.issue();
        let session = get("RoleSessionName").unwrap_or_default();
        Ok(Reply::json(&json!({
            "RequestId": random_hex(16),
            "AssumedRoleUser": {
                "Arn": format!("{role_arn}/{session}"),
                "AssumedRoleId": format!("3{}:{session}", random_hex(8)),
            },
            "Credentials": {
                "AccessKeyId": c.access_key_id,
                "AccessKeySecret": c.access_key_secret.expose_secret(),
                "SecurityToken": c.security_token.expose_secret(),
                "Expiration": format_expiration(c.expiration),
            },
        })))
    }
}
