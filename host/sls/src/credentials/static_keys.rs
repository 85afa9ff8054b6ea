//! `static`: an AccessKey pair (with an optional STS token) given in the configuration or the
//! environment. The secret may live in a file, which is read on every fetch, so a rotated
//! secret is picked up by the refresh after a 401 without a restart. No expiry: nothing is
//! refreshed in the background.

use std::path::PathBuf;

use secrecy::SecretString;

use super::{BoxFuture, CredentialsError, Fetched, Provider};
use crate::sign::Credentials;

/// Where the secret comes from.
#[derive(Debug, Clone)]
pub enum Secret {
    /// The value itself.
    Value(SecretString),
    /// A file holding it (trailing newline ignored), and the key that names the file.
    File {
        /// The file.
        path: PathBuf,
        /// Its config key, for errors.
        key: String,
    },
}

/// The `static` provider.
#[derive(Debug, Clone)]
pub struct StaticProvider {
    /// AccessKey ID.
    pub access_key_id: String,
    /// AccessKey secret.
    pub secret: Secret,
    /// STS token, if the pair is temporary.
    pub security_token: Option<SecretString>,
}

impl StaticProvider {
    /// Reads the credentials (the secret file, if any).
    pub fn read(&self) -> Result<Credentials, CredentialsError> {
        let secret = match &self.secret {
            Secret::Value(v) => v.clone(),
            Secret::File { path, key } => read_secret_file(path)
                .map_err(|e| CredentialsError::new("static", format!("{key}: {e}")))?,
        };
        Ok(Credentials {
            access_key_id: self.access_key_id.clone(),
            access_key_secret: secret,
            security_token: self.security_token.clone(),
        })
    }
}

/// Reads a one-value secret file, without its trailing newline.
pub(crate) fn read_secret_file(path: &std::path::Path) -> Result<SecretString, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.trim().is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(SecretString::from(value.to_owned()))
}

impl Provider for StaticProvider {
    fn name(&self) -> &'static str {
        "static"
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, CredentialsError>> {
        Box::pin(async move {
            Ok(Fetched {
                credentials: self.read()?,
                expiration: None,
            })
        })
    }
}
