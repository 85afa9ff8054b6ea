//! Where SLS credentials come from and how they stay fresh.
//!
//! A [`Provider`] fetches one set of credentials (an AccessKey pair, with an STS token and an
//! expiry when they are temporary). The providers are named as Alibaba Cloud's credential
//! tools name them, one file each:
//! - `static_keys`: an AccessKey pair given in the configuration or the environment
//!   (`static`), its secret possibly in a file re-read on every fetch;
//! - [`file`](mod@file): a JSON credentials file (`AccessKeyId`, `AccessKeySecret`, `SecurityToken`,
//!   `Expiration`), separate secret/token files, or Alibaba Cloud's standard credentials file
//!   (`~/.alibabacloud/credentials`, ini) and CLI profile (`~/.aliyun/config.json`);
//! - [`ecs_ram_role`]: the ECS instance metadata service (`ecs_ram_role`);
//! - [`ram_role_arn`]: STS AssumeRole from base credentials (`ram_role_arn`);
//! - [`oidc_role_arn`]: STS AssumeRoleWithOIDC with a token file, as Kubernetes RRSA mounts
//!   it (`oidc_role_arn`);
//! - [`credentials_uri`]: a URL answering the JSON credentials (`credentials_uri`).
//!
//! [`RefreshingCredentials`] (`refresh`) holds the current credentials for every
//! [`Client`](crate::Client) and refreshes them in the background, never on the data path
//! (docs/sls-protocol.md §3.3 "STS tokens"). [`chain`] is the documented default order used
//! when no provider is configured.
//!
//! This module does not sign anything ([`crate::sign`]) nor decide what a 401 means for a
//! request ([`crate::client`] asks for a refresh and retries once).

pub mod chain;
pub mod credentials_uri;
pub mod ecs_ram_role;
pub mod file;
mod http;
pub mod oidc_role_arn;
pub mod ram_role_arn;
mod refresh;
pub mod static_keys;
pub mod sts;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;
use serde::Deserialize;

pub use self::http::ProviderHttp;
pub use self::refresh::{CredentialStats, RefreshingCredentials};
use crate::sign::Credentials;

/// Credentials as one fetch returned them.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The key pair (and token).
    pub credentials: Credentials,
    /// When they stop working; `None` for long-term AccessKeys.
    pub expiration: Option<SystemTime>,
}

/// Why a provider could not fetch credentials. The message names the config key (or
/// environment variable) involved and the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error("SLS credentials ({provider}): {message}")]
pub struct CredentialsError {
    /// The provider's name (`ecs_ram_role`, …).
    pub provider: &'static str,
    /// What failed and what to do.
    pub message: String,
}

impl CredentialsError {
    /// An error of `provider`.
    pub fn new(provider: &'static str, message: impl Into<String>) -> Self {
        Self {
            provider,
            message: message.into(),
        }
    }
}

/// A boxed, `Send` future, as [`Provider::fetch`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A source of credentials. Implementations do I/O in [`fetch`](Provider::fetch) only; the
/// [`RefreshingCredentials`] decides when to call it.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider's name as the configuration spells it (`ecs_ram_role`).
    fn name(&self) -> &'static str;

    /// Fetches the credentials now.
    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, CredentialsError>>;

    /// Re-fetch at least this often even when the credentials do not expire (a file that
    /// may be rewritten); `None` (the default) = only as their expiry requires.
    fn poll_interval(&self) -> Option<Duration> {
        None
    }
}

/// The JSON shape shared by STS, the metadata service, credentials URIs and credentials
/// files: `AccessKeyId`, `AccessKeySecret`, `SecurityToken`, `Expiration` (ISO 8601 UTC),
/// and on metadata / URI answers a `Code` that must be `Success`.
#[derive(Deserialize)]
pub(crate) struct JsonCredentials {
    #[serde(rename = "Code")]
    pub code: Option<String>,
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: Option<String>,
    #[serde(rename = "AccessKeySecret")]
    pub access_key_secret: Option<SecretString>,
    #[serde(rename = "SecurityToken")]
    pub security_token: Option<SecretString>,
    #[serde(rename = "Expiration")]
    pub expiration: Option<String>,
}

impl JsonCredentials {
    /// Checks the fields; `what` names the source in errors.
    pub(crate) fn into_fetched(
        self,
        provider: &'static str,
        what: &str,
    ) -> Result<Fetched, CredentialsError> {
        if let Some(code) = self.code.as_deref()
            && !code.eq_ignore_ascii_case("Success")
        {
            return Err(CredentialsError::new(
                provider,
                format!("{what} answered Code {code:?} instead of \"Success\""),
            ));
        }
        let (Some(id), Some(secret)) = (self.access_key_id, self.access_key_secret) else {
            return Err(CredentialsError::new(
                provider,
                format!("{what} has no AccessKeyId/AccessKeySecret"),
            ));
        };
        let expiration = match self.expiration.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => Some(parse_expiration(text).ok_or_else(|| {
                CredentialsError::new(
                    provider,
                    format!(
                        "{what}: Expiration {text:?} is not an ISO 8601 UTC time like \
                         2024-01-01T00:00:00Z"
                    ),
                )
            })?),
            None => None,
        };
        Ok(Fetched {
            credentials: Credentials {
                access_key_id: id,
                access_key_secret: secret,
                security_token: self.security_token,
            },
            expiration,
        })
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (what STS and the metadata service write).
pub fn parse_expiration(text: &str) -> Option<SystemTime> {
    let t = text.trim();
    let t = t.strip_suffix('Z').or_else(|| t.strip_suffix("+00:00"))?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day) = (
        d.next()?.parse::<i64>().ok()?,
        d.next()?.parse::<u32>().ok()?,
        d.next()?.parse::<u32>().ok()?,
    );
    let time = time.split('.').next()?;
    let mut hms = time.split(':');
    let (h, mi, s) = (
        hms.next()?.parse::<i64>().ok()?,
        hms.next()?.parse::<i64>().ok()?,
        hms.next()?.parse::<i64>().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = crate::sign::v4::days_from_civil(y, m, day) * 86_400 + h * 3600 + mi * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form [`parse_expiration`] reads (the emulator writes it).
pub fn format_expiration(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (y, m, d) = crate::sign::v4::civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_formats() {
        let t = parse_expiration("2024-01-01T00:00:00Z").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_704_067_200));
        assert_eq!(parse_expiration("2024-01-01T00:00:00.123Z"), Some(t));
        assert_eq!(format_expiration(t), "2024-01-01T00:00:00Z");
        for bad in ["", "2024-01-01", "2024-13-01T00:00:00Z", "yesterday"] {
            assert!(parse_expiration(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn json_credentials_need_both_halves_and_success() {
        let j: JsonCredentials = serde_json::from_str(
            r#"{"Code":"Success","AccessKeyId":"STS.a","AccessKeySecret":"s","SecurityToken":"t","Expiration":"2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let f = j.into_fetched("credentials_uri", "the URI").unwrap();
        assert_eq!(f.credentials.access_key_id, "STS.a");
        assert!(f.expiration.is_some() && f.credentials.security_token.is_some());
        let j: JsonCredentials =
            serde_json::from_str(r#"{"Code":"Failed","AccessKeyId":"a"}"#).unwrap();
        let e = j
            .into_fetched("ecs_ram_role", "the metadata service")
            .unwrap_err();
        assert!(e.to_string().contains("Failed"), "{e}");
    }
}
