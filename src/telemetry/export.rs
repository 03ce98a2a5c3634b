//! Self-metrics of the export pipeline (`mist_otel_export_*`, the translator's bounds) and the
//! typed health snapshot of the export side ([`ExportMetrics::health`]).
//!
//! The snapshot is kept beside the counters, bumped once per export request (not per item),
//! because the Prometheus families cannot be read back without creating series that would then
//! be exported.

use super::deadletter::{DeadLetterHealth, DeadLetterMetrics};
use super::register;
use crate::telemetry::label_enum;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

label_enum! {
    /// What the export metrics count: a signal, or whole buffered deliveries (drops only).
    pub enum SignalLabel {
        /// Log records.
        Logs => "logs",
        /// Metric data points.
        Metrics => "metrics",
        /// Spans.
        Traces => "traces",
        /// Whole buffered deliveries, dropped before translation finished.
        Delivery => "delivery",
    }
}

label_enum! {
    /// What became of an export request (each attempt of a retried one counts).
    pub enum Outcome {
        /// Accepted by the backend.
        Success => "success",
        /// Failed for now; tried again.
        Retry => "retry",
        /// Refused for good; dropped.
        Failed => "failed",
        /// Accepted, but the backend rejected part of it (`partial_success`).
        Rejected => "rejected",
    }
}

label_enum! {
    /// Drop reasons the pipeline itself decides (an exporter's reasons are its own strings).
    pub enum DropReason {
        /// The backend rejected part of a request.
        PartialSuccess => "partial_success",
        /// A buffered delivery no longer parses (corruption).
        Unparseable => "unparseable",
        /// The translator panicked on a delivery.
        TranslatePanic => "translate_panic",
    }
}

/// Labels: signal and outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `logs`, `metrics`, `traces`.
    pub signal: SignalLabel,
    /// What became of the request.
    pub outcome: Outcome,
}

/// Labels: signal and reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `logs`, `metrics`, `traces`, or `delivery` for whole deliveries.
    pub signal: SignalLabel,
    /// Why (`unavailable`, `http_503`, `invalid_argument`, `partial_success`…): open, since
    /// exporters name their own reasons.
    pub reason: String,
}

/// The export self-metrics.
#[derive(Clone, Default)]
pub struct ExportMetrics {
    /// Export requests by signal and outcome.
    pub requests: Family<OutcomeLabels, Counter>,
    /// Items (records, points, spans) by signal and outcome.
    pub items: Family<OutcomeLabels, Counter>,
    /// Retries by signal and reason.
    pub retries: Family<ReasonLabels, Counter>,
    /// Items dropped, by signal and reason.
    pub dropped: Family<ReasonLabels, Counter>,
    /// Deliveries translated.
    pub deliveries: Counter,
    /// The translator's bounded state (correlation and metric series), refreshed per batch.
    pub translator: TranslatorGauges,
    /// The dead-letter store's gauges (requests refused for good, kept on disk).
    pub dead_letters: DeadLetterMetrics,
    /// What [`ExportMetrics::health`] reports.
    health: Arc<HealthCells>,
}

/// Gauges mirroring the translator's statistics, so its bounds are visible.
#[derive(Clone, Default)]
pub struct TranslatorGauges {
    /// Clients held in the trace correlation state.
    pub correlation_entries: Gauge,
    /// Clients evicted from it since start (capacity or TTL).
    pub correlation_evictions: Gauge,
    /// Parts waiting for their association.
    pub correlation_parked: Gauge,
    /// Live metric series.
    pub metric_series: Gauge,
    /// Metric series refused by the cap since start.
    pub metric_series_dropped: Gauge,
    /// Events whose time needed correcting (ms/µs/ns, or replaced by receipt) since start.
    pub timestamps_corrected: Gauge,
}

/// Sets a gauge from a count (saturating: the gauges are `i64`).
pub fn set_count(gauge: &Gauge, value: u64) {
    gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
}

