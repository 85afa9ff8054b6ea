//! The collectors read at scrape time: the sink's and the plugin's own counters
//! ([`ScrapeCollector`]) and each consumer-group worker's SLS retries, reader stops and
//! heartbeat age, and the SLS credentials' refreshes and expiry ([`SlsCollector`]).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use shipper_sinks::SinkMetrics;
use shipper_sls::{ConsumerStats, CredentialStats, ReadErrorKind, RetriedCall, RetryCause};

use crate::generation::PluginSlot;

/// Reads the sink's and the plugin's own counters on every scrape.
#[derive(Debug)]
pub(super) struct ScrapeCollector {
    pub(super) sink: Arc<SinkMetrics>,
    pub(super) sink_name: String,
    pub(super) plugins: Arc<PluginSlot>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabels {
    sink: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkClassLabels {
    sink: String,
    class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginCounterLabels {
    plugin: String,
    name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenerationLabels {
    plugin: String,
    version: String,
    hash: String,
}

impl ScrapeCollector {
    fn counter(
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        labels: &impl EncodeLabelSet,
        value: u64,
    ) -> Result<(), std::fmt::Error> {
        let c = ConstCounter::new(value);
        let mut m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
        c.encode(m.encode_family(labels)?)
    }
}

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = self.sink.snapshot();
        let l = SinkLabels {
            sink: self.sink_name.clone(),
        };
        for (name, help, v) in [
            (
                "shipper_sink_requests",
                "Requests (HEC) or writes (syslog) sent",
                s.requests,
            ),
            (
                "shipper_sink_request_bytes",
                "Uncompressed bytes sent",
                s.request_bytes,
            ),
            (
                "shipper_sink_wire_bytes",
                "Bytes on the wire (after gzip)",
                s.wire_bytes,
            ),
            (
                "shipper_sink_events_accepted",
                "Events the receiver accepted",
                s.events_accepted,
            ),
            (
                "shipper_sink_events_rejected",
                "Events the receiver refused for good",
                s.events_rejected,
            ),
            ("shipper_sink_retries", "Retried requests", s.retries),
            ("shipper_sink_connects", "Connections opened", s.connects),
            (
                "shipper_sink_connect_failures",
                "Connection attempts that failed",
                s.connect_failures,
            ),
            (
                "shipper_sink_disconnects",
                "Connections lost",
                s.disconnects,
            ),
            (
                "shipper_sink_truncated",
                "Messages truncated to the size limit",
                s.truncated,
            ),
        ] {
            Self::counter(&mut encoder, name, help, &l, v)?;
        }
        let errors = ConstCounter::new(0u64);
        let mut fam = encoder.encode_descriptor(
            "shipper_sink_errors",
            "Failed requests by retry class",
            None,
            errors.metric_type(),
        )?;
        for (class, v) in [
            ("transient", s.errors_transient),
            ("too_large", s.errors_too_large),
            ("data", s.errors_data),
            ("config", s.errors_config),
        ] {
            let labels = SinkClassLabels {
                sink: self.sink_name.clone(),
                class: class.to_owned(),
            };
            ConstCounter::new(v).encode(fam.encode_family(&labels)?)?;
        }

        let generation = self.plugins.current();
        let info = ConstGauge::new(1i64);
        let mut gen_enc = encoder.encode_descriptor(
            "shipper_plugin_generation",
            "The plugin generation in use (value 1; labels say which)",
            None,
            info.metric_type(),
        )?;
        let labels = GenerationLabels {
            plugin: generation.name.clone(),
            version: generation.version.clone(),
            hash: generation.plugin.hash().to_owned(),
        };
        info.encode(gen_enc.encode_family(&labels)?)?;
        let open = ConstGauge::new(i64::from(generation.breaker.is_tripped()));
        let mut breaker = encoder.encode_descriptor(
            "shipper_plugin_breaker_open",
            "1 while the plugin's crash-loop breaker is tripped (policy pause or passthrough applies)",
            None,
            open.metric_type(),
        )?;
        open.encode(breaker.encode_family(&labels)?)?;

        let counters = generation.plugin.counters();
        if !counters.is_empty() {
            let c = ConstCounter::new(0u64);
            let mut fam = encoder.encode_descriptor(
                "shipper_plugin_events",
                "Counters the plugin reports through counter-add",
                None,
                c.metric_type(),
            )?;
            for (name, v) in counters {
                let labels = PluginCounterLabels {
                    plugin: generation.name.clone(),
                    name,
                };
                ConstCounter::new(v).encode(fam.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Reads each consumer-group worker's [`ConsumerStats`] on every scrape: retries of SLS
/// calls, reader stops, and how long ago the server last confirmed the membership.
#[derive(Debug)]
pub(super) struct SlsCollector {
    /// `project/logstore` and the stats of its consumer.
    pub(super) consumers: Vec<(String, Arc<ConsumerStats>)>,
    /// The credentials provider's name and its counters.
    pub(super) credentials: Option<(&'static str, Arc<CredentialStats>)>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlsRetryLabels {
    logstore: String,
    api: String,
    cause: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SlsReadErrorLabels {
    logstore: String,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LogstoreLabels {
    logstore: String,
}

impl Collector for SlsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        // Every (api, cause) and kind is written, zeros included, so a rate over the first
        // retry is not lost to a series that did not exist yet.
        let counter = ConstCounter::new(0u64);
        let mut retries = encoder.encode_descriptor(
            "shipper_sls_retries",
            "Failed SLS calls the consumer repeated, by call (pull, heartbeat, checkpoint, \
             get_checkpoint, get_cursor, create_group) and cause (server = 5xx, quota = \
             throttled, transport = no answer, credentials = not sent: expired and not \
             refreshed yet, other)",
            None,
            counter.metric_type(),
        )?;
        for (logstore, stats) in &self.consumers {
            for call in RetriedCall::ALL {
                for cause in RetryCause::ALL {
                    let labels = SlsRetryLabels {
                        logstore: logstore.clone(),
                        api: call.as_str().to_owned(),
                        cause: cause.as_str().to_owned(),
                    };
                    ConstCounter::new(stats.retries(call, cause))
                        .encode(retries.encode_family(&labels)?)?;
                }
            }
        }

        let mut read_errors = encoder.encode_descriptor(
            "shipper_sls_read_errors",
            "Shard reads stopped by an error that is not retried (decode = corrupt body, \
             protocol = malformed answer, api = refused); the shard is re-read from its \
             checkpoint",
            None,
            counter.metric_type(),
        )?;
        for (logstore, stats) in &self.consumers {
            for kind in ReadErrorKind::ALL {
                let labels = SlsReadErrorLabels {
                    logstore: logstore.clone(),
                    kind: kind.as_str().to_owned(),
                };
                ConstCounter::new(stats.read_errors(kind))
                    .encode(read_errors.encode_family(&labels)?)?;
            }
        }

        let gauge = ConstGauge::new(0.0f64);
        let mut age = encoder.encode_descriptor(
            "shipper_sls_heartbeat_age_seconds",
            "Seconds since the last successful consumer-group heartbeat (since joining before \
             the first); the shards are given up when it passes the group timeout plus the \
             heartbeat interval",
            None,
            gauge.metric_type(),
        )?;
        for (logstore, stats) in &self.consumers {
            if let Some(secs) = stats.heartbeat_age().map(|d| d.as_secs_f64()) {
                let labels = LogstoreLabels {
                    logstore: logstore.clone(),
                };
                ConstGauge::new(secs).encode(age.encode_family(&labels)?)?;
            }
        }
        if let Some((provider, stats)) = &self.credentials {
            let labels = ProviderLabels {
                provider: (*provider).to_owned(),
            };
            let mut refreshes = encoder.encode_descriptor(
                "shipper_sls_credential_refreshes",
                "Successful refreshes of the SLS credentials (the first fetch not counted)",
                None,
                counter.metric_type(),
            )?;
            ConstCounter::new(stats.refreshes()).encode(refreshes.encode_family(&labels)?)?;
            let mut failures = encoder.encode_descriptor(
                "shipper_sls_credential_refresh_failures",
                "Failed fetches of the SLS credentials (the current ones stay in use while valid)",
                None,
                counter.metric_type(),
            )?;
            ConstCounter::new(stats.failures()).encode(failures.encode_family(&labels)?)?;
            if let Some(secs) = stats.seconds_until_expiry() {
                let mut expiry = encoder.encode_descriptor(
                    "shipper_sls_credential_expiry_seconds",
                    "Seconds until the SLS credentials in use expire (absent for credentials \
                     that do not expire)",
                    None,
                    gauge.metric_type(),
                )?;
                ConstGauge::new(secs).encode(expiry.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    fn encode(collector: SlsCollector) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn sls_families_have_every_label_set_and_help() {
        let joined = Arc::new(ConsumerStats::new());
        let text = encode(SlsCollector {
            consumers: vec![
                ("p/a".to_owned(), joined),
                ("p/b".to_owned(), Arc::new(ConsumerStats::new())),
            ],
            credentials: Some(("ecs_ram_role", Arc::new(CredentialStats::default()))),
        });
        for line in [
            "# TYPE shipper_sls_retries counter",
            "shipper_sls_retries_total{logstore=\"p/a\",api=\"pull\",cause=\"server\"} 0",
            "shipper_sls_retries_total{logstore=\"p/b\",api=\"create_group\",cause=\"other\"} 0",
            "# TYPE shipper_sls_read_errors counter",
            "shipper_sls_read_errors_total{logstore=\"p/a\",kind=\"decode\"} 0",
            "# TYPE shipper_sls_heartbeat_age_seconds gauge",
            "shipper_sls_credential_refreshes_total{provider=\"ecs_ram_role\"} 0",
            "shipper_sls_credential_refresh_failures_total{provider=\"ecs_ram_role\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        let retries = text
            .lines()
            .filter(|l| l.starts_with("shipper_sls_retries_total{"))
            .count();
        assert_eq!(retries, 2 * RetriedCall::ALL.len() * RetryCause::ALL.len());
        // No heartbeat yet (not joined): no age rather than a made-up one.
        assert!(
            !text.contains("shipper_sls_heartbeat_age_seconds{"),
            "{text}"
        );
    }
}
