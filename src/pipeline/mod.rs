//! The export pipeline: buffered deliveries → translator → batches → exporters, with retries.
//!
//! One task reads the buffer in sequence order, translates each delivery, and batches log
//! records and spans (flushed by count, bytes, or when the oldest item waited
//! `OTEL_BLRP_SCHEDULE_DELAY` / `OTEL_BSP_SCHEDULE_DELAY`). Metrics are collected every
//! `OTEL_METRIC_EXPORT_INTERVAL` from the translator and every registered [`MetricsProducer`].
//!
//! # From a delivery to export requests
//! Each pass of [`Pipeline::run`] takes these steps, in this order:
//! 1. *read and translate*: read at most one batch's worth ahead of the exporters, translate
//!    each delivery into resource groups of log records and spans, and queue them
//!    (`batch.rs`). A delivery that no longer parses, or that the translator panics on,
//!    is dropped and counted, so one bad delivery cannot wedge the pipeline.
//! 2. *flush due batches*: a signal's batch is due at `batch.max_items` records,
//!    `batch.max_bytes`, or when its oldest item waited the signal's delay. A due batch is cut
//!    into requests under `batch.max_bytes` (an oversized group is chopped, keeping its resource
//!    and scope; adjacent groups of one resource are merged) and sent in order.
//! 3. *export metrics when due*: see below.
//! 4. *release acknowledged deliveries* from the buffer.
//! 5. *wait*, only when the read found nothing: for new data, the next flush or metric
//!    collection, or cancellation (at most a second).
//!
//! # When a delivery leaves the buffer
//! A delivery is removed once (a) the log and span batches holding its records were acknowledged
//! (or rejected permanently, which is counted) and (b) a metric export that *collected after it
//! was translated* succeeded — the translator folds its metric points into counters, so only
//! such an export proves they reached the backend. Until then it stays on disk and is replayed
//! after a crash; translation is deterministic, so replayed logs and spans are identical
//! duplicates (same ids, same timestamps) that backends de-duplicate or tolerate. The
//! watermarks are kept in `ack.rs`.
//!
//! # When metrics go out early
//! With a long metric interval a busy server would fill the buffer before (b) holds. When the
//! buffer is past `EARLY_METRICS_FILL` and the metric watermark is what keeps deliveries in it
//! (not a logs or spans backend that is down), metrics are exported early, at most once per
//! `EARLY_METRICS_MIN_GAP`, so that it drains.
//!
//! # Retries and memory
//! A retryable failure blocks the pipeline on that batch (capped exponential backoff with full
//! jitter, or the server's Retry-After/RetryInfo; see `retry.rs`): nothing more is read from the
//! buffer, so memory stays bounded while data waits on disk and ingest keeps answering 200 until
//! the buffer cap turns it to 503. A 5xx is retried `retry.max_attempts_5xx` times at most; a
//! request refused as too large (413) is sent again in halves. What is refused for good is
//! counted and kept in the dead-letter store (`crate::deadletter`), and the pipeline moves on.
//!
//! # Ordering
//! Deliveries are read and translated in sequence order; within a signal, requests are sent one
//! at a time in that order, logs before spans before metrics in a pass. Nothing is sent
//! concurrently, so a backend sees each signal in the order it was received.
//!
//! # Shutdown
//! On cancellation the pipeline keeps going for `export.shutdown_timeout`: it reads what is on
//! disk, then sends parked trace parts as their own traces, flushes every batch and exports
//! metrics once more. Whatever is not acknowledged by the deadline stays on disk for the next
//! start.

mod ack;
mod batch;
mod producer;
mod retry;
mod shutdown;

pub use crate::telemetry::export::ExportMetrics;
pub use producer::MetricsProducer;
pub use retry::backoff;