/// Typed health of the export side, per signal.
#[derive(Debug, Clone, Serialize)]
pub struct ExportHealth {
    /// Log records.
    pub logs: SignalHealth,
    /// Metric data points.
    pub metrics: SignalHealth,
    /// Spans.
    pub traces: SignalHealth,
    /// Buffered deliveries dropped before translation finished (corrupt, translator panic).
    pub deliveries_dropped: u64,
    /// Requests refused for good, kept in the dead-letter store.
    pub dead_letters: DeadLetterHealth,
}

/// Health of one signal's exports since start.
#[derive(Debug, Clone, Serialize)]
pub struct SignalHealth {
    /// Items the backend accepted.
    pub items_sent: u64,
    /// Items dropped for good (refused permanently or rejected in a partial success).
    pub items_dropped: u64,
    /// When a request last succeeded, Unix seconds.
    pub last_success_unix: Option<u64>,
    /// The last failure (retryable or not).
    pub last_error: Option<LastError>,
    /// Failed attempts of the request being retried now (0: none is).
    pub retrying: u32,
}

/// A failed export attempt.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    /// The exporter's short reason (`http_503`, `unavailable`, `partial_success`…).
    pub reason: String,
    /// When, Unix seconds.
    pub at_unix: u64,
}

/// The cells behind [`SignalHealth`] (one set per signal).
#[derive(Default)]
struct SignalCells {
    sent: AtomicU64,
    dropped: AtomicU64,
    /// Unix seconds; 0 for never.
    last_success: AtomicU64,
    retrying: AtomicU32,
    last_error: Mutex<Option<LastError>>,
}

impl SignalCells {
    fn error(&self, reason: &str) {
        let e = LastError { reason: reason.to_owned(), at_unix: unix_now() };
        *self.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
    }

    fn snapshot(&self) -> SignalHealth {
        let last = self.last_success.load(Ordering::Relaxed);
        SignalHealth {
            items_sent: self.sent.load(Ordering::Relaxed),
            items_dropped: self.dropped.load(Ordering::Relaxed),
            last_success_unix: (last > 0).then_some(last),
            last_error: self.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            retrying: self.retrying.load(Ordering::Relaxed),
        }
    }
}

#[derive(Default)]
struct HealthCells {
    logs: SignalCells,
    metrics: SignalCells,
    traces: SignalCells,
    deliveries_dropped: AtomicU64,
}

fn unix_now() -> u64 {
    crate::clock::now_ns() / 1_000_000_000
}

