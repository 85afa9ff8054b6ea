//! `oidc_role_arn`: STS AssumeRoleWithOIDC with the OIDC token file a Kubernetes cluster
//! mounts into the pod (ACK RRSA sets `ALIBABA_CLOUD_ROLE_ARN`,
//! `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and `ALIBABA_CLOUD_OIDC_TOKEN_FILE`). The call is not
//! signed: the OIDC token is the proof. The token file is re-read on every fetch because the
//! kubelet rotates it.

use std::path::PathBuf;

use super::sts::{self, RoleRequest};
use super::{BoxFuture, CredentialsError, Fetched, Provider};

/// The `oidc_role_arn` provider.
#[derive(Debug, Clone)]
pub struct OidcRoleArnProvider {
    /// The role and where to ask for it.
    pub role: RoleRequest,
    /// `acs:ram::<account>:oidc-provider/<name>`.
    pub oidc_provider_arn: String,
    /// The file holding the OIDC token.
    pub oidc_token_file: PathBuf,
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
            let mut params = self.role.params("AssumeRoleWithOIDC");
            params.push(("OIDCProviderArn".into(), self.oidc_provider_arn.clone()));
            params.push(("OIDCToken".into(), token.to_owned()));
            sts::call(self.name(), &self.role.http, &params).await
        })
    }
}
