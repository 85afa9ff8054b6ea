//! `file`: credentials read from files, re-read on every refresh (and at least every
//! [`POLL_INTERVAL`], so a rewritten file is picked up without a restart):
//! - [`FileSource::Json`]: a JSON file of `AccessKeyId`, `AccessKeySecret` and, for
//!   temporary credentials, `SecurityToken` and `Expiration` (what a sidecar that renews
//!   STS tokens writes);
//! - [`FileSource::Separate`]: an AccessKey ID with the secret and the token in their own
//!   files (Kubernetes secrets mounted as files);
//! - [`FileSource::AlibabaCloudIni`]: Alibaba Cloud's standard credentials file
//!   (`~/.alibabacloud/credentials`, ini sections with `type = access_key` or `sts`);
//! - [`FileSource::AliyunCli`]: the `aliyun` CLI's profiles (`~/.aliyun/config.json`, modes
//!   `AK` and `StsToken`).
//!
//! A file whose credentials already expired is an error (the refresh retries), not
//! credentials: SLS would refuse them.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use serde::Deserialize;

use super::static_keys::read_secret_file;
use super::{BoxFuture, CredentialsError, Fetched, JsonCredentials, Provider};
use crate::sign::Credentials;

/// How often files without an `Expiration` are re-read anyway: cheap, and a rotated key
/// takes effect within seconds instead of at the next 401.
pub const POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Which file (or files) to read.
#[derive(Debug, Clone)]
pub enum FileSource {
    /// A JSON credentials file.
    Json(PathBuf),
    /// Separate files.
    Separate {
        /// AccessKey ID (not secret).
        access_key_id: String,
        /// The file holding the secret.
        secret_file: PathBuf,
        /// The file holding the STS token, if any.
        token_file: Option<PathBuf>,
    },
    /// `~/.alibabacloud/credentials` (ini), one profile of it.
    AlibabaCloudIni {
        /// The file.
        path: PathBuf,
        /// The section (`default` unless `ALIBABA_CLOUD_PROFILE` or the config says).
        profile: String,
    },
    /// `~/.aliyun/config.json`, one profile of it (its `current` one by default).
    AliyunCli {
        /// The file.
        path: PathBuf,
        /// The profile name; `None` = the file's `current`.
        profile: Option<String>,
    },
}

/// The `file` provider.
#[derive(Debug, Clone)]
pub struct FileProvider {
    /// What to read.
    pub source: FileSource,
}

const NAME: &str = "file";

fn err(message: impl Into<String>) -> CredentialsError {
    CredentialsError::new(NAME, message)
}

fn read(path: &Path, key: &str) -> Result<String, CredentialsError> {
    std::fs::read_to_string(path).map_err(|e| {
        err(format!(
            "cannot read {} ({e}); check `{key}`",
            path.display()
        ))
    })
}

impl FileProvider {
    fn read_now(&self) -> Result<Fetched, CredentialsError> {
        let fetched = match &self.source {
            FileSource::Json(path) => {
                let text = read(path, "source.credentials.path")?;
                let json: JsonCredentials = serde_json::from_str(&text).map_err(|e| {
                    err(format!(
                        "{} is not a JSON credentials file ({e}); it must hold \
                         {{\"AccessKeyId\", \"AccessKeySecret\"[, \"SecurityToken\", \
                         \"Expiration\"]}} (key `source.credentials.path`)",
                        path.display()
                    ))
                })?;
                json.into_fetched(NAME, &path.display().to_string())?
            }
            FileSource::Separate {
                access_key_id,
                secret_file,
                token_file,
            } => {
                let secret = read_secret_file(secret_file).map_err(|e| {
                    err(format!(
                        "{e} (key `source.credentials.access_key_secret_file`)"
                    ))
                })?;
                let token = token_file
                    .as_deref()
                    .map(read_secret_file)
                    .transpose()
                    .map_err(|e| {
                        err(format!(
                            "{e} (key `source.credentials.security_token_file`)"
                        ))
                    })?;
                Fetched {
                    credentials: Credentials {
                        access_key_id: access_key_id.clone(),
                        access_key_secret: secret,
                        security_token: token,
                    },
                    expiration: None,
                }
            }
            FileSource::AlibabaCloudIni { path, profile } => {
                let text = read(path, "source.credentials.path")?;
                ini_profile(&text, profile).map_err(|m| {
                    err(format!(
                        "{}: {m} (key `source.credentials.path`)",
                        path.display()
                    ))
                })?
            }
            FileSource::AliyunCli { path, profile } => {
                let text = read(path, "source.credentials.path")?;
                cli_profile(&text, profile.as_deref()).map_err(|m| {
                    err(format!(
                        "{}: {m} (key `source.credentials.path`)",
                        path.display()
                    ))
                })?
            }
        };
        if let Some(at) = fetched.expiration
            && at <= SystemTime::now()
        {
            return Err(err(format!(
                "the credentials in {} expired at {}: whatever renews the file has stopped",
                self.describe(),
                super::format_expiration(at)
            )));
        }
        Ok(fetched)
    }

