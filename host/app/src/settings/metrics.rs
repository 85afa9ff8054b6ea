//! `[metrics]`: the Prometheus `/metrics` and `/health` endpoint.

use serde::Deserialize;

use super::values::Problems;

/// `[metrics]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address for `/metrics` and `/health`, e.g. `127.0.0.1:9598`. `--metrics-listen`
    /// overrides it. Off when absent.
    pub listen: Option<String>,
}

/// The listen address (flag first), checked to be `host:port` so a typo is reported with
/// the other config problems instead of when the listener is bound.
pub fn resolve(
    config: MetricsConfig,
    flag: Option<String>,
    problems: &mut Problems,
) -> Option<String> {
    let listen = flag.or(config.listen)?;
    let port_ok = listen
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        problems.push(
            "metrics.listen",
            format!("{listen:?} is not HOST:PORT, e.g. 127.0.0.1:9598"),
        );
        return None;
    }
    Some(listen)
}
