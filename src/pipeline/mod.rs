//! The export pipeline: buffered deliveries → translator → batches → exporters, with retries.
//!
//! One task reads the buffer in sequence order, translates each delivery, and batches log
//! records and spans (flushed by count, bytes, or when the oldest item waited
//! `OTEL_BLRP_SCHEDULE_DELAY` / `OTEL_BSP_SCHEDULE_DELAY`). Metrics are collected every
//! `OTEL_METRIC_EXPORT_INTERVAL` from the translator and every registered [`MetricsProducer`].
//!
//! # When a delivery leaves the buffer
//! A delivery is removed once (a) the log and span batches holding its records were acknowledged
//! (or rejected permanently, which is counted) and (b) a metric export that *collected after it
//! was translated* succeeded — the translator folds its metric points into counters, so only
//! such an export proves they reached the backend. Until then it stays on disk and is replayed
//! after a crash; translation is deterministic, so replayed logs and spans are identical
//! duplicates (same ids, same timestamps) that backends de-duplicate or tolerate.
//!
//! # Retries and memory
//! A retryable failure blocks the pipeline on that batch (capped exponential backoff with full
//! jitter, or the server's Retry-After/RetryInfo): nothing more is read from the buffer, so
//! memory stays bounded while data waits on disk and ingest keeps answering 200 until the
//! buffer cap turns it to 503.

use crate::buffer::Buffer;
use crate::exporter::config::{ExportConfig, Signal};
use crate::exporter::{ExportError, Exporters, Payload};
use crate::mist::Envelope;
use crate::signals::{Input, Translator};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use prost::Message;
use rand::RngExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Anything that supplies metrics at each collection (the translator's aggregation, the poller).
pub trait MetricsProducer: Send + Sync {
    /// The metrics as of `now_ns` (nanoseconds since the epoch).
    fn collect(&self, now_ns: u64) -> Vec<ResourceMetrics>;
}

/// Labels: signal and outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `logs`, `metrics`, `traces`.
    pub signal: String,
    /// `success`, `retry`, `failed`, `rejected`.
    pub outcome: String,
}

/// Labels: signal and reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `logs`, `metrics`, `traces`, or `delivery` for whole deliveries.
    pub signal: String,
    /// Why (`unavailable`, `http_503`, `invalid_argument`, `partial_success`…).
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
}

/// Gauges mirroring [`crate::signals::TranslatorStats`], so the bounds are visible.
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
}

impl TranslatorGauges {
    fn set(&self, s: &crate::signals::TranslatorStats) {
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.correlation_entries.set(g(s.correlation_entries));
        self.correlation_evictions.set(g(s.correlation_evictions));
        self.correlation_parked.set(g(s.correlation_parked));
        self.metric_series.set(g(s.metric_series));
        self.metric_series_dropped.set(g(s.metric_series_dropped));
    }
}

impl ExportMetrics {
    /// Creates and registers the metrics.
    pub fn register(r: &mut Registry) -> Self {
        let m = Self::default();
        r.register("export_requests", "OTLP export requests by signal and outcome", m.requests.clone());
        r.register(
            "export_items",
            "Log records, data points and spans exported, by outcome",
            m.items.clone(),
        );
        r.register("export_retries", "Export attempts retried, by signal and reason", m.retries.clone());
        r.register("export_dropped_items", "Items dropped for good, by signal and reason", m.dropped.clone());
        r.register(
            "export_deliveries",
            "Buffered deliveries translated by the pipeline",
            m.deliveries.clone(),
        );
        let t = &m.translator;
        r.register(
            "correlation_entries",
            "Clients held in the trace correlation state",
            t.correlation_entries.clone(),
        );
        r.register(
            "correlation_evictions",
            "Clients evicted from the correlation state since start (capacity or TTL)",
            t.correlation_evictions.clone(),
        );
        r.register(
            "correlation_parked",
            "Trace parts waiting for their association",
            t.correlation_parked.clone(),
        );
        r.register("signal_metric_series", "Live metric series in the translator", t.metric_series.clone());
        r.register(
            "signal_metric_series_dropped",
            "Metric series refused by signals.max_metric_series since start",
            t.metric_series_dropped.clone(),
        );
        m
    }