    fn describe(&self) -> String {
        match &self.source {
            FileSource::Json(p)
            | FileSource::AlibabaCloudIni { path: p, .. }
            | FileSource::AliyunCli { path: p, .. } => p.display().to_string(),
            FileSource::Separate { secret_file, .. } => secret_file.display().to_string(),
        }
    }
}

impl Provider for FileProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, CredentialsError>> {
        Box::pin(async move { self.read_now() })
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(POLL_INTERVAL)
    }
}

/// One section of Alibaba Cloud's ini credentials file.
fn ini_profile(text: &str, profile: &str) -> Result<Fetched, String> {
    let mut section = None::<String>;
    let mut found = false;
    let mut values = std::collections::HashMap::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_owned());
            found |= name.trim() == profile;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!(
                "line {} is neither `[section]` nor `key = value`",
                n + 1
            ));
        };
        if section.as_deref() == Some(profile) {
            values.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    if !found {
        return Err(format!("no [{profile}] section"));
    }
    let get = |k: &str| values.get(k).filter(|v| !v.is_empty()).cloned();
    let kind = get("type").unwrap_or_else(|| "access_key".into());
    if !matches!(kind.as_str(), "access_key" | "sts") {
        return Err(format!(
            "[{profile}] has type = {kind}; only access_key and sts are read from this file \
             (configure `[source.credentials] type = \"{kind}\"` instead)"
        ));
    }
    let (Some(id), Some(secret)) = (get("access_key_id"), get("access_key_secret")) else {
        return Err(format!(
            "[{profile}] lacks access_key_id or access_key_secret"
        ));
    };
    Ok(Fetched {
        credentials: Credentials {
            access_key_id: id,
            access_key_secret: SecretString::from(secret),
            security_token: get("security_token").map(SecretString::from),
        },
        expiration: None,
    })
}

#[derive(Deserialize)]
struct CliConfig {
    current: Option<String>,
    #[serde(default)]
    profiles: Vec<CliProfile>,
}

#[derive(Deserialize)]
struct CliProfile {
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sts_token: String,
}

/// One profile of the `aliyun` CLI's `config.json`.
fn cli_profile(text: &str, profile: Option<&str>) -> Result<Fetched, String> {
    let config: CliConfig = serde_json::from_str(text)
        .map_err(|e| format!("is not the aliyun CLI's config.json ({e})"))?;
    let name = profile
        .map(str::to_owned)
        .or(config.current)
        .unwrap_or_else(|| "default".into());
    let p = config
        .profiles
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| format!("has no profile {name:?}"))?;
    let token = match p.mode.as_str() {
        "AK" | "" => None,
        "StsToken" => Some(SecretString::from(p.sts_token)),
        other => {
            return Err(format!(
                "profile {name:?} has mode {other:?}; only AK and StsToken are read from this file"
            ));
        }
    };
    if p.access_key_id.is_empty() || p.access_key_secret.is_empty() {
        return Err(format!(
            "profile {name:?} lacks access_key_id or access_key_secret"
        ));
    }
    Ok(Fetched {
        credentials: Credentials {
            access_key_id: p.access_key_id,
            access_key_secret: SecretString::from(p.access_key_secret),
            security_token: token,
        },
        expiration: None,
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn ini_and_cli_profiles() {
        let ini = "[default]\ntype = access_key\naccess_key_id = id1\naccess_key_secret = s1\n\n[other]\nenable = true\ntype = ecs_ram_role\nrole_name = r\n";
        let f = ini_profile(ini, "default").unwrap();
        assert_eq!(f.credentials.access_key_id, "id1");
        assert_eq!(f.credentials.access_key_secret.expose_secret(), "s1");
        assert!(
            ini_profile(ini, "other")
                .unwrap_err()
                .contains("ecs_ram_role")
        );
        assert!(ini_profile(ini, "nope").unwrap_err().contains("[nope]"));
        let cli = r#"{"current":"sts","profiles":[{"name":"default","mode":"AK","access_key_id":"a","access_key_secret":"b"},{"name":"sts","mode":"StsToken","access_key_id":"c","access_key_secret":"d","sts_token":"t"}]}"#;
        let f = cli_profile(cli, None).unwrap();
        assert_eq!(f.credentials.access_key_id, "c");
        assert!(f.credentials.security_token.is_some());
        assert_eq!(
            cli_profile(cli, Some("default"))
                .unwrap()
                .credentials
                .access_key_id,
            "a"
        );
    }

    #[test]
    fn malformed_and_expired_json_files_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("creds.json");
        let p = FileProvider {
            source: FileSource::Json(path.clone()),
        };
        std::fs::write(&path, "{not json").unwrap();
        let e = p.read_now().unwrap_err().to_string();
        assert!(
            e.contains("source.credentials.path") && e.contains("AccessKeyId"),
            "{e}"
        );
        std::fs::write(
            &path,
            r#"{"AccessKeyId":"STS.x","AccessKeySecret":"s","SecurityToken":"t","Expiration":"2001-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(p.read_now().unwrap_err().to_string().contains("expired"));
        std::fs::write(
            &path,
            r#"{"AccessKeyId":"STS.x","AccessKeySecret":"s","SecurityToken":"t","Expiration":"2999-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(p.read_now().unwrap().credentials.access_key_id, "STS.x");
    }
}
