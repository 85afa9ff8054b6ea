//! [`Spec`]: a provider described as data (what `[source.credentials]` or the environment
//! asks for), built into a [`Provider`] by [`Spec::build`]; and [`default_chain`], the
//! documented order used when no provider is configured.
//!
//! The default chain, first match wins (the seed's `SLS_AK_ID`/`SLS_AK_KEY`/`SLS_STS_TOKEN`
//! and the `[source]` key fields come before it; `shipper run` checks those itself):
//! 1. `ALIBABA_CLOUD_ACCESS_KEY_ID` + `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (+
//!    `ALIBABA_CLOUD_SECURITY_TOKEN`): `static`;
//! 2. `ALIBABA_CLOUD_ROLE_ARN` + `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` +
//!    `ALIBABA_CLOUD_OIDC_TOKEN_FILE` (Kubernetes RRSA): `oidc_role_arn`;
//! 3. `ALIBABA_CLOUD_ECS_METADATA` (the role name): `ecs_ram_role`;
//! 4. `ALIBABA_CLOUD_CREDENTIALS_URI`: `credentials_uri`;
//! 5. `ALIBABA_CLOUD_CREDENTIALS_FILE` or `~/.alibabacloud/credentials` (profile
//!    `ALIBABA_CLOUD_PROFILE`, else `default`): `file`;
//! 6. `~/.aliyun/config.json` (the CLI's current profile): `file`.
//!
//! The instance metadata service is tried only when named (step 3): probing
//! `100.100.100.200` off Alibaba Cloud would hang every start-up for the connect timeout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use shipper_net::proxy::ProxyConfig;

use super::credentials_uri::CredentialsUriProvider;
use super::ecs_ram_role::EcsRamRoleProvider;
use super::file::{FileProvider, FileSource};
use super::oidc_role_arn::OidcRoleArnProvider;
use super::ram_role_arn::RamRoleArnProvider;
use super::static_keys::{Secret, StaticProvider};
use super::sts::RoleRequest;
use super::{CredentialsError, Provider, ProviderHttp};

/// A credentials provider as configured.
#[derive(Debug, Clone)]
pub enum Spec {
    /// `static`.
    Static(StaticProvider),
    /// `file`.
    File(FileSource),
    /// `ecs_ram_role`.
    EcsRamRole {
        /// The metadata service (`http://100.100.100.200`).
        metadata_endpoint: String,
        /// The role; discovered when `None`.
        role_name: Option<String>,
    },
    /// `ram_role_arn`.
    RamRoleArn {
        /// Where the base credentials come from.
        base: Box<Spec>,
        /// The STS endpoint.
        sts_endpoint: String,
        /// The role to assume.
        role_arn: String,
        /// Session name.
        session_name: String,
        /// Requested lifetime.
        duration: Duration,
        /// Inline policy.
        policy: Option<String>,
        /// External ID.
        external_id: Option<String>,
    },
    /// `oidc_role_arn`.
    OidcRoleArn {
        /// The STS endpoint.
        sts_endpoint: String,
        /// The role to assume.
        role_arn: String,
        /// The OIDC provider.
        oidc_provider_arn: String,
        /// The token file.
        oidc_token_file: PathBuf,
        /// Session name.
        session_name: String,
        /// Requested lifetime.
        duration: Duration,
        /// Inline policy.
        policy: Option<String>,
    },
    /// `credentials_uri`.
    CredentialsUri {
        /// The URL.
        uri: String,
    },
}

impl Spec {
    /// The provider's name.
    pub fn name(&self) -> &'static str {
        match self {
            Spec::Static(_) => "static",
            Spec::File(_) => "file",
            Spec::EcsRamRole { .. } => "ecs_ram_role",
            Spec::RamRoleArn { .. } => "ram_role_arn",
            Spec::OidcRoleArn { .. } => "oidc_role_arn",
            Spec::CredentialsUri { .. } => "credentials_uri",
        }
    }

    /// The provider, with HTTP clients routed by the source side's `proxy` settings.
    pub fn build(
        &self,
        proxy: &ProxyConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Arc<dyn Provider>, CredentialsError> {
        let http = |name, url: &str, key: &str| ProviderHttp::new(name, url, key, proxy, env);
        Ok(match self {
            Spec::Static(p) => Arc::new(p.clone()),
            Spec::File(source) => Arc::new(FileProvider {
                source: source.clone(),
            }),
            Spec::EcsRamRole {
                metadata_endpoint,
                role_name,
            } => Arc::new(EcsRamRoleProvider::new(
                http(
                    "ecs_ram_role",
                    metadata_endpoint,
                    "source.credentials.metadata_endpoint",
                )?,
                role_name.clone(),
            )),
            Spec::RamRoleArn {
                base,
                sts_endpoint,
                role_arn,
                session_name,
                duration,
                policy,
                external_id,
            } => Arc::new(RamRoleArnProvider {
                base: base.build(proxy, env)?,
                role: RoleRequest {
                    http: http("ram_role_arn", sts_endpoint, STS_KEY)?,
                    role_arn: role_arn.clone(),
                    session_name: session_name.clone(),
                    duration: *duration,
                    policy: policy.clone(),
                },
                external_id: external_id.clone(),
            }),
            Spec::OidcRoleArn {
                sts_endpoint,
                role_arn,
                oidc_provider_arn,
                oidc_token_file,
                session_name,
                duration,
                policy,
            } => Arc::new(OidcRoleArnProvider {
                role: RoleRequest {
                    http: http("oidc_role_arn", sts_endpoint, STS_KEY)?,
                    role_arn: role_arn.clone(),
                    session_name: session_name.clone(),
                    duration: *duration,
                    policy: policy.clone(),
                },
                oidc_provider_arn: oidc_provider_arn.clone(),
                oidc_token_file: oidc_token_file.clone(),
            }),
            Spec::CredentialsUri { uri } => Arc::new(CredentialsUriProvider::new(http(
                "credentials_uri",
                uri,
                "source.credentials.uri",
            )?)),
        })
    }
}

