//! Self-metrics of the webhook listener (`mist_otel_ingest_*`).

use super::{label_enum, register};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

label_enum! {
    /// How the listener answered a request (`outcome` label).
    pub enum Outcome {
        /// 200: verified and stored.
        Accepted => "accepted",
        /// 401: signature missing, malformed or wrong.
        Unauthorized => "unauthorized",
        /// 400: not the envelope shape, or the body could not be read.
        BadRequest => "bad_request",
        /// 413: body over the limit.
        TooLarge => "too_large",
        /// 408: body not received in time.
        Timeout => "timeout",
        /// 503: buffer full.
        Busy => "busy",
        /// 503 (storage failed) or 400 (body unreadable).
        Error => "error",
        /// 429: over the per-source rate limit.
        RateLimited => "rate_limited",
        /// Refused because unauthenticated bodies already hold `ingest.max_pending_body_bytes`.
        Overloaded => "overloaded",
    }
}

label_enum! {
    /// Why a signature was refused (`reason` label).
    pub enum SigFailure {
        /// No signature header at all.
        Missing => "missing",
        /// The header is not hex of the right length.
        Malformed => "malformed",
        /// Well formed but matches no secret.
        Mismatch => "mismatch",
        /// Only SHA-1 was sent and it is not enabled.
        Sha1Disabled => "sha1_disabled",
    }
}

label_enum! {
    /// How a delivery was verified (`scheme` label).
    pub enum Scheme {
        /// `X-Mist-Signature-v2` (HMAC-SHA256).
        V2 => "v2",
        /// `X-Mist-Signature` (HMAC-SHA1), when enabled.
        V1 => "v1",
        /// No secret configured and unsigned deliveries allowed.
        Unsigned => "unsigned",
    }
}

/// Labels of a request outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Endpoint name (`default` for the main path).
    pub endpoint: String,
    /// Topic (bounded: unknown topics are `other`; `unknown` before parsing).
    pub topic: String,
    /// How the request was answered.
    pub outcome: Outcome,
}

/// Labels of a signature failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SigFailLabels {
    /// Endpoint name.
    pub endpoint: String,
    /// Why it was refused.
    pub reason: SigFailure,
}

/// Labels of a matched secret.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SigMatchLabels {
    /// Endpoint name.
    pub endpoint: String,
    /// How the delivery was verified.
    pub scheme: Scheme,
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
    /// Connections closed at accept: their source already had its cap of open connections.
    pub source_capped: Counter,
    /// Handles on the counters every accepted delivery bumps, by endpoint (see
    /// [`IngestMetrics::accepted`]).
    hot: Arc<RwLock<HashMap<String, HotCounters>>>,
}

/// One endpoint's counters on the accepted path. A prometheus_client counter is a shared
/// handle, so these are the very series the registry exports; keeping them saves building,
/// hashing and dropping four label sets of `String`s per delivery.
#[derive(Default)]
struct HotCounters {
    bytes: Option<Counter>,
    /// `requests{outcome="accepted"}` and `events`, by topic label.
    topics: HashMap<&'static str, (Counter, Counter)>,
    /// Signature matches by scheme and secret index.
    matches: HashMap<(Scheme, Option<usize>), Counter>,
}

