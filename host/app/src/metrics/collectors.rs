//! The collectors read at scrape time: the sinks' and the plugins' own counters and each
//! sink's endpoints ([`ScrapeCollector`]), and each consumer-group worker's SLS retries,
//! reader stops and heartbeat age, and the SLS credentials' refreshes and expiry
//! ([`SlsCollector`]), and the memory budget's use ([`MemoryCollector`]).

use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use shipper_sinks::EndpointState;
use shipper_sls::{
    ConsumerStats, CredentialStats, MemoryBudget, ReadErrorKind, RetriedCall, RetryCause,
};

use super::{SinkLabels, Views};

/// Reads the sinks' and the plugins' own counters, and the sinks' endpoints, on every
/// scrape.
#[derive(Debug)]
pub(super) struct ScrapeCollector {
    /// The sinks and plugins of the running configuration (a reload replaces them).
    pub(super) views: Arc<ArcSwap<Views>>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    sink: String,
    endpoint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointStateLabels {
    sink: String,
    endpoint: String,
    state: String,
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

impl Collector for ScrapeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let views = self.views.load_full();
        let snapshots: Vec<_> = views
            .sinks
            .iter()
            .map(|v| {
                (
                    SinkLabels {
                        sink: v.name.clone(),
                    },
                    v.sink.metrics().snapshot(),
                )
            })
            .collect();
        type Read = fn(&shipper_sinks::MetricsSnapshot) -> u64;
        let counters: [(&str, &str, Read); 10] = [
            (
                "shipper_sink_requests",
                "Requests (HEC) or writes (syslog) sent",
                |s| s.requests,
            ),
            (
                "shipper_sink_request_bytes",
                "Uncompressed bytes sent",
                |s| s.request_bytes,
            ),
            (
                "shipper_sink_wire_bytes",
                "Bytes on the wire (after gzip)",
                |s| s.wire_bytes,
            ),
            (
                "shipper_sink_events_accepted",
                "Events the receiver accepted",
                |s| s.events_accepted,
            ),
            (
                "shipper_sink_events_rejected",
                "Events the receiver refused for good",
                |s| s.events_rejected,
            ),
            ("shipper_sink_retries", "Retried requests", |s| s.retries),
            ("shipper_sink_connects", "Connections opened", |s| {
                s.connects
            }),
            (
                "shipper_sink_connect_failures",
                "Connection attempts that failed",
                |s| s.connect_failures,
            ),
            ("shipper_sink_disconnects", "Connections lost", |s| {
                s.disconnects
            }),
            (
                "shipper_sink_truncated",
                "Messages truncated to the size limit",
                |s| s.truncated,
            ),
        ];
        let counter = ConstCounter::new(0u64);
        for (name, help, read) in counters {
            let mut fam = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for (labels, snapshot) in &snapshots {
                ConstCounter::new(read(snapshot)).encode(fam.encode_family(labels)?)?;
            }
        }
        let mut fam = encoder.encode_descriptor(
            "shipper_sink_errors",
            "Failed requests by retry class",
            None,
            counter.metric_type(),
        )?;
        for (labels, s) in &snapshots {
            for (class, v) in [
                ("transient", s.errors_transient),
                ("too_large", s.errors_too_large),
                ("data", s.errors_data),
                ("config", s.errors_config),
            ] {
                let labels = SinkClassLabels {
                    sink: labels.sink.clone(),
                    class: class.to_owned(),
                };
                ConstCounter::new(v).encode(fam.encode_family(&labels)?)?;
            }
        }
        self.encode_endpoints(&mut encoder)?;

        let info = ConstGauge::new(1i64);
        let mut gen_enc = encoder.encode_descriptor(
            "shipper_plugin_generation",
            "The plugin generation in use (value 1; labels say which), one per plugin",
            None,
            info.metric_type(),
        )?;
        let generations: Vec<_> = views.plugins.iter().map(|p| p.current()).collect();
        let labels: Vec<GenerationLabels> = generations
            .iter()
            .map(|g| GenerationLabels {
                plugin: g.name.clone(),
                version: g.version.clone(),
                hash: g.plugin.hash().to_owned(),
            })
            .collect();
        for l in &labels {
            info.encode(gen_enc.encode_family(l)?)?;
        }
        let mut breaker = encoder.encode_descriptor(
            "shipper_plugin_breaker_open",
            "1 while the plugin's crash-loop breaker is tripped (policy pause or passthrough applies)",
            None,
            info.metric_type(),
        )?;
        for (g, l) in generations.iter().zip(&labels) {
            ConstGauge::new(i64::from(g.breaker.is_tripped())).encode(breaker.encode_family(l)?)?;
        }

        let counters: Vec<(String, Vec<(String, u64)>)> = generations
            .iter()
            .map(|g| (g.name.clone(), g.plugin.counters()))
            .filter(|(_, c)| !c.is_empty())
            .collect();
        if !counters.is_empty() {
            let mut fam = encoder.encode_descriptor(
                "shipper_plugin_events",
                "Counters the plugin reports through counter-add",
                None,
                counter.metric_type(),
            )?;
            for (plugin, list) in counters {
                for (name, v) in list {
                    let labels = PluginCounterLabels {
                        plugin: plugin.clone(),
                        name,
                    };
                    ConstCounter::new(v).encode(fam.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

impl ScrapeCollector {
    /// The per-endpoint series of every sink that reports endpoints.
    fn encode_endpoints(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let endpoints: Vec<(EndpointLabels, shipper_sinks::EndpointStatus)> = self
            .views
            .load()
            .sinks
            .iter()
            .flat_map(|v| {
                v.sink.endpoints().into_iter().map(|e| {
                    let labels = EndpointLabels {
                        sink: v.name.clone(),
                        endpoint: e.endpoint.clone(),
                    };
                    (labels, e)
                })
            })
            .collect();
        if endpoints.is_empty() {
            return Ok(());
        }
        let gauge = ConstGauge::new(0i64);
        let mut state = encoder.encode_descriptor(
            "shipper_sink_endpoint_state",
            "1 for the endpoint's current state (healthy, backing_off, down, misconfigured, standby), 0 for the others",
            None,
            gauge.metric_type(),
        )?;
        for (l, e) in &endpoints {
            for s in EndpointState::ALL {
                let labels = EndpointStateLabels {
                    sink: l.sink.clone(),
                    endpoint: l.endpoint.clone(),
                    state: s.as_str().to_owned(),
                };
                ConstGauge::new(i64::from(s == e.state)).encode(state.encode_family(&labels)?)?;
            }
        }
        let mut in_flight = encoder.encode_descriptor(
            "shipper_sink_endpoint_in_flight",
            "Requests (HEC) or writes (syslog) on the wire to the endpoint now",
            None,
            gauge.metric_type(),
        )?;
        for (l, e) in &endpoints {
            ConstGauge::new(e.in_flight as i64).encode(in_flight.encode_family(l)?)?;
        }
        let mut max = encoder.encode_descriptor(
            "shipper_sink_endpoint_max_request_bytes",
            "Largest uncompressed request sent to the endpoint now (lowered after a 413)",
            None,
            gauge.metric_type(),
        )?;
        for (l, e) in &endpoints {
            if let Some(m) = e.max_request_bytes {
                ConstGauge::new(m as i64).encode(max.encode_family(l)?)?;
            }
        }
        let mut limit = encoder.encode_descriptor(
            "shipper_sink_endpoint_concurrency_limit",
            "Requests the HEC endpoint may have in flight now: `concurrency`, or with \
             `concurrency = \"adaptive\"` the limit found from its answers",
            None,
            gauge.metric_type(),
        )?;
        for (l, e) in &endpoints {
            if let Some(m) = e.concurrency_limit {
                ConstGauge::new(m as i64).encode(limit.encode_family(l)?)?;
            }
        }
        let counter = ConstCounter::new(0u64);
        for (name, help, read) in [
            (
                "shipper_sink_endpoint_requests",
                "Requests (retries included) or writes sent to the endpoint",
                (|e| e.requests) as fn(&shipper_sinks::EndpointStatus) -> u64,
            ),
            (
                "shipper_sink_endpoint_failures",
                "Failed requests, or failed and lost connections, of the endpoint",
                |e| e.failures,
            ),
            (
                "shipper_sink_endpoint_events",
                "Events the endpoint accepted (HEC) or that were written to it (syslog)",
                |e| e.events,
            ),
        ] {
            let mut fam = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for (l, e) in &endpoints {
                ConstCounter::new(read(e)).encode(fam.encode_family(l)?)?;
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
    /// Set once the provider has given its first credentials.
    pub(super) credentials: Arc<OnceLock<(&'static str, Arc<CredentialStats>)>>,
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

        let seconds = ConstCounter::new(0.0f64);
        let mut quota_wait = encoder.encode_descriptor(
            "shipper_sls_pull_quota_wait_seconds",
            "Seconds shard readers waited after SLS refused a pull for the shard's read quota \
             (403 ReadQuotaExceed), all shards together; about one second per second and \
             shard means the shards read at their quota",
            None,
            seconds.metric_type(),
        )?;
        for (logstore, stats) in &self.consumers {
            let labels = LogstoreLabels {
                logstore: logstore.clone(),
            };
            ConstCounter::new(stats.quota_wait().as_secs_f64())
                .encode(quota_wait.encode_family(&labels)?)?;
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
        if let Some((provider, stats)) = self.credentials.get() {
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

/// Reads the memory budget (`[source] max_buffer_mib`) on every scrape: its size, what the
/// shards hold against it now and the most they have held (docs/architecture.md §6
/// "Bounded memory").
#[derive(Debug)]
pub(super) struct MemoryCollector {
    /// Set once `shipper run` has made the budget.
    pub(super) budget: Arc<OnceLock<Arc<MemoryBudget>>>,
}

impl Collector for MemoryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(budget) = self.budget.get() else {
            return Ok(());
        };
        let gauges = [
            (
                "shipper_memory_budget_bytes",
                "The memory budget for pulled and in-flight data ([source] max_buffer_mib)",
                budget.total(),
            ),
            (
                "shipper_memory_used_bytes",
                "Bytes of pulled and in-flight data held against the memory budget now, all \
                 shards together",
                budget.used(),
            ),
            (
                "shipper_memory_used_peak_bytes",
                "The most bytes held against the memory budget at once since the start",
                budget.peak(),
            ),
        ];
        for (name, help, bytes) in gauges {
            let gauge = ConstGauge::new(bytes as i64);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;

    use super::*;

    fn encode(collector: impl Collector + 'static) -> String {
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
            credentials: Arc::new(OnceLock::from((
                "ecs_ram_role",
                Arc::new(CredentialStats::default()),
            ))),
        });
        for line in [
            "# TYPE shipper_sls_retries counter",
            "shipper_sls_retries_total{logstore=\"p/a\",api=\"pull\",cause=\"server\"} 0",
            "shipper_sls_retries_total{logstore=\"p/b\",api=\"create_group\",cause=\"other\"} 0",
            "# TYPE shipper_sls_read_errors counter",
            "shipper_sls_read_errors_total{logstore=\"p/a\",kind=\"decode\"} 0",
            "# TYPE shipper_sls_pull_quota_wait_seconds counter",
            "shipper_sls_pull_quota_wait_seconds_total{logstore=\"p/b\"} 0.0",
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

    #[test]
    fn the_memory_gauges_show_the_budget_its_use_and_peak() {
        let budget = MemoryBudget::new(1000);
        let share = budget.share();
        let held = share.charge(300);
        drop(share.charge(200));
        let text = encode(MemoryCollector {
            budget: Arc::new(OnceLock::from(budget)),
        });
        for line in [
            "# TYPE shipper_memory_budget_bytes gauge",
            "shipper_memory_budget_bytes 1000",
            "shipper_memory_used_bytes 300",
            "shipper_memory_used_peak_bytes 500",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
        }
        drop(held);
        // Before the budget exists (other commands): nothing, rather than zeros.
        let none = encode(MemoryCollector {
            budget: Arc::new(OnceLock::new()),
        });
        assert!(!none.contains("shipper_memory"), "{none}");
    }
}
