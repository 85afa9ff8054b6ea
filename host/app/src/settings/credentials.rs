//! `[source.credentials]`: which credentials provider signs the SLS requests, and the
//! default chain when none is configured (the providers live in
//! `shipper_sls::credentials`; this module only turns keys and environment into a
//! [`Spec`], reporting every problem with its full key).
//!
//! Order, first match wins:
//! 1. `[source.credentials]` with a `type` (a deliberate choice; with `ram_role_arn` the
//!    seed variables below are its default base credentials);
//! 2. the seed's `SLS_AK_ID` / `SLS_AK_KEY` / `SLS_STS_TOKEN`, or the `[source]`
//!    `access_key_*` keys (today's `static` behaviour, unchanged);
//! 3. the default chain of `shipper_sls::credentials::chain` (`ALIBABA_CLOUD_*` variables,
//!    the standard credentials file, the CLI profile).
//!
//! Nothing here reads a file or the network: the run command builds the provider and
//! fetches the first credentials.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;
use shipper_sls::credentials::chain::{self, DEFAULT_SESSION_NAME, Spec};
use shipper_sls::credentials::ecs_ram_role::DEFAULT_METADATA_ENDPOINT;
use shipper_sls::credentials::file::FileSource;
use shipper_sls::credentials::ram_role_arn::DEFAULT_DURATION;
use shipper_sls::credentials::static_keys::{Secret, StaticProvider};
use shipper_sls::credentials::sts::DEFAULT_STS_ENDPOINT;

use super::values::{ConfigDuration, Problems};

/// The provider types `type` may name.
const TYPES: &str = "static, file, ecs_ram_role, ram_role_arn, oidc_role_arn or credentials_uri";

/// `[source.credentials]` as written. Which keys apply depends on `type`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// `static`, `file`, `ecs_ram_role`, `ram_role_arn`, `oidc_role_arn` or `credentials_uri`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `static` / `file` (separate files): the AccessKey ID.
    pub access_key_id: Option<String>,
    /// `static`: the AccessKey secret (prefer `access_key_secret_file`).
    pub access_key_secret: Option<SecretString>,
    /// `static` / `file`: a file holding the secret, re-read on every refresh.
    pub access_key_secret_file: Option<PathBuf>,
    /// `static`: an STS token.
    pub security_token: Option<SecretString>,
    /// `file`: a file holding the STS token.
    pub security_token_file: Option<PathBuf>,
    /// `file`: the credentials file.
    pub path: Option<PathBuf>,
    /// `file`: `json` (default), `alibabacloud` (`~/.alibabacloud/credentials`) or
    /// `aliyun_cli` (`~/.aliyun/config.json`).
    pub format: Option<String>,
    /// `file`: the profile of an `alibabacloud` or `aliyun_cli` file.
    pub profile: Option<String>,
    /// `ecs_ram_role`: the metadata service (default `http://100.100.100.200`).
    pub metadata_endpoint: Option<String>,
    /// `ecs_ram_role`: the role (default `ALIBABA_CLOUD_ECS_METADATA`, else discovered).
    pub role_name: Option<String>,
    /// `ram_role_arn` / `oidc_role_arn`: the STS endpoint (default `https://sts.aliyuncs.com`).
    pub sts_endpoint: Option<String>,
    /// `ram_role_arn` / `oidc_role_arn`: the role (default `ALIBABA_CLOUD_ROLE_ARN`).
    pub role_arn: Option<String>,
    /// Role session name (default `shipper`).
    pub role_session_name: Option<String>,
    /// Requested session lifetime (default 1h; STS allows 15m up to the role's maximum).
    pub duration: Option<ConfigDuration>,
    /// An inline policy (JSON) narrowing the role.
    pub policy: Option<String>,
    /// `ram_role_arn`: the external ID the role's trust policy requires.
    pub external_id: Option<String>,
    /// `ram_role_arn`: where the base credentials come from (a nested table with its own
    /// `type`); default: the seed variables or the default chain.
    pub base: Option<Box<CredentialsConfig>>,
    /// `oidc_role_arn`: default `ALIBABA_CLOUD_OIDC_PROVIDER_ARN`.
    pub oidc_provider_arn: Option<String>,
    /// `oidc_role_arn`: default `ALIBABA_CLOUD_OIDC_TOKEN_FILE`.
    pub oidc_token_file: Option<PathBuf>,
    /// `credentials_uri`: default `ALIBABA_CLOUD_CREDENTIALS_URI`.
    pub uri: Option<String>,
}

/// The chosen provider and what chose it (for the start-up log).
#[derive(Debug, Clone)]
pub struct CredentialsChoice {
    /// The provider.
    pub spec: Spec,
    /// The key or variable that chose it (`source.credentials`, `SLS_AK_ID`, …).
    pub origin: String,
}

