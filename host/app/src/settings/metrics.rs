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

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(config: Option<&str>, flag: Option<&str>) -> (Option<String>, Problems) {
        let mut problems = Problems::default();
        let listen = resolve(
            MetricsConfig {
                listen: config.map(str::to_owned),
            },
            flag.map(str::to_owned),
            &mut problems,
        );
        (listen, problems)
    }

    /// `/metrics` and `/health` listen nowhere unless configured: no default address,
    /// least of all a wildcard one (docs/threat-model.md).
    #[test]
    fn nothing_listens_unless_configured() {
        let (listen, problems) = resolved(None, None);
        assert_eq!(listen, None);
        assert!(problems.is_empty());
        let (listen, _) = resolved(Some("127.0.0.1:9598"), None);
        assert_eq!(listen.as_deref(), Some("127.0.0.1:9598"));
        let (listen, _) = resolved(Some("127.0.0.1:9598"), Some("[::1]:1"));
        assert_eq!(listen.as_deref(), Some("[::1]:1"), "the flag wins");
    }

    /// A port alone (`:9598`) would bind every interface: it is refused, so a wildcard is
    /// only ever bound when written out (`0.0.0.0:9598`).
    #[test]
    fn a_port_without_a_host_is_refused() {
        for bad in [":9598", "9598", "localhost"] {
            let (listen, problems) = resolved(Some(bad), None);
            assert_eq!(listen, None, "{bad}");
            assert!(!problems.is_empty(), "{bad}");
        }
    }

    /// The packaged config (deploy/shipper.toml) binds the loopback interface.
    #[test]
    fn the_packaged_config_listens_on_loopback() {
        let text = include_str!("../../../../deploy/shipper.toml");
        let table: toml::Table = toml::from_str(text).expect("the packaged config parses");
        let listen = table["metrics"]["listen"]
            .as_str()
            .expect("metrics.listen is set");
        let addr: std::net::SocketAddr = listen.parse().expect("an IP:port");
        assert!(addr.ip().is_loopback(), "{listen}");
    }
}
