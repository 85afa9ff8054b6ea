//! `ecs_ram_role`: the RAM role attached to an ECS instance, from the instance metadata
//! service (default `http://100.100.100.200`, `source.credentials.metadata_endpoint`).
//!
//! Each fetch first asks for a metadata session token (`PUT /latest/api/token` with
//! `X-aliyun-ecs-metadata-token-ttl-seconds`, the hardened mode Alibaba Cloud recommends),
//! then sends it as `X-aliyun-ecs-metadata-token` with: `GET
//! /latest/meta-data/ram/security-credentials/` (the role name, when none is configured or
//! in `ALIBABA_CLOUD_ECS_METADATA`) and `GET …/security-credentials/<role>` (the JSON
//! credentials with `Code`, `Expiration`). The token is fetched per refresh: refreshes are
//! minutes apart, so caching it would save nothing worth its expiry handling.

use super::http::{ProviderHttp, excerpt};
use super::{BoxFuture, CredentialsError, Fetched, JsonCredentials, Provider};

/// Default metadata service address.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://100.100.100.200";
/// Lifetime asked for the metadata session token: the longest the service allows (6 h);
/// the token is used for one refresh only.
const TOKEN_TTL_SECS: u32 = 21_600;
const CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";

/// The `ecs_ram_role` provider.
#[derive(Debug, Clone)]
pub struct EcsRamRoleProvider {
    http: ProviderHttp,
    role_name: Option<String>,
}

impl EcsRamRoleProvider {
    /// Asks the metadata service behind `http` for `role_name` (discovered when `None`).
    pub fn new(http: ProviderHttp, role_name: Option<String>) -> Self {
        Self { http, role_name }
    }

    async fn get(&self, path: &str, token: &str) -> Result<String, CredentialsError> {
        let url = self.http.url(path);
        let req = self
            .http
            .client
            .get(&url)
            .header("X-aliyun-ecs-metadata-token", token);
        let (status, body) = self.http.send(self.name(), req).await?;
        if status != 200 {
            let hint = if status == 404 {
                "; is a RAM role attached to this instance, and is `source.credentials.role_name` right?"
            } else {
                ""
            };
            return Err(CredentialsError::new(
                self.name(),
                format!("{url} answered HTTP {status} ({}){hint}", excerpt(&body)),
            ));
        }
        Ok(body)
    }
}

impl Provider for EcsRamRoleProvider {
    fn name(&self) -> &'static str {
        "ecs_ram_role"
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, CredentialsError>> {
        Box::pin(async move {
            let name = self.name();
            let token_url = self.http.url("/latest/api/token");
            let req = self
                .http
                .client
                .put(&token_url)
                .header("X-aliyun-ecs-metadata-token-ttl-seconds", TOKEN_TTL_SECS);
            let (status, token) = self.http.send(name, req).await?;
            if status != 200 || token.trim().is_empty() {
                return Err(CredentialsError::new(
                    name,
                    format!(
                        "the metadata service refused a session token ({token_url}: HTTP {status} {}); \
                         check `{}`",
                        excerpt(&token),
                        self.http.key
                    ),
                ));
            }
            let token = token.trim();
            let role = match &self.role_name {
                Some(r) => r.clone(),
                None => {
                    let listed = self.get(CREDENTIALS_PATH, token).await?;
                    let role = listed.lines().next().unwrap_or("").trim().to_owned();
                    if role.is_empty() {
                        return Err(CredentialsError::new(
                            name,
                            "no RAM role is attached to this instance: attach one, or set \
                             `source.credentials.role_name`",
                        ));
                    }
                    role
                }
            };
            let body = self
                .get(&format!("{CREDENTIALS_PATH}{role}"), token)
                .await?;
            let json: JsonCredentials = serde_json::from_str(&body).map_err(|e| {
                CredentialsError::new(
                    name,
                    format!("the metadata service's answer for role {role:?} is not JSON credentials ({e})"),
                )
            })?;
            json.into_fetched(name, &format!("the metadata service (role {role:?})"))
        })
    }
}