use crate::buffer::{Buffer, Delivery};
use crate::deadletter::DeadLetters;
use crate::exporter::config::{ExportConfig, Signal};
use crate::exporter::{Exporters, Payload};
use crate::mist::Envelope;
use crate::signals::{Input, Translator, TranslatorStats};
use crate::telemetry::export::{DropReason, TranslatorGauges, set_count};
use ack::Acks;
use batch::{Due, Group, Pending};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use retry::{Sender, Sent};
use shutdown::Shutdown;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The pipeline's inputs.
pub struct Pipeline {
    buffer: Buffer,
    translator: Translator,
    exporters: Exporters,
    cfg: ExportConfig,
    attributes: HashMap<String, BTreeMap<String, String>>,
    producers: Vec<Arc<dyn MetricsProducer>>,
    metrics: ExportMetrics,
    dead_letters: Option<Arc<DeadLetters>>,
}

/// How many deliveries are read from the buffer at a time.
const READ_CHUNK: usize = 64;

/// Buffer fill (share of `buffer.max_bytes`) above which metrics are exported early. Low, so
/// that each early export releases a modest amount (releasing a quarter of a 256 MiB buffer at
/// once cost a visible pause).
const EARLY_METRICS_FILL: f64 = 1.0 / 16.0;
/// Shortest gap between two metric exports triggered by a filling buffer.
const EARLY_METRICS_MIN_GAP: Duration = Duration::from_secs(1);

/// Endpoint attributes of a delivery whose endpoint is no longer configured.
static NO_ATTRIBUTES: BTreeMap<String, String> = BTreeMap::new();

/// The state of a running pipeline.
struct Run {
    /// The next sequence number to read.
    cursor: u64,
    acks: Acks,
    logs: Pending<ResourceLogs>,
    spans: Pending<ResourceSpans>,
    next_metrics: Instant,
    /// When the last metric export finished.
    last_metrics: Instant,
    shutdown: Shutdown,
    /// Parked trace parts were given up for the final flush.
    parked_released: bool,
}

impl Run {
    /// No log records or spans queued.
    fn batches_empty(&self) -> bool {
        self.logs.is_empty() && self.spans.is_empty()
    }
}

/// What one pass of the loop found.
struct Pass {
    /// Cancelled: flushing (as of the start of the pass).
    draining: bool,
    /// The read found nothing new: everything on disk is translated.
    caught_up: bool,
    /// After translating.
    now: Instant,
}

