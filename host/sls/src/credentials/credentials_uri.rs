//! `credentials_uri`: GET a URL that answers the JSON credentials
//! (`{"Code": "Success", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}`),
//! as Alibaba Cloud's credential tools do with `ALIBABA_CLOUD_CREDENTIALS_URI` (a sidecar or
//! a local agent that holds the real credentials).

use super::http::{ProviderHttp, excerpt};
use super::{BoxFuture, CredentialsError, Fetched, JsonCredentials, Provider};

/// The `credentials_uri` provider.
#[derive(Debug, Clone)]
pub struct CredentialsUriProvider {
    http: ProviderHttp,
}

impl CredentialsUriProvider {
    /// Fetches from `http` (built for the URI, key `source.credentials.uri`).
    pub fn new(http: ProviderHttp) -> Self {
        Self { http }
    }
}

impl Provider for CredentialsUriProvider {
    fn name(&self) -> &'static str {
        "credentials_uri"
    }

    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, CredentialsError>> {
        Box::pin(async move {
            let name = self.name();
            let url = self.http.base.clone();
            let (status, body) = self.http.send(name, self.http.client.get(&url)).await?;
            if status != 200 {
                return Err(CredentialsError::new(
                    name,
                    format!(
                        "{url} answered HTTP {status} ({}); check `{}`",
                        excerpt(&body),
                        self.http.key
                    ),
                ));
            }
            let json: JsonCredentials = serde_json::from_str(&body).map_err(|e| {
                CredentialsError::new(
                    name,
                    format!(
                        "{url} did not answer the JSON credentials ({e}): {}",
                        excerpt(&body)
                    ),
                )
            })?;
            json.into_fetched(name, &url)
        })
    }
}
