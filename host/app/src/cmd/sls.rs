//! Connecting to SLS, shared by `run`, `validate`, `replay` and `reconcile`: the credentials
//! provider `[source]` chose, and a client per project with its network route.

use anyhow::Context as _;
use shipper_sls::RefreshingCredentials;
use shipper_sls::client::{Client, ClientConfig};

use crate::exit::{Failure, FailureExt as _};
use crate::settings::{LogstoreTarget, SourceSettings};

/// An SLS client for `target`'s project: the endpoint, its network route (proxy or direct,
/// logged), the signature version and the CA file of `[source]`.
pub(crate) fn sls_client(
    s: &SourceSettings,
    target: &LogstoreTarget,
    credentials: &RefreshingCredentials,
) -> Result<Client, Failure> {
    let route = shipper_sls::client::route_for(&s.endpoint, &target.project, &s.proxy, &|k| {
        std::env::var(k).ok()
    })
    .context("invalid proxy settings for SLS (config keys `source.proxy`, `source.no_proxy`)")
    .config_error()?;
    tracing::info!(project = %target.project, route = %route, "SLS network route");
    let mut client_config = ClientConfig::new(
        s.endpoint.clone(),
        target.project.clone(),
        credentials.clone(),
    );
    client_config.signature = s.signature.clone();
    client_config.route = route;
    client_config.ca_file.clone_from(&s.ca_file);
    Client::new(client_config)
        .with_context(|| {
            format!(
                "cannot create an SLS client for project {} (config key `source.endpoint`)",
                target.project
            )
        })
        .config_error()
}

/// Builds the credentials provider `[source]` chose and fetches the first credentials: a
/// file that cannot be read is a configuration error (exit 2), an endpoint that does not
/// answer a dependency (exit 3).
pub(crate) async fn start_credentials(
    s: &SourceSettings,
) -> Result<RefreshingCredentials, Failure> {
    let env = |k: &str| std::env::var(k).ok();
    let provider = s
        .credentials
        .spec
        .build(&s.proxy, &env)
        .map_err(anyhow::Error::new)
        .config_error()?;
    tracing::info!(
        provider = provider.name(),
        chosen_by = %s.credentials.origin,
        "SLS credentials provider"
    );
    let local = s.credentials.is_local();
    let started = RefreshingCredentials::start(provider)
        .await
        .map_err(|e| anyhow::Error::new(e).context("cannot get SLS credentials"));
    // A file that cannot be read or parsed is the configuration's fault (exit 2); a
    // metadata service, STS or URI that does not answer is a dependency (exit 3).
    if local {
        started.config_error()
    } else {
        started.unavailable()
    }
}