impl Pass {
    /// The final flush: draining and nothing left to read.
    fn flush_all(&self) -> bool {
        self.draining && self.caught_up
    }
}

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
        Self { buffer, translator, exporters, cfg, attributes, producers, metrics, dead_letters: None }
    }

    /// Keeps requests refused for good in `store` instead of dropping them.
    pub fn with_dead_letters(mut self, store: Arc<DeadLetters>) -> Self {
        self.dead_letters = Some(store);
        self
    }

    /// Runs until `cancel`, then flushes what it can within `export.shutdown_timeout` and
    /// returns (the rest stays on disk).
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut run = Run {
            cursor: 0,
            acks: Acks::default(),
            logs: Pending::default(),
            spans: Pending::default(),
            next_metrics: Instant::now() + self.cfg.metric_interval,
            last_metrics: Instant::now(),
            shutdown: Shutdown::new(cancel, self.cfg.shutdown_timeout),
            parked_released: false,
        };
        loop {
            run.shutdown.observe();
            let draining = run.shutdown.draining();
            if run.shutdown.expired() {
                break;
            }
            let got = self.read_and_translate(&mut run).await;
            let pass = Pass { draining, caught_up: !got, now: Instant::now() };
            if self.flush_due(&mut run, &pass).await == Sent::Abandoned
                || self.export_metrics_when_due(&mut run, &pass).await == Sent::Abandoned
            {
                break;
            }
            self.release_acknowledged(&mut run).await;
            self.buffer.refresh_age(crate::clock::now_ns());
            if let Some(d) = &self.dead_letters {
                d.refresh_now_and_then();
            }
            if pass.flush_all() && run.batches_empty() {
                break;
            }
            if !got && !draining {
                self.wait(&run).await;
            }
        }
        let (left, bytes) = self.buffer.depth();
        tracing::info!(deliveries_left = left, bytes_left = bytes, "export pipeline stopped");
    }

    /// Step 1: reads what is there (never more than one batch's worth ahead of the exporters)
    /// and translates it into the batches. True when something was read.
    async fn read_and_translate(&mut self, run: &mut Run) -> bool {
        let room = self.cfg.batch.max_items.saturating_sub(run.logs.records().max(run.spans.records()));
        let batch = if room > 0 { self.read(run.cursor, room).await } else { Vec::new() };
        // Refreshed every pass (so at most one batch behind), cheap: a few counters.
        mirror(&self.metrics.translator, &self.translator.stats());
        let got = !batch.is_empty();
        for d in batch {
            run.cursor = d.seq + 1;
            run.acks.translated(d.seq);
            self.metrics.deliveries.inc();
            self.translate(run, &d);
        }
        run.acks.idle(run.logs.is_empty(), run.spans.is_empty());
        got
    }

    /// Reads up to `room` deliveries from `cursor`; none (after a pause) if the buffer fails.
    async fn read(&self, cursor: u64, room: usize) -> Vec<Delivery> {
        let read = self.buffer.read(cursor, READ_CHUNK.min(room.max(1)), self.cfg.batch.max_bytes as u64);
        match read.await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the buffer");
                tokio::time::sleep(Duration::from_millis(500)).await;
                Vec::new()
            }
        }
    }

    /// Translates one delivery and queues its log records and spans.
    fn translate(&mut self, run: &mut Run, d: &Delivery) {
        let env = match Envelope::parse(&d.body) {
            Ok(e) => e,
            Err(e) => {
                // Ingest parsed it before storing; only corruption gets here.
                tracing::warn!(seq = d.seq, error = %e, "buffered delivery does not parse; dropped");
                self.metrics.delivery_dropped(DropReason::Unparseable);
                return;
            }
        };
        let input = Input {
            endpoint: &d.endpoint,
            endpoint_attributes: self.attributes.get(&d.endpoint).unwrap_or(&NO_ATTRIBUTES),
            received_at_ns: d.received_at_ns,
            envelope: &env,
        };
        let translator = &mut self.translator;
        // A translator bug must not wedge the pipeline on one delivery forever.
        let out =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| translator.translate(&input))) {
                Ok(t) => t,
                Err(_) => {
                    tracing::error!(seq = d.seq, topic = %env.topic, "translator panicked; delivery dropped");
                    self.metrics.delivery_dropped(DropReason::TranslatePanic);
                    return;
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

    /// Step 2: sends the log and span batches that are due (all of them in the final flush,
    /// with the parked trace parts).
    async fn flush_due(&mut self, run: &mut Run, pass: &Pass) -> Sent {
        if pass.flush_all() && !run.parked_released {
            // Everything on disk is translated: permits still waiting for a join will not
            // get one from this process; send them as their own traces with the flush.
            run.parked_released = true;
            for rs in self.translator.release_parked() {
                run.spans.push(rs, pass.now);
            }
        }
        let b = &self.cfg.batch;
        let due = |delay| Due {
            all: pass.flush_all(),
            max_items: b.max_items,
            max_bytes: b.max_bytes,
            delay,
            now: pass.now,
        };
        let logs_due = run.logs.due(&due(b.logs_delay));
        let spans_due = run.spans.due(&due(b.spans_delay));
        if logs_due && self.flush(run, Signal::Logs, |r| &mut r.logs, logs_request).await == Sent::Abandoned {
            return Sent::Abandoned;
        }
        if spans_due
            && self.flush(run, Signal::Traces, |r| &mut r.spans, spans_request).await == Sent::Abandoned
        {
            return Sent::Abandoned;
        }
        Sent::Done
    }

    /// Sends one signal's batch as requests and acknowledges it through what was translated.
    async fn flush<G: Group>(
        &self,
        run: &mut Run,
        signal: Signal,
        batch: fn(&mut Run) -> &mut Pending<G>,
        request: fn(Vec<G>) -> Payload,
    ) -> Sent {
        let through = run.acks.through();
        let requests = batch(run).requests(self.cfg.batch.max_bytes).map(request);
        if self.sender().send_all(&mut run.shutdown, requests).await == Sent::Abandoned {
            return Sent::Abandoned;
        }
        run.acks.ack(signal, through);
        Sent::Done
    }

    /// Step 3: exports metrics at the interval, early when the buffer fills up with deliveries
    /// only the metric watermark holds, and once more in the final flush.
    async fn export_metrics_when_due(&mut self, run: &mut Run, pass: &Pass) -> Sent {
        let pressure = pass.now >= run.last_metrics + EARLY_METRICS_MIN_GAP && self.held_by_metrics(run);
        let last = pass.flush_all() && run.batches_empty();
        if !(pass.now >= run.next_metrics || pressure || last) {
            return Sent::Done;
        }
        let through = run.acks.through();
        if self.export_metrics(run).await == Sent::Abandoned {
            return Sent::Abandoned;
        }
        run.acks.ack(Signal::Metrics, through);
        run.last_metrics = Instant::now();
        run.next_metrics = run.last_metrics + self.cfg.metric_interval;
        Sent::Done
    }

    /// Collects the translator's and the producers' metrics and sends them (if any).
    async fn export_metrics(&mut self, run: &mut Run) -> Sent {
        let now = crate::clock::now_ns();
        let mut rms = self.translator.collect_metrics(now);
        for p in &self.producers {
            rms.extend(p.collect(now));
        }
        if rms.is_empty() {
            return Sent::Done;
        }
        let payload = Payload::Metrics(ExportMetricsServiceRequest { resource_metrics: rms });
        self.sender().send(&mut run.shutdown, payload).await
    }

    /// True when the buffer is past EARLY_METRICS_FILL and the metric watermark is what keeps
    /// deliveries in it (not a logs or spans backend that is down).
    fn held_by_metrics(&self, run: &Run) -> bool {
        run.acks.metrics_behind() && self.buffer.fill() > EARLY_METRICS_FILL
    }

    /// Step 4: removes the deliveries every signal has acknowledged.
    async fn release_acknowledged(&self, run: &mut Run) {
        if let Some(a) = run.acks.releasable()
            && self.buffer.remove_through(a).await
        {
            run.acks.released(a);
        }
    }

    /// Step 5 (idle): sleeps until new data, the next flush, the next metric collection or
    /// cancellation, at most a second.
    async fn wait(&self, run: &Run) {
        let mut wake = run.next_metrics;
        for at in
            [run.logs.flush_at(self.cfg.batch.logs_delay), run.spans.flush_at(self.cfg.batch.spans_delay)]
        {
            wake = at.map_or(wake, |at| wake.min(at));
        }
        if self.held_by_metrics(run) {
            wake = wake.min(run.last_metrics + EARLY_METRICS_MIN_GAP);
        }
        let wait = wake.saturating_duration_since(Instant::now()).min(Duration::from_secs(1));
        tokio::select! {
            _ = self.buffer.wait_for(run.cursor, wait) => {}
            _ = run.shutdown.cancelled() => {}
        }
    }

    fn sender(&self) -> Sender<'_> {
        Sender {
            exporters: &self.exporters,
            dead_letters: self.dead_letters.as_deref(),
            cfg: &self.cfg,
            metrics: &self.metrics,
        }
    }
}

/// A log request from a batch's groups.
fn logs_request(resource_logs: Vec<ResourceLogs>) -> Payload {
    Payload::Logs(ExportLogsServiceRequest { resource_logs })
}

/// A trace request from a batch's groups.
fn spans_request(resource_spans: Vec<ResourceSpans>) -> Payload {
    Payload::Traces(ExportTraceServiceRequest { resource_spans })
}

/// Mirrors the translator's statistics into its gauges.
fn mirror(g: &TranslatorGauges, s: &TranslatorStats) {
    set_count(&g.correlation_entries, s.correlation_entries);
    set_count(&g.correlation_evictions, s.correlation_evictions);
    set_count(&g.correlation_parked, s.correlation_parked);
    set_count(&g.metric_series, s.metric_series);
    set_count(&g.metric_series_dropped, s.metric_series_dropped);
    set_count(&g.timestamps_corrected, s.timestamps_corrected);
}
