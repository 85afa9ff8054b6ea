//! `oidc_role_arn`: STS AssumeRoleWithOIDC with the OIDC token file a Kubernetes cluster
//! mounts into the pod (ACK RRSA sets `ALIBABA_CLOUD_ROLE_ARN`,
//! `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and `ALIBABA_CLOUD_OIDC_TOKEN_FILE`). The call is not
//! signed: the OIDC token is the proof. The token file is re-read on every fetch because the
//! kubelet rotates it.

use std::path::PathBuf;
use std::time::Duration;

use super::http::ProviderHttp;
use super::{BoxFuture, CredentialsError, Fetched, Provider, sts};

/// The `oidc_role_arn` provider.
#[derive(Debug, Clone)]
pub struct OidcRoleArnProvider {
    /// The STS endpoint.
    pub http: ProviderHttp,
    /// The role to assume.
    pub role_arn: String,
    /// `acs:ram::<account>:oidc-provider/<name>`.
    pub oidc_provider_arn: String,
    /// The file holding the OIDC token.
    pub oidc_token_file: PathBuf,
    /// The session name.
    pub session_name: String,
    /// Requested lifetime.
    pub duration: Duration,
    /// An inline policy narrowing the role, if any.
    pub policy: Option<String>,
}

impl Provider for OidcRoleArnProvider {
    fn name(&self) -> &'static str {
        "oidc_role_arn"
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, CredentialsError>> {
        Box::pin(async move {
            let token = std::fs::read_to_string(&self.oidc_token_file).map_err(|e| {
                CredentialsError::new(
                    self.name(),
                    format!(
                        "cannot read the OIDC token file {} ({e}); check \
                         `source.credentials.oidc_token_file` (ALIBABA_CLOUD_OIDC_TOKEN_FILE)",
                        self.oidc_token_file.display()
                    ),
                )
            })?;
            let token = token.trim();
            if token.is_empty() {
                return Err(CredentialsError::new(
                    self.name(),
                    format!(
                        "the OIDC token file {} is empty",
                        self.oidc_token_file.display()
                    ),
                ));
            }
            let mut params = sts::base_params("AssumeRoleWithOIDC");
            params.push(("RoleArn".into(), self.role_arn.clone()));
            params.push(("OIDCProviderArn".into(), self.oidc_provider_arn.clone()));
            params.push(("OIDCToken".into(), token.to_owned()));
            params.push(("RoleSessionName".into(), self.session_name.clone()));
            params.push((
                "DurationSeconds".into(),
                self.duration.as_secs().to_string(),
            ));
            if let Some(p) = &self.policy {
                params.push(("Policy".into(), p.clone()));
            }
            sts::call(self.name(), &self.http, &params).await
        })
    }
}