impl ExportMetrics {
    /// Creates and registers the metrics.
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        register!(r;
            "export_requests", "OTLP export requests by signal and outcome" => m.requests;
            "export_items", "Log records, data points and spans exported, by outcome" => m.items;
            "export_retries", "Export attempts retried, by signal and reason" => m.retries;
            "export_dropped_items", "Items dropped for good, by signal and reason" => m.dropped;
            "export_deliveries", "Buffered deliveries translated by the pipeline" => m.deliveries;
        );
        m.dead_letters.register(r);
        let t = &m.translator;
        register!(r;
            "correlation_entries", "Clients held in the trace correlation state" => t.correlation_entries;
            "correlation_evictions", "Clients evicted from the correlation state since start (capacity or TTL)" => t.correlation_evictions;
            "correlation_parked", "Trace parts waiting for their association" => t.correlation_parked;
            "signal_metric_series", "Live metric series in the translator" => t.metric_series;
            "signal_metric_series_dropped", "Metric series refused by signals.max_metric_series since start" => t.metric_series_dropped;
            "signal_timestamps_corrected", "Events whose time was sent in ms/us/ns or replaced by receipt time, since start" => t.timestamps_corrected;
        );
        m
    }

    /// The health snapshot: per signal, items sent and dropped, the last success and error.
    pub fn health(&self) -> ExportHealth {
        let h = &self.health;
        ExportHealth {
            logs: h.logs.snapshot(),
            metrics: h.metrics.snapshot(),
            traces: h.traces.snapshot(),
            deliveries_dropped: h.deliveries_dropped.load(Ordering::Relaxed),
            dead_letters: self.dead_letters.health(),
        }
    }

    /// Counts a request accepted by the backend with `items` items taken.
    pub fn success(&self, signal: SignalLabel, items: u64) {
        self.outcome(signal, Outcome::Success, items);
        if let Some(c) = self.cells(signal) {
            c.sent.fetch_add(items, Ordering::Relaxed);
            c.last_success.store(unix_now(), Ordering::Relaxed);
            c.retrying.store(0, Ordering::Relaxed);
        }
    }

    /// Counts the `items` the backend rejected in a partial success (dropped, not retried).
    pub fn rejected(&self, signal: SignalLabel, items: u64) {
        self.outcome(signal, Outcome::Rejected, items);
        self.drop_items(signal, DropReason::PartialSuccess.as_str(), items);
    }

    /// Counts a request refused for good: its `items` are dropped for `reason`.
    pub fn failed(&self, signal: SignalLabel, reason: &str, items: u64) {
        self.outcome(signal, Outcome::Failed, items);
        self.drop_items(signal, reason, items);
        if let Some(c) = self.cells(signal) {
            c.retrying.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a retryable failure of a request of `items` items, the `attempt`-th in a row.
    pub fn retry(&self, signal: SignalLabel, reason: &str, items: u64, attempt: u32) {
        self.outcome(signal, Outcome::Retry, items);
        self.retries.get_or_create(&ReasonLabels { signal, reason: reason.to_owned() }).inc();
        if let Some(c) = self.cells(signal) {
            c.error(reason);
            c.retrying.store(attempt, Ordering::Relaxed);
        }
    }

    /// Counts a buffered delivery dropped before its items existed.
    pub fn delivery_dropped(&self, reason: DropReason) {
        self.drop_items(SignalLabel::Delivery, reason.as_str(), 1);
    }

    fn outcome(&self, signal: SignalLabel, outcome: Outcome, items: u64) {
        let l = OutcomeLabels { signal, outcome };
        self.requests.get_or_create(&l).inc();
        self.items.get_or_create(&l).inc_by(items);
    }

    fn drop_items(&self, signal: SignalLabel, reason: &str, n: u64) {
        self.dropped.get_or_create(&ReasonLabels { signal, reason: reason.to_owned() }).inc_by(n);
        match self.cells(signal) {
            Some(c) => {
                c.dropped.fetch_add(n, Ordering::Relaxed);
                c.error(reason);
            }
            None => {
                self.health.deliveries_dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    fn cells(&self, signal: SignalLabel) -> Option<&SignalCells> {
        match signal {
            SignalLabel::Logs => Some(&self.health.logs),
            SignalLabel::Metrics => Some(&self.health.metrics),
            SignalLabel::Traces => Some(&self.health.traces),
            SignalLabel::Delivery => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_outcomes_and_labels_keep_their_text() {
        let mut registry = Registry::default();
        let m = ExportMetrics::register(&mut registry);
        m.retry(SignalLabel::Logs, "http_503", 4, 1);
        assert_eq!(m.health().logs.retrying, 1);
        m.success(SignalLabel::Logs, 4);
        m.success(SignalLabel::Traces, 3);
        m.rejected(SignalLabel::Traces, 1);
        m.failed(SignalLabel::Metrics, "http_400", 5);
        m.delivery_dropped(DropReason::Unparseable);
        let h = m.health();
        assert_eq!((h.logs.items_sent, h.logs.retrying), (4, 0));
        assert!(h.logs.last_success_unix.is_some());
        assert_eq!(h.logs.last_error.map(|e| e.reason).as_deref(), Some("http_503"));
        assert_eq!((h.traces.items_sent, h.traces.items_dropped), (3, 1));
        assert_eq!((h.metrics.items_sent, h.metrics.items_dropped), (0, 5));
        assert_eq!(h.metrics.last_success_unix, None);
        assert_eq!(h.deliveries_dropped, 1);
        let text = crate::telemetry::render(&registry);
        for series in [
            r#"export_requests_total{signal="logs",outcome="retry"} 1"#,
            r#"export_items_total{signal="traces",outcome="rejected"} 1"#,
            r#"export_retries_total{signal="logs",reason="http_503"} 1"#,
            r#"export_dropped_items_total{signal="traces",reason="partial_success"} 1"#,
            r#"export_dropped_items_total{signal="delivery",reason="unparseable"} 1"#,
        ] {
            assert!(text.contains(series), "{series} missing in\n{text}");
        }
    }
}