    fn outcome(&self, s: Signal, outcome: &str, items: u64) {
        let l = OutcomeLabels { signal: s.as_str().into(), outcome: outcome.into() };
        self.requests.get_or_create(&l).inc();
        self.items.get_or_create(&l).inc_by(items);
    }

    fn drop_items(&self, signal: &str, reason: &str, n: u64) {
        self.dropped.get_or_create(&ReasonLabels { signal: signal.into(), reason: reason.into() }).inc_by(n);
    }
}

/// What happened to one request after retries.
#[derive(Debug, PartialEq)]
enum Sent {
    /// Acknowledged (fully or partly) or dropped as permanent: either way, done with it.
    Done,
    /// Shutdown deadline passed while retrying: leave its deliveries on disk.
    Abandoned,
}

#[derive(Default)]
struct Pending<T> {
    /// Groups with their encoded sizes (measured once, here: the size is a walk of the whole
    /// group, and splitting into requests needs it again).
    items: Vec<(T, usize)>,
    count: usize,
    bytes: usize,
    since: Option<Instant>,
}

/// A resource group (`ResourceLogs`, `ResourceSpans`): a resource, its scopes, and each scope's
/// records (log records, spans). Batching, chopping and merging treat both alike.
trait Group: Message + Clone {
    type Scope: Clone;
    type Record: Message;
    fn scopes(&self) -> &[Self::Scope];
    fn scopes_mut(&mut self) -> &mut Vec<Self::Scope>;
    fn records_of(scope: &mut Self::Scope) -> &mut Vec<Self::Record>;
    fn record_count(scope: &Self::Scope) -> usize;
    /// Same resource and schema: the two groups may be one in a request.
    fn same_resource(&self, other: &Self) -> bool;
    /// Same instrumentation scope and schema.
    fn same_scope(a: &Self::Scope, b: &Self::Scope) -> bool;

    /// How many records the group carries.
    fn records(&self) -> usize {
        self.scopes().iter().map(Self::record_count).sum()
    }
}

/// Implements [`Group`] for a resource group type from its field names.
macro_rules! group {
    ($group:ty, $scope:ty, $record:ty, $scopes:ident, $records:ident) => {
        impl Group for $group {
            type Scope = $scope;
            type Record = $record;
            fn scopes(&self) -> &[$scope] {
                &self.$scopes
            }
            fn scopes_mut(&mut self) -> &mut Vec<$scope> {
                &mut self.$scopes
            }
            fn records_of(scope: &mut $scope) -> &mut Vec<$record> {
                &mut scope.$records
            }
            fn record_count(scope: &$scope) -> usize {
                scope.$records.len()
            }
            fn same_resource(&self, other: &Self) -> bool {
                self.resource == other.resource && self.schema_url == other.schema_url
            }
            fn same_scope(a: &$scope, b: &$scope) -> bool {
                a.scope == b.scope && a.schema_url == b.schema_url
            }
        }
    };
}

group!(ResourceLogs, ScopeLogs, LogRecord, scope_logs, log_records);
group!(ResourceSpans, ScopeSpans, Span, scope_spans, spans);

impl<T: Group> Pending<T> {
    /// Queues a group, counting its records and bytes; the batch delay runs from the first.
    fn push(&mut self, item: T, now: Instant) {
        let size = item.encoded_len();
        self.count += item.records();
        self.bytes += size;
        self.since.get_or_insert(now);
        self.items.push((item, size));
    }
}

impl<T> Pending<T> {
    fn take(&mut self) -> Vec<(T, usize)> {
        self.count = 0;
        self.bytes = 0;
        self.since = None;
        std::mem::take(&mut self.items)
    }
}

/// The pipeline's inputs.
pub struct Pipeline {
    buffer: Buffer,
    translator: Translator,
    exporters: Exporters,
    cfg: ExportConfig,
    attributes: HashMap<String, BTreeMap<String, String>>,
    producers: Vec<Arc<dyn MetricsProducer>>,
    metrics: ExportMetrics,
}

