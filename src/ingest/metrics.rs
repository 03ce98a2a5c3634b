//! Self-metrics of the webhook listener.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a request outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Endpoint name (`default` for the main path).
    pub endpoint: String,
    /// Topic (bounded: unknown topics are `other`; `unknown` before parsing).
    pub topic: String,
    /// `accepted`, `unauthorized`, `bad_request`, `too_large`, `timeout`, `busy`, `error`.
    pub outcome: String,
}

/// Labels of a signature failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SigFailLabels {
    /// Endpoint name.
    pub endpoint: String,
    /// `missing`, `malformed`, `mismatch`, `sha1_disabled`.
    pub reason: String,
}

/// Labels of a matched secret.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SigMatchLabels {
    /// Endpoint name.
    pub endpoint: String,
    /// `v2`, `v1` or `unsigned`.
    pub scheme: String,
    /// Position of the secret in the configured list (to retire old ones).
    pub secret_index: String,
}

/// Labels with just the endpoint.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// Endpoint name.
    pub endpoint: String,
}

/// Labels with endpoint and topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabels {
    /// Endpoint name.
    pub endpoint: String,
    /// Topic (bounded).
    pub topic: String,
}

/// The listener's counters and gauges.
#[derive(Clone, Default)]
pub struct IngestMetrics {
    /// Requests by endpoint, topic and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Signature failures by reason.
    pub signature_failures: Family<SigFailLabels, Counter>,
    /// Verified deliveries by scheme and matching secret index.
    pub signature_matches: Family<SigMatchLabels, Counter>,
    /// Body bytes received on accepted deliveries.
    pub bytes: Family<EndpointLabels, Counter>,
    /// Events accepted.
    pub events: Family<TopicLabels, Counter>,
    /// Open connections.
    pub connections: Gauge,
    /// Requests refused by the per-source rate limit.
    pub rate_limited: Counter,
}

impl IngestMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "ingest_requests",
            "Webhook requests by endpoint, topic and outcome",
            m.requests.clone(),
        );
        registry.register(
            "ingest_signature_failures",
            "Rejected webhook signatures by reason",
            m.signature_failures.clone(),
        );
        registry.register(
            "ingest_signature_matches",
            "Verified deliveries by scheme and the index of the secret that matched",
            m.signature_matches.clone(),
        );
        registry.register("ingest_bytes", "Body bytes of accepted deliveries", m.bytes.clone());
        registry.register("ingest_events", "Events in accepted deliveries", m.events.clone());
        registry.register("ingest_connections", "Open webhook connections", m.connections.clone());
        registry.register(
            "ingest_rate_limited",
            "Requests refused by the per-source rate limit",
            m.rate_limited.clone(),
        );
        m
    }

    /// Counts one request outcome.
    pub fn outcome(&self, endpoint: &str, topic: &str, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.into(),
                topic: topic.into(),
                outcome: outcome.into(),
            })
            .inc();
    }
}