/// The config key of the STS endpoint.
const STS_KEY: &str = "source.credentials.sts_endpoint";

/// The default session name of role providers.
pub const DEFAULT_SESSION_NAME: &str = "shipper";

/// The first step of the default chain (module docs) that the environment and the files
/// under `home` satisfy, with the variable or file that chose it.
pub fn default_chain(
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    sts_endpoint: &str,
    metadata_endpoint: &str,
) -> Option<(Spec, String)> {
    let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if let (Some(id), Some(secret)) = (
        get("ALIBABA_CLOUD_ACCESS_KEY_ID"),
        get("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    ) {
        return Some((
            Spec::Static(StaticProvider {
                access_key_id: id,
                secret: Secret::Value(SecretString::from(secret)),
                security_token: get("ALIBABA_CLOUD_SECURITY_TOKEN").map(SecretString::from),
            }),
            "ALIBABA_CLOUD_ACCESS_KEY_ID".into(),
        ));
    }
    if let (Some(role_arn), Some(provider), Some(file)) = (
        get("ALIBABA_CLOUD_ROLE_ARN"),
        get("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
        get("ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
    ) {
        return Some((
            Spec::OidcRoleArn {
                sts_endpoint: sts_endpoint.to_owned(),
                role_arn,
                oidc_provider_arn: provider,
                oidc_token_file: file.into(),
                session_name: get("ALIBABA_CLOUD_ROLE_SESSION_NAME")
                    .unwrap_or_else(|| DEFAULT_SESSION_NAME.into()),
                duration: super::ram_role_arn::DEFAULT_DURATION,
                policy: None,
            },
            "ALIBABA_CLOUD_ROLE_ARN".into(),
        ));
    }
    if let Some(role) = get("ALIBABA_CLOUD_ECS_METADATA") {
        return Some((
            Spec::EcsRamRole {
                metadata_endpoint: metadata_endpoint.to_owned(),
                role_name: Some(role),
            },
            "ALIBABA_CLOUD_ECS_METADATA".into(),
        ));
    }
    if let Some(uri) = get("ALIBABA_CLOUD_CREDENTIALS_URI") {
        return Some((
            Spec::CredentialsUri { uri },
            "ALIBABA_CLOUD_CREDENTIALS_URI".into(),
        ));
    }
    let profile = get("ALIBABA_CLOUD_PROFILE");
    let ini = get("ALIBABA_CLOUD_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".alibabacloud/credentials")))
        .filter(|p| p.is_file());
    if let Some(path) = ini {
        let shown = path.display().to_string();
        return Some((
            Spec::File(FileSource::AlibabaCloudIni {
                path,
                profile: profile.unwrap_or_else(|| "default".into()),
            }),
            shown,
        ));
    }
    let cli = home
        .map(|h| h.join(".aliyun/config.json"))
        .filter(|p| p.is_file());
    if let Some(path) = cli {
        let shown = path.display().to_string();
        return Some((Spec::File(FileSource::AliyunCli { path, profile }), shown));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_chain_takes_the_first_match_in_order() {
        let pick = |env: &dyn Fn(&str) -> Option<String>, home: Option<&Path>| {
            default_chain(env, home, "https://sts", "http://md").map(|(s, why)| (s.name(), why))
        };
        let all = env_of(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "a"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "b"),
            ("ALIBABA_CLOUD_ROLE_ARN", "r"),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "p"),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/t"),
            ("ALIBABA_CLOUD_ECS_METADATA", "role"),
            ("ALIBABA_CLOUD_CREDENTIALS_URI", "http://u"),
        ]);
        assert_eq!(pick(&all, None).unwrap().0, "static");
        let oidc = env_of(&[
            ("ALIBABA_CLOUD_ROLE_ARN", "r"),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "p"),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/t"),
            ("ALIBABA_CLOUD_ECS_METADATA", "role"),
        ]);
        assert_eq!(pick(&oidc, None).unwrap().0, "oidc_role_arn");
        let ecs = env_of(&[
            ("ALIBABA_CLOUD_ECS_METADATA", "role"),
            ("ALIBABA_CLOUD_CREDENTIALS_URI", "x"),
        ]);
        assert_eq!(pick(&ecs, None).unwrap().0, "ecs_ram_role");
        let uri = env_of(&[("ALIBABA_CLOUD_CREDENTIALS_URI", "http://u")]);
        assert_eq!(pick(&uri, None).unwrap().0, "credentials_uri");
        let home = tempfile::tempdir().unwrap();
        assert!(pick(&env_of(&[]), Some(home.path())).is_none());
        std::fs::create_dir_all(home.path().join(".aliyun")).unwrap();
        std::fs::write(home.path().join(".aliyun/config.json"), "{}").unwrap();
        assert_eq!(pick(&env_of(&[]), Some(home.path())).unwrap().0, "file");
    }
}