impl IngestMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        register!(registry;
            "ingest_requests", "Webhook requests by endpoint, topic and outcome" => m.requests;
            "ingest_signature_failures", "Rejected webhook signatures by reason" => m.signature_failures;
            "ingest_signature_matches", "Verified deliveries by scheme and the index of the secret that matched" => m.signature_matches;
            "ingest_bytes", "Body bytes of accepted deliveries" => m.bytes;
            "ingest_events", "Events in accepted deliveries" => m.events;
            "ingest_connections", "Open webhook connections" => m.connections;
            "ingest_rate_limited", "Requests refused by the per-source rate limit" => m.rate_limited;
            "ingest_connections_source_capped", "Connections closed at accept because their source address had ingest.max_connections_per_source open" => m.source_capped;
        );
        m
    }

    /// Counts an accepted delivery: `requests{outcome="accepted"}`, `bytes` and `events`.
    /// `topic` is a topic label (a known topic or `other`), so the cache stays bounded by the
    /// configured endpoints × known topics.
    pub fn accepted(&self, endpoint: &str, topic: &'static str, bytes: u64, events: u64) {
        let bump = |b: &Counter, r: &Counter, e: &Counter| {
            b.inc_by(bytes);
            r.inc();
            e.inc_by(events);
        };
        let found = self.with_hot(endpoint, |hot| match (&hot.bytes, hot.topics.get(topic)) {
            (Some(b), Some((r, e))) => {
                bump(b, r, e);
                true
            }
            _ => false,
        });
        if found {
            return;
        }
        let b = self.bytes.get_or_create(&EndpointLabels { endpoint: endpoint.into() }).clone();
        let r = self
            .requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.into(),
                topic: topic.into(),
                outcome: Outcome::Accepted,
            })
            .clone();
        let e = self
            .events
            .get_or_create(&TopicLabels { endpoint: endpoint.into(), topic: topic.into() })
            .clone();
        bump(&b, &r, &e);
        let mut map = self.hot.write().unwrap_or_else(PoisonError::into_inner);
        let hot = map.entry(endpoint.to_owned()).or_default();
        hot.bytes = Some(b);
        hot.topics.insert(topic, (r, e));
    }

    /// Counts a verified signature by scheme and the index of the secret that matched (`none`
    /// for unsigned).
    pub fn signature_match(&self, endpoint: &str, scheme: Scheme, index: Option<usize>) {
        if self.with_hot(endpoint, |hot| hot.matches.get(&(scheme, index)).map(Counter::inc).is_some()) {
            return;
        }
        let labels = SigMatchLabels {
            endpoint: endpoint.into(),
            scheme,
            secret_index: index.map_or_else(|| "none".to_owned(), |i| i.to_string()),
        };
        let c = self.signature_matches.get_or_create(&labels).clone();
        c.inc();
        let mut map = self.hot.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(endpoint.to_owned()).or_default().matches.insert((scheme, index), c);
    }

    /// Runs `f` on the endpoint's cached counters, if it has any; false otherwise.
    fn with_hot(&self, endpoint: &str, f: impl FnOnce(&HotCounters) -> bool) -> bool {
        let map = self.hot.read().unwrap_or_else(PoisonError::into_inner);
        map.get(endpoint).is_some_and(f)
    }

    /// Counts a request by outcome (the paths other than an accepted delivery).
    pub fn outcome(&self, endpoint: &str, topic: &str, outcome: Outcome) {
        self.requests
            .get_or_create(&RequestLabels { endpoint: endpoint.into(), topic: topic.into(), outcome })
            .inc();
    }

    /// Counts a refused signature by reason.
    pub fn signature_failure(&self, endpoint: &str, reason: SigFailure) {
        self.signature_failures.get_or_create(&SigFailLabels { endpoint: endpoint.into(), reason }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).expect("encodes");
        text
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn cached_counters_are_the_exported_series() {
        let mut registry = Registry::default();
        let m = IngestMetrics::register(&mut registry);
        // The first call per endpoint and topic fills the cache, later ones use it.
        m.accepted("default", "alarms", 100, 2);
        m.accepted("default", "alarms", 50, 1);
        m.accepted("default", "other", 7, 3);
        m.accepted("east", "alarms", 1, 1);
        m.signature_match("default", Scheme::V2, Some(1));
        m.signature_match("default", Scheme::V2, Some(1));
        m.signature_match("default", Scheme::Unsigned, None);
        let t = exposition(&registry);
        let get = |s: &str| value(&t, s).unwrap_or_else(|| panic!("{s} missing in\n{t}"));
        assert_eq!(get(r#"ingest_bytes_total{endpoint="default"}"#), 157.0);
        assert_eq!(get(r#"ingest_bytes_total{endpoint="east"}"#), 1.0);
        assert_eq!(get(r#"ingest_events_total{endpoint="default",topic="alarms"}"#), 3.0);
        assert_eq!(get(r#"ingest_events_total{endpoint="default",topic="other"}"#), 3.0);
        assert_eq!(
            get(r#"ingest_requests_total{endpoint="default",topic="alarms",outcome="accepted"}"#),
            2.0
        );
        assert_eq!(get(r#"ingest_requests_total{endpoint="east",topic="alarms",outcome="accepted"}"#), 1.0);
        assert_eq!(
            get(r#"ingest_signature_matches_total{endpoint="default",scheme="v2",secret_index="1"}"#),
            2.0
        );
        assert_eq!(
            get(
                r#"ingest_signature_matches_total{endpoint="default",scheme="unsigned",secret_index="none"}"#
            ),
            1.0
        );
    }
}
