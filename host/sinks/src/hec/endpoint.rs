//! One HEC endpoint as the sink uses it: its URLs, its own indexer-acknowledgement channel
//! (ack ids belong to the indexer that took the data, docs/rendering.md §3.11), the largest
//! request it takes (lowered after a 413) and its counters. Which endpoint a request goes
//! to is `balance.rs`'s business; this file only holds what belongs to one endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Url;

use super::ack::AckTracker;
use super::config::HecEndpoint;
use crate::error::SinkError;
use crate::metrics::EndpointCounters;

/// Smallest request size a 413 can lower an endpoint's limit to: below it every request
/// would hold a single event anyway.
pub(crate) const MIN_REQUEST_BYTES: usize = 1024;

/// One HEC endpoint.
#[derive(Debug)]
pub(crate) struct Endpoint {
    /// The base URL as configured (without a trailing slash): the `endpoint` label.
    pub label: String,
    pub weight: u32,
    pub event_url: Url,
    pub raw_url: Url,
    pub ack_url: Url,
    pub health_url: Url,
    /// The channel GUID sent with every request to this endpoint.
    pub channel: String,
    /// Pending ack ids of this endpoint's channel (with `ack = true`).
    pub acks: Option<AckTracker>,
    /// Largest uncompressed body sent in one request.
    max_request_bytes: AtomicUsize,
    pub counters: EndpointCounters,
    /// How requests reach this endpoint.
    pub transport: Transport,
}

/// The HTTP client of one endpoint and the route it was built for (direct or through a
/// proxy: a loopback or `no_proxy` host never goes through the proxy).
#[derive(Debug)]
pub(crate) struct Transport {
    pub client: reqwest::Client,
    pub route: shipper_net::proxy::Route,
}

impl Endpoint {
    /// The endpoint at `e.base`, with a fresh channel; `/raw` carries `raw_query`.
    pub(crate) fn new(
        sink: &str,
        e: &HecEndpoint,
        transport: Transport,
        raw_query: &[(&'static str, String)],
        max_request_bytes: usize,
        ack: bool,
    ) -> Result<Self, SinkError> {
        let channel = uuid::Uuid::new_v4().to_string();
        let base = e.base.as_str().trim_end_matches('/');
        let url = |path: &str| -> Result<Url, SinkError> {
            let s = format!("{base}/services/collector/{path}");
            Url::parse(&s)
                .map_err(|err| SinkError::config(sink, format!("bad endpoint URL {s}: {err}")))
        };
        let event_url = url("event")?;
        let mut raw_url = url("raw")?;
        raw_url
            .query_pairs_mut()
            .append_pair("channel", &channel)
            .extend_pairs(raw_query.iter().map(|(k, v)| (*k, v)));
        let mut ack_url = url("ack")?;
        ack_url.query_pairs_mut().append_pair("channel", &channel);
        Ok(Self {
            label: base.to_owned(),
            weight: e.weight,
            event_url,
            raw_url,
            ack_url,
            health_url: url("health")?,
            channel,
            acks: ack.then(AckTracker::default),
            max_request_bytes: AtomicUsize::new(max_request_bytes),
            counters: EndpointCounters::default(),
            transport,
        })
    }

    /// Largest uncompressed body to send in one request now.
    pub(crate) fn max_request_bytes(&self) -> usize {
        self.max_request_bytes.load(Ordering::Relaxed)
    }

    /// The endpoint refused a body of `refused` bytes (413): from now on it gets at most
    /// half of that. Returns the new limit when it went down.
    pub(crate) fn lower_max_request_bytes(&self, refused: usize) -> Option<usize> {
        let target = (refused / 2).max(MIN_REQUEST_BYTES);
        let old = self.max_request_bytes.fetch_min(target, Ordering::Relaxed);
        (target < old).then_some(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(base: &str) -> Endpoint {
        let e = HecEndpoint {
            base: Url::parse(base).unwrap(),
            weight: 2,
        };
        let transport = Transport {
            client: reqwest::Client::builder()
                .tls_backend_preconfigured(super::super::plain_http_tls("s").unwrap())
                .build()
                .unwrap(),
            route: shipper_net::proxy::Route::Direct("test"),
        };
        Endpoint::new(
            "s",
            &e,
            transport,
            &[("index", "main".into())],
            1_000_000,
            true,
        )
        .unwrap()
    }

    #[test]
    fn urls_and_channel() {
        let e = endpoint("https://idx1:8088/splunk");
        assert_eq!(e.label, "https://idx1:8088/splunk");
        assert_eq!(
            e.event_url.as_str(),
            "https://idx1:8088/splunk/services/collector/event"
        );
        assert_eq!(
            e.raw_url.as_str(),
            format!(
                "https://idx1:8088/splunk/services/collector/raw?channel={}&index=main",
                e.channel
            )
        );
        assert!(
            e.ack_url
                .as_str()
                .ends_with(&format!("/ack?channel={}", e.channel))
        );
        assert!(e.acks.is_some());
        assert_ne!(
            e.channel,
            endpoint("https://idx2:8088").channel,
            "a channel each"
        );
    }

    #[test]
    fn a_413_halves_the_limit_down_to_a_floor() {
        let e = endpoint("http://h:8088");
        assert_eq!(e.lower_max_request_bytes(800_000), Some(400_000));
        assert_eq!(
            e.lower_max_request_bytes(900_000),
            None,
            "a larger refusal does not raise it"
        );
        assert_eq!(e.max_request_bytes(), 400_000);
        assert_eq!(e.lower_max_request_bytes(100), Some(MIN_REQUEST_BYTES));
        assert_eq!(e.lower_max_request_bytes(100), None);
    }
}
