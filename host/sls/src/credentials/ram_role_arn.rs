//! `ram_role_arn`: STS AssumeRole from base credentials (a central SOC account reading other
//! accounts' logstores through a role they trust). The base credentials come from their own
//! provider (`static` from the environment, or any other) and are refreshed with it.

use std::sync::Arc;
use std::time::Duration;

use super::sts::{self, RoleRequest};
use super::{BoxFuture, CredentialsError, Fetched, Provider};

/// Default session lifetime asked for: one hour, the STS default (900 s to the role's
/// maximum is allowed).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(3600);

/// The `ram_role_arn` provider.
#[derive(Debug, Clone)]
pub struct RamRoleArnProvider {
    /// Signs the AssumeRole call.
    pub base: Arc<dyn Provider>,
    /// The role and where to ask for it.
    pub role: RoleRequest,
    /// The external ID the role's trust policy may require.
    pub external_id: Option<String>,
}

impl Provider for RamRoleArnProvider {
    fn name(&self) -> &'static str {
        "ram_role_arn"
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, CredentialsError>> {
        Box::pin(async move {
            let base = self.base.fetch().await.map_err(|e| {
                CredentialsError::new(
                    self.name(),
                    format!("cannot get the base credentials for AssumeRole: {e}"),
                )
            })?;
            let mut params = self.role.params("AssumeRole");
            if let Some(x) = &self.external_id {
                params.push(("ExternalId".into(), x.clone()));
            }
            sts::sign(&mut params, &base.credentials);
            sts::call(self.name(), &self.role.http, &params).await
        })
    }
}