/// How many deliveries are read from the buffer at a time.
const READ_CHUNK: usize = 64;

impl Pipeline {
    /// Assembles a pipeline. `attributes` maps endpoint names to their static attributes.
    pub fn new(
        buffer: Buffer,
        translator: Translator,
        exporters: Exporters,
        cfg: ExportConfig,
        attributes: HashMap<String, BTreeMap<String, String>>,
        producers: Vec<Arc<dyn MetricsProducer>>,
        metrics: ExportMetrics,
    ) -> Self {
        Self { buffer, translator, exporters, cfg, attributes, producers, metrics }
    }

    /// Runs until `cancel`, then flushes what it can within `export.shutdown_timeout` and
    /// returns (the rest stays on disk).
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut run = Run {
            cursor: 0,
            translated: None,
            logs_acked: None,
            spans_acked: None,
            metrics_acked: None,
            removed: None,
            logs: Pending::default(),
            spans: Pending::default(),
            next_metrics: Instant::now() + self.cfg.metric_interval,
            last_metrics: Instant::now(),
            deadline: None,
            parked_released: false,
            cancel,
        };
        let empty = BTreeMap::new();
        loop {
            if run.cancel.is_cancelled() && run.deadline.is_none() {
                run.deadline = Some(Instant::now() + self.cfg.shutdown_timeout);
                tracing::info!(timeout = ?self.cfg.shutdown_timeout, "export pipeline flushing");
            }
            let draining = run.deadline.is_some();
            if run.deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            // Read what is there, never more than one batch's worth ahead of the exporters.
            let room = self.cfg.batch.max_items.saturating_sub(run.logs.count.max(run.spans.count));
            let batch = if room > 0 {
                match self
                    .buffer
                    .read(run.cursor, READ_CHUNK.min(room.max(1)), self.cfg.batch.max_bytes as u64)
                    .await
                {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the buffer");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            // Refreshed every pass (so at most one batch behind), cheap: five counters.
            self.metrics.translator.set(&self.translator.stats());
            let got = !batch.is_empty();
            for d in batch {
                run.cursor = d.seq + 1;
                run.translated = Some(d.seq);
                self.metrics.deliveries.inc();
                let env = match Envelope::parse(&d.body) {
                    Ok(e) => e,
                    Err(e) => {
                        // Ingest parsed it before storing; only corruption gets here.
                        tracing::warn!(seq = d.seq, error = %e, "buffered delivery does not parse; dropped");
                        self.metrics.drop_items("delivery", "unparseable", 1);
                        continue;
                    }
                };
                let attrs = self.attributes.get(&d.endpoint).unwrap_or(&empty);
                let input = Input {
                    endpoint: &d.endpoint,
                    endpoint_attributes: attrs,
                    received_at_ns: d.received_at_ns,
                    envelope: &env,
                };
                let translator = &mut self.translator;
                // A translator bug must not wedge the pipeline on one delivery forever.
                let out = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    translator.translate(&input)
                })) {
                    Ok(t) => t,
                    Err(_) => {
                        tracing::error!(seq = d.seq, topic = %env.topic, "translator panicked; delivery dropped");
                        self.metrics.drop_items("delivery", "translate_panic", 1);
                        continue;
                    }
                };
                let now = Instant::now();
                for rl in out.logs {
                    run.logs.push(rl, now);
                }
                for rs in out.spans {
                    run.spans.push(rs, now);
                }
            }
            // Signals with nothing pending are acknowledged through everything translated.
            if run.logs.items.is_empty() {
                run.logs_acked = run.translated;
            }
            if run.spans.items.is_empty() {
                run.spans_acked = run.translated;
            }
            let now = Instant::now();
            let caught_up = !got;
            if draining && caught_up && !run.parked_released {
                // Everything on disk is translated: permits still waiting for a join will not
                // get one from this process; send them as their own traces with the flush.
                run.parked_released = true;
                for rs in self.translator.release_parked() {
                    run.spans.push(rs, now);
                }
            }
            let batch_cfg = &self.cfg.batch;
            let due = |count: usize, bytes: usize, since: Option<Instant>, delay: Duration| {
                count > 0
                    && (draining && caught_up
                        || count >= batch_cfg.max_items
                        || bytes >= batch_cfg.max_bytes
                        || since.is_some_and(|s| now >= s + delay))
            };
            let logs_due = due(
                run.logs.count.max(run.logs.items.len()),
                run.logs.bytes,
                run.logs.since,
                batch_cfg.logs_delay,
            );
            let spans_due = due(
                run.spans.count.max(run.spans.items.len()),
                run.spans.bytes,
                run.spans.since,
                batch_cfg.spans_delay,
            );
            let max_bytes = self.cfg.batch.max_bytes;
            if logs_due {
                let through = run.translated;
                let requests = split_by_bytes(chop(run.logs.take(), max_bytes), max_bytes)
                    .into_iter()
                    .map(|p| Payload::Logs(ExportLogsServiceRequest { resource_logs: merge(p) }));
                if self.send_all(&mut run, requests).await == Sent::Abandoned {
                    break;
                }
                run.logs_acked = through;
            }
            if spans_due {
                let through = run.translated;
                let requests = split_by_bytes(chop(run.spans.take(), max_bytes), max_bytes)
                    .into_iter()
                    .map(|p| Payload::Traces(ExportTraceServiceRequest { resource_spans: merge(p) }));
                if self.send_all(&mut run, requests).await == Sent::Abandoned {
                    break;
                }
                run.spans_acked = through;
            }
            // Deliveries stay on disk until a metric export after them succeeds: with a long
            // metric interval a busy server would fill the buffer first. Above
            // EARLY_METRICS_FILL, metrics go out early (at most once a second) so that it drains.
            let pressure = now >= run.last_metrics + EARLY_METRICS_MIN_GAP && self.held_by_metrics(&run);
            if now >= run.next_metrics
                || pressure
                || (draining && caught_up && run.logs.items.is_empty() && run.spans.items.is_empty())
            {
                let through = run.translated;
                if self.export_metrics(&mut run).await == Sent::Abandoned {
                    break;
                }
                run.metrics_acked = through;
                run.last_metrics = Instant::now();
                run.next_metrics = run.last_metrics + self.cfg.metric_interval;
            }
            self.remove_acknowledged(&mut run).await;
            self.buffer.refresh_age(crate::clock::now_ns());
            if draining && caught_up && run.logs.items.is_empty() && run.spans.items.is_empty() {
                break;
            }
            if got {
                continue;
            }
            // Idle: sleep until new data, the next flush, the next metric collection or cancel.
            let mut wake = run.next_metrics;
            if let Some(s) = run.logs.since {
                wake = wake.min(s + self.cfg.batch.logs_delay);
            }
            if let Some(s) = run.spans.since {
                wake = wake.min(s + self.cfg.batch.spans_delay);
            }
            if self.held_by_metrics(&run) {
                wake = wake.min(run.last_metrics + EARLY_METRICS_MIN_GAP);
            }
            let wait = wake.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
            if !draining {
                tokio::select! {
                    _ = self.buffer.wait_for(run.cursor, wait) => {}
                    _ = run.cancel.cancelled() => {}
                }
            }
        }
        let (left, bytes) = self.buffer.depth();
        tracing::info!(deliveries_left = left, bytes_left = bytes, "export pipeline stopped");
    }

    /// True when the buffer is past EARLY_METRICS_FILL and the metric watermark is what keeps
    /// deliveries in it (not a logs or spans backend that is down).
    fn held_by_metrics(&self, run: &Run) -> bool {
        run.metrics_acked < run.logs_acked.min(run.spans_acked) && self.buffer.fill() > EARLY_METRICS_FILL
    }

    async fn remove_acknowledged(&self, run: &mut Run) {
        let acked = [run.logs_acked, run.spans_acked, run.metrics_acked].into_iter().min().flatten();
        if let Some(a) = acked
            && run.removed.is_none_or(|r| a > r)
            && self.buffer.remove_through(a).await
        {
            run.removed = Some(a);
        }
    }

    async fn export_metrics(&mut self, run: &mut Run) -> Sent {
        let now = crate::clock::now_ns();
        let mut rms = self.translator.collect_metrics(now);
        for p in &self.producers {
            rms.extend(p.collect(now));
        }
        if rms.is_empty() {
            return Sent::Done;
        }
        self.send(run, Payload::Metrics(ExportMetricsServiceRequest { resource_metrics: rms })).await
    }

    /// Sends the requests in order (each built when its turn comes); stops at the first one
    /// abandoned at the shutdown deadline.
    async fn send_all(&self, run: &mut Run, requests: impl Iterator<Item = Payload>) -> Sent {
        for req in requests {
            if self.send(run, req).await == Sent::Abandoned {
                return Sent::Abandoned;
            }
        }
        Sent::Done
    }

    /// Sends one request, retrying retryable failures until success, a permanent failure, or
    /// the shutdown deadline.
    async fn send(&self, run: &mut Run, payload: Payload) -> Sent {
        let signal = payload.signal();
        let items = payload.items();
        let exporter = self.exporters.for_signal(signal);
        let mut attempt: u32 = 0;
        loop {
            let result = match run.deadline {
                Some(d) => match tokio::time::timeout_at(d, exporter.export(&payload)).await {
                    Ok(r) => r,
                    Err(_) => return Sent::Abandoned,
                },
                None => exporter.export(&payload).await,
            };
            match result {
                Ok(acc) => {
                    if acc.rejected > 0 {
                        self.metrics.outcome(signal, "rejected", acc.rejected);
                        self.metrics.drop_items(signal.as_str(), "partial_success", acc.rejected);
                        tracing::warn!(signal = signal.as_str(), rejected = acc.rejected, message = %acc.message, "backend rejected part of an export");
                    }
                    self.metrics.outcome(signal, "success", items.saturating_sub(acc.rejected));
                    return Sent::Done;
                }
                Err(ExportError::Permanent { reason }) => {
                    self.metrics.outcome(signal, "failed", items);
                    self.metrics.drop_items(signal.as_str(), &reason, items);
                    tracing::error!(signal = signal.as_str(), items, reason = %reason, "export failed permanently; dropped");
                    return Sent::Done;
                }
                Err(ExportError::Retryable { reason, retry_after }) => {
                    self.metrics.outcome(signal, "retry", items);
                    self.metrics
                        .retries
                        .get_or_create(&ReasonLabels {
                            signal: signal.as_str().into(),
                            reason: reason.clone(),
                        })
                        .inc();
                    let delay = backoff(&self.cfg, attempt, retry_after);
                    attempt = attempt.saturating_add(1);
                    if attempt == 1 || attempt.is_power_of_two() {
                        tracing::warn!(signal = signal.as_str(), reason = %reason, attempt, delay = ?delay, "export failed; retrying");
                    }
                    let wake = Instant::now() + delay;
                    match run.deadline {
                        Some(d) if wake >= d => return Sent::Abandoned,
                        Some(_) => tokio::time::sleep_until(wake).await,
                        None => {
                            tokio::select! {
                                _ = tokio::time::sleep_until(wake) => {}
                                _ = run.cancel.cancelled() => {
                                    run.deadline = Some(Instant::now() + self.cfg.shutdown_timeout);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Buffer fill (share of `buffer.max_bytes`) above which metrics are exported early. Low, so
/// that each early export releases a modest amount (releasing a quarter of a 256 MiB buffer at
/// once cost a visible pause).
const EARLY_METRICS_FILL: f64 = 1.0 / 16.0;
/// Shortest gap between two metric exports triggered by a filling buffer.
const EARLY_METRICS_MIN_GAP: Duration = Duration::from_secs(1);

struct Run {
    cursor: u64,
    translated: Option<u64>,
    logs_acked: Option<u64>,
    spans_acked: Option<u64>,
    metrics_acked: Option<u64>,
    removed: Option<u64>,
    logs: Pending<ResourceLogs>,
    spans: Pending<ResourceSpans>,
    next_metrics: Instant,
    /// When the last metric export finished.
    last_metrics: Instant,
    deadline: Option<Instant>,
    /// Parked trace parts were given up for the final flush.
    parked_released: bool,
    cancel: CancellationToken,
}

/// The wait before retry `attempt` (0-based): the server's delay when it gave one (capped at
/// `retry.max`, never shorter than asked up to that cap), else full jitter over a capped
/// exponential: uniform in [base/2, base] with base = min(max, initial·2^attempt).
pub fn backoff(cfg: &ExportConfig, attempt: u32, server: Option<Duration>) -> Duration {
    if let Some(s) = server {
        return s.min(cfg.retry.max);
    }
    let base = cfg.retry.initial.saturating_mul(1u32 << attempt.min(20)).min(cfg.retry.max);
    let lo = base / 2;
    let jitter = rand::rng().random_range(0..=(base - lo).as_millis() as u64);
    lo + Duration::from_millis(jitter)
}

/// Breaks each resource group larger than `max_bytes` into several with the same resource and
/// scope, a share of the records each, so one large delivery (up to `ingest.max_body_bytes`)
/// never becomes a request over the backend's message limit — which would be refused for good.
fn chop<G: Group>(items: Vec<(G, usize)>, max_bytes: usize) -> Vec<(G, usize)> {
    let mut out = Vec::with_capacity(items.len());
    for (mut group, size) in items {
        if size <= max_bytes {
            out.push((group, size));
            continue;
        }
        // With their records taken out, the clones below copy only the resource and scope.
        for mut scope in std::mem::take(group.scopes_mut()) {
            for chunk in split_by_bytes(sized(std::mem::take(G::records_of(&mut scope))), max_bytes * 3 / 4) {
                let mut part_scope = scope.clone();
                *G::records_of(&mut part_scope) = chunk;
                let mut part = group.clone();
                part.scopes_mut().push(part_scope);
                let size = part.encoded_len();
                out.push((part, size));
            }
        }
    }
    out
}

/// Pairs each item with its encoded size.
fn sized<T: Message>(items: Vec<T>) -> Vec<(T, usize)> {
    items
        .into_iter()
        .map(|i| {
            let n = i.encoded_len();
            (i, n)
        })
        .collect()
}

/// Splits a batch into requests of at most `max_bytes` encoded bytes each (a single group
/// larger than that goes alone), so one large delivery cannot push a request past the backend's
/// message limit together with others.
fn split_by_bytes<T>(items: Vec<(T, usize)>, max_bytes: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut size = 0;
    for (item, n) in items {
        match out.last_mut() {
            Some(last) if size + n <= max_bytes => last.push(item),
            _ => {
                out.push(vec![item]);
                size = 0;
            }
        }
        size += n;
    }
    out
}

/// Merges adjacent resource groups with the same resource and scope, so a batch of deliveries
/// from one endpoint is one resource in the request.
fn merge<G: Group>(items: Vec<G>) -> Vec<G> {
    let mut out: Vec<G> = Vec::with_capacity(items.len());
    for mut group in items {
        match out.last_mut() {
            Some(last) if last.same_resource(&group) => {
                for mut scope in std::mem::take(group.scopes_mut()) {
                    match last.scopes_mut().iter_mut().find(|s| G::same_scope(s, &scope)) {
                        Some(s) => G::records_of(s).append(G::records_of(&mut scope)),
                        None => last.scopes_mut().push(scope),
                    }
                }
            }
            _ => out.push(group),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_jittered_and_honours_the_server() {
        let cfg = ExportConfig::default();
        for attempt in 0..40 {
            let d = backoff(&cfg, attempt, None);
            assert!(d <= cfg.retry.max, "{d:?}");
            let base = cfg.retry.initial.saturating_mul(1 << attempt.min(20)).min(cfg.retry.max);
            assert!(d >= base / 2, "{d:?}");
        }
        assert_eq!(backoff(&cfg, 0, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(backoff(&cfg, 0, Some(Duration::from_secs(7000))), cfg.retry.max);
    }

    #[test]
    fn splitting_respects_the_byte_limit_and_keeps_order() {
        use opentelemetry_proto::tonic::logs::v1::LogRecord;
        let rl = |n: usize| ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord { time_unix_nano: n as u64, ..Default::default() }; n],
                ..Default::default()
            }],
            ..Default::default()
        };
        let items: Vec<ResourceLogs> = (1..=30).map(rl).collect();
        let total: usize = items.iter().map(|i| i.encoded_len()).sum();
        let parts = split_by_bytes(sized(items.clone()), 1024);
        assert!(parts.len() > 1);
        for p in &parts {
            let size: usize = p.iter().map(|i| i.encoded_len()).sum();
            assert!(size <= 1024 || p.len() == 1, "{size}");
        }
        let flat: Vec<ResourceLogs> = parts.into_iter().flatten().collect();
        assert_eq!(flat, items);
        assert_eq!(split_by_bytes(sized(items), total).len(), 1);
    }

    #[test]
    fn one_oversized_delivery_is_chopped_into_requests_under_the_limit() {
        use opentelemetry_proto::tonic::logs::v1::LogRecord;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let record =
            |i: u64| LogRecord { time_unix_nano: i, severity_text: "x".repeat(1000), ..Default::default() };
        let big = ResourceLogs {
            resource: Some(Resource::default()),
            scope_logs: vec![ScopeLogs {
                log_records: (0..1000).map(record).collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let small = ResourceLogs { scope_logs: vec![ScopeLogs::default()], ..Default::default() };
        let max = 64 * 1024;
        let parts = split_by_bytes(chop(sized(vec![small.clone(), big]), max), max);
        for p in &parts {
            let size: usize = p.iter().map(|i| i.encoded_len()).sum();
            assert!(size <= max, "request of {size} bytes");
        }
        let times: Vec<u64> = parts
            .iter()
            .flatten()
            .flat_map(|rl| {
                rl.scope_logs.iter().flat_map(|sl| sl.log_records.iter().map(|r| r.time_unix_nano))
            })
            .collect();
        assert_eq!(times, (0..1000).collect::<Vec<_>>(), "every record once, in order");
        assert_eq!(parts[0][0], small, "groups under the limit are left alone");
    }

    #[test]
    fn merging_keeps_every_record() {
        use opentelemetry_proto::tonic::logs::v1::LogRecord;
        let rl = |n: usize| ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![LogRecord::default(); n], ..Default::default() }],
            ..Default::default()
        };
        let merged = merge(vec![rl(2), rl(3)]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].scope_logs[0].log_records.len(), 5);
    }

    #[test]
    fn spans_are_chopped_and_merged_by_resource_and_scope() {
        use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let group = |resource: &str, scope: &str, ids: std::ops::Range<u8>| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![crate::signals::attrs::kv("r", resource)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: scope.into(), ..Default::default() }),
                spans: ids
                    .map(|i| Span { span_id: vec![i; 8], name: "x".repeat(2000), ..Default::default() })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        // Over the limit: split into parts that each keep the resource and scope.
        let max = 16 * 1024;
        let parts = chop(sized(vec![group("a", "s", 0..40)]), max);
        assert!(parts.len() > 1);
        for (p, size) in &parts {
            assert!(*size <= max, "part of {size} bytes");
            assert_eq!(p.resource, group("a", "s", 0..0).resource);
            assert_eq!(p.scope_spans[0].scope, group("a", "s", 0..0).scope_spans[0].scope);
        }
        // Merged back: adjacent groups of one resource become one, scopes kept apart, another
        // resource left on its own; every span once, in order.
        let mut items: Vec<ResourceSpans> = parts.into_iter().map(|(p, _)| p).collect();
        items.push(group("a", "t", 40..42));
        items.push(group("b", "s", 42..44));
        let merged = merge(items);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].scope_spans.len(), 2);
        let ids: Vec<u8> = merged
            .iter()
            .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter().map(|s| s.span_id[0])))
            .collect();
        assert_eq!(ids, (0..44).collect::<Vec<_>>());
    }
}