impl CredentialsChoice {
    /// Whether the credentials come from this machine alone (a key pair, files), so reading
    /// them reaches no service.
    pub fn is_local(&self) -> bool {
        matches!(self.spec, Spec::File(_) | Spec::Static(_))
    }
}

/// The legacy `[source]` keys and the seed variables, already merged by `source.rs`.
#[derive(Debug, Default)]
pub(super) struct Legacy {
    pub access_key_id: Option<String>,
    pub secret: Option<Secret>,
    pub security_token: Option<SecretString>,
    /// Which of them was set first, for the origin.
    pub origin: Option<String>,
    /// Some of them come from `[source]` keys (not only the environment).
    pub from_config_keys: bool,
}

/// Resolves the provider (module docs for the order); problems go to `problems`.
pub(super) fn resolve(
    legacy: Legacy,
    table: Option<CredentialsConfig>,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<CredentialsChoice> {
    let any_legacy = legacy.access_key_id.is_some()
        || legacy.secret.is_some()
        || legacy.security_token.is_some();
    if let Some(table) = table {
        if legacy.from_config_keys {
            problems.push(
                "source.credentials",
                "the [source] access_key_* / security_token keys name credentials too: keep \
                 one of them",
            );
            return None;
        }
        let spec = from_table(&table, "source.credentials", env, problems)?;
        return Some(CredentialsChoice {
            spec,
            origin: "source.credentials".into(),
        });
    }
    if any_legacy {
        return legacy_static(legacy, problems);
    }
    let home = env("HOME").map(PathBuf::from);
    match chain::default_chain(
        env,
        home.as_deref(),
        DEFAULT_STS_ENDPOINT,
        DEFAULT_METADATA_ENDPOINT,
    ) {
        Some((spec, origin)) => Some(CredentialsChoice { spec, origin }),
        None => {
            // What the seed scripts' users expect to read, plus the alternatives.
            problems.push(
                "source.access_key_id",
                "missing: set SLS_AK_ID (preferred) or the config key, or configure \
                 [source.credentials] type = ... (see docs/configuration.md)",
            );
            problems.push(
                "source.access_key_secret",
                "missing: set SLS_AK_KEY or `access_key_secret_file`",
            );
            None
        }
    }
}

fn legacy_static(legacy: Legacy, problems: &mut Problems) -> Option<CredentialsChoice> {
    let before = problems.len();
    if legacy.access_key_id.is_none() {
        problems.push(
            "source.access_key_id",
            "missing: set SLS_AK_ID (preferred) or the config key",
        );
    }
    if legacy.secret.is_none() {
        problems.push(
            "source.access_key_secret",
            "missing: set SLS_AK_KEY or `access_key_secret_file`",
        );
    }
    if problems.len() > before {
        return None;
    }
    Some(CredentialsChoice {
        spec: Spec::Static(StaticProvider {
            access_key_id: legacy.access_key_id?,
            secret: legacy.secret?,
            security_token: legacy.security_token,
        }),
        origin: legacy
            .origin
            .unwrap_or_else(|| "source.access_key_id".into()),
    })
}

/// A URL key: present, with an http(s) scheme.
fn url_key(
    value: Option<String>,
    default: Option<&str>,
    key: &str,
    problems: &mut Problems,
) -> Option<String> {
    let Some(url) = value.or_else(|| default.map(str::to_owned)) else {
        problems.push(key, "missing: set it to an http:// or https:// URL");
        return None;
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        problems.push(
            key,
            format!("{url:?} has no http:// or https:// scheme: write http://{url}"),
        );
        return None;
    }
    Some(url)
}

fn from_table(
    c: &CredentialsConfig,
    prefix: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems,
) -> Option<Spec> {
    let key = |k: &str| format!("{prefix}.{k}");
    let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let required = |v: Option<String>, k: &str, var: Option<&str>, problems: &mut Problems| {
        if v.is_none() {
            let hint = var.map_or(String::new(), |var| format!(" (or {var})"));
            problems.push(key(k), format!("missing: required by this type{hint}"));
        }
        v
    };
    let session = c
        .role_session_name
        .clone()
        .or_else(|| get("ALIBABA_CLOUD_ROLE_SESSION_NAME"))
        .unwrap_or_else(|| DEFAULT_SESSION_NAME.into());
    let duration = c.duration.map_or(DEFAULT_DURATION, |d| d.0);
    if c.duration.is_some() && duration.as_secs() < 900 {
        problems.push(
            key("duration"),
            "STS issues credentials for at least 15 minutes: use 15m or more",
        );
    }
    let sts_endpoint = || c.sts_endpoint.clone();
    match c.kind.as_deref() {
        None => {
            problems.push(key("type"), format!("missing: set type = one of {TYPES}"));
            None
        }
        Some("static") => {
            let id = required(c.access_key_id.clone(), "access_key_id", None, problems);
            let secret = match (&c.access_key_secret, &c.access_key_secret_file) {
                (Some(v), None) => Some(Secret::Value(v.clone())),
                (None, Some(p)) => Some(Secret::File {
                    path: p.clone(),
                    key: key("access_key_secret_file"),
                }),
                (Some(_), Some(_)) => {
                    problems.push(
                        key("access_key_secret"),
                        "set either access_key_secret or access_key_secret_file, not both",
                    );
                    None
                }
                (None, None) => {
                    problems.push(
                        key("access_key_secret_file"),
                        "missing: name the file holding the AccessKey secret",
                    );
                    None
                }
            };
            Some(Spec::Static(StaticProvider {
                access_key_id: id?,
                secret: secret?,
                security_token: c.security_token.clone(),
            }))
        }
        Some("file") => {
            let format = c.format.as_deref().unwrap_or("json");
            match format {
                "json" if c.path.is_none() && c.access_key_secret_file.is_some() => {
                    let id = required(c.access_key_id.clone(), "access_key_id", None, problems)?;
                    Some(Spec::File(FileSource::Separate {
                        access_key_id: id,
                        secret_file: c.access_key_secret_file.clone()?,
                        token_file: c.security_token_file.clone(),
                    }))
                }
                "json" => {
                    let Some(path) = c.path.clone() else {
                        problems.push(
                            key("path"),
                            "missing: the JSON credentials file (or access_key_id with \
                             access_key_secret_file)",
                        );
                        return None;
                    };
                    Some(Spec::File(FileSource::Json(path)))
                }
                "alibabacloud" => {
                    let home = get("HOME").map(PathBuf::from);
                    let path = c
                        .path
                        .clone()
                        .or_else(|| get("ALIBABA_CLOUD_CREDENTIALS_FILE").map(PathBuf::from))
                        .or_else(|| home.map(|h| h.join(".alibabacloud/credentials")));
                    let Some(path) = path else {
                        problems.push(key("path"), "missing, and HOME is not set");
                        return None;
                    };
                    Some(Spec::File(FileSource::AlibabaCloudIni {
                        path,
                        profile: c
                            .profile
                            .clone()
                            .or_else(|| get("ALIBABA_CLOUD_PROFILE"))
                            .unwrap_or_else(|| "default".into()),
                    }))
                }
                "aliyun_cli" => {
                    let home = get("HOME").map(PathBuf::from);
                    let Some(path) = c
                        .path
                        .clone()
                        .or_else(|| home.map(|h| h.join(".aliyun/config.json")))
                    else {
                        problems.push(key("path"), "missing, and HOME is not set");
                        return None;
                    };
                    Some(Spec::File(FileSource::AliyunCli {
                        path,
                        profile: c.profile.clone(),
                    }))
                }
                other => {
                    problems.push(
                        key("format"),
                        format!("{other:?} is not json, alibabacloud or aliyun_cli"),
                    );
                    None
                }
            }
        }
        Some("ecs_ram_role") => {
            let endpoint = url_key(
                c.metadata_endpoint.clone(),
                Some(DEFAULT_METADATA_ENDPOINT),
                &key("metadata_endpoint"),
                problems,
            )?;
            Some(Spec::EcsRamRole {
                metadata_endpoint: endpoint,
                role_name: c
                    .role_name
                    .clone()
                    .or_else(|| get("ALIBABA_CLOUD_ECS_METADATA")),
            })
        }
        Some("ram_role_arn") => {
            let role_arn = required(c.role_arn.clone(), "role_arn", None, problems);
            let endpoint = url_key(
                sts_endpoint(),
                Some(DEFAULT_STS_ENDPOINT),
                &key("sts_endpoint"),
                problems,
            );
            let base = match &c.base {
                Some(b) => from_table(b, &key("base"), env, problems),
                None => {
                    // The seed variables, else the default chain.
                    match (get("SLS_AK_ID"), get("SLS_AK_KEY")) {
                        (Some(id), Some(secret)) => Some(Spec::Static(StaticProvider {
                            access_key_id: id,
                            secret: Secret::Value(SecretString::from(secret)),
                            security_token: get("SLS_STS_TOKEN").map(SecretString::from),
                        })),
                        _ => {
                            let home = get("HOME").map(PathBuf::from);
                            let found = chain::default_chain(
                                env,
                                home.as_deref(),
                                DEFAULT_STS_ENDPOINT,
                                DEFAULT_METADATA_ENDPOINT,
                            );
                            if found.is_none() {
                                problems.push(
                                    key("base"),
                                    "no base credentials for AssumeRole: set SLS_AK_ID and \
                                     SLS_AK_KEY, or a [source.credentials.base] table",
                                );
                            }
                            found.map(|(s, _)| s)
                        }
                    }
                }
            };
            Some(Spec::RamRoleArn {
                base: Box::new(base?),
                sts_endpoint: endpoint?,
                role_arn: role_arn?,
                session_name: session,
                duration,
                policy: c.policy.clone(),
                external_id: c.external_id.clone(),
            })
        }
        Some("oidc_role_arn") => {
            let role_arn = required(
                c.role_arn.clone().or_else(|| get("ALIBABA_CLOUD_ROLE_ARN")),
                "role_arn",
                Some("ALIBABA_CLOUD_ROLE_ARN"),
                problems,
            );
            let provider = required(
                c.oidc_provider_arn
                    .clone()
                    .or_else(|| get("ALIBABA_CLOUD_OIDC_PROVIDER_ARN")),
                "oidc_provider_arn",
                Some("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
                problems,
            );
            let token_file = required(
                c.oidc_token_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .or_else(|| get("ALIBABA_CLOUD_OIDC_TOKEN_FILE")),
                "oidc_token_file",
                Some("ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
                problems,
            );
            let endpoint = url_key(
                sts_endpoint(),
                Some(DEFAULT_STS_ENDPOINT),
                &key("sts_endpoint"),
                problems,
            );
            Some(Spec::OidcRoleArn {
                sts_endpoint: endpoint?,
                role_arn: role_arn?,
                oidc_provider_arn: provider?,
                oidc_token_file: token_file?.into(),
                session_name: session,
                duration,
                policy: c.policy.clone(),
            })
        }
        Some("credentials_uri") => {
            let uri = c
                .uri
                .clone()
                .or_else(|| get("ALIBABA_CLOUD_CREDENTIALS_URI"));
            if uri.is_none() {
                problems.push(
                    key("uri"),
                    "missing: required by this type (or ALIBABA_CLOUD_CREDENTIALS_URI)",
                );
                return None;
            }
            let uri = url_key(uri, None, &key("uri"), problems)?;
            Some(Spec::CredentialsUri { uri })
        }
        Some(other) => {
            problems.push(key("type"), format!("{other:?} is not one of {TYPES}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_toml(text: &str, env: &[(&str, &str)]) -> Result<CredentialsChoice, Vec<String>> {
        let table: CredentialsConfig = toml::from_str(text).unwrap();
        let pairs: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let env = move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let mut problems = Problems::default();
        resolve(Legacy::default(), Some(table), &env, &mut problems)
            .ok_or_else(|| problems.into_lines())
    }

    #[test]
    fn each_type_resolves_and_missing_keys_are_named() {
        let ok = |t: &str, env: &[(&str, &str)]| resolve_toml(t, env).unwrap().spec.name();
        assert_eq!(ok("type = \"file\"\npath = \"/c.json\"", &[]), "file");
        assert_eq!(ok("type = \"ecs_ram_role\"", &[]), "ecs_ram_role");
        assert_eq!(
            ok(
                "type = \"oidc_role_arn\"",
                &[
                    ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"),
                    (
                        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
                        "acs:ram::1:oidc-provider/p"
                    ),
                    ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/t"),
                ]
            ),
            "oidc_role_arn"
        );
        assert_eq!(
            ok(
                "type = \"ram_role_arn\"\nrole_arn = \"acs:ram::1:role/r\"",
                &[("SLS_AK_ID", "a"), ("SLS_AK_KEY", "b")]
            ),
            "ram_role_arn"
        );
        assert_eq!(
            ok(
                "type = \"credentials_uri\"\nuri = \"http://127.0.0.1:1/c\"",
                &[]
            ),
            "credentials_uri"
        );
        let e = resolve_toml("type = \"ram_role_arn\"", &[]).unwrap_err();
        assert!(
            e.iter()
                .any(|l| l.contains("`source.credentials.role_arn`")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|l| l.contains("`source.credentials.base`")),
            "{e:?}"
        );
        let e = resolve_toml(
            "type = \"ecs_ram_role\"\nmetadata_endpoint = \"100.100.100.200\"",
            &[],
        )
        .unwrap_err();
        assert!(
            e[0].contains("`source.credentials.metadata_endpoint`")
                && e[0].contains("http://100.100.100.200"),
            "{e:?}"
        );
        let e = resolve_toml("type = \"vault\"", &[]).unwrap_err();
        assert!(e[0].contains("`source.credentials.type`"), "{e:?}");
        let e = resolve_toml("type = \"oidc_role_arn\"", &[]).unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
    }
}
