//! Pure translation of Mist events into OpenTelemetry logs, metrics and spans (no I/O; the
//! clock is passed in).
//!
//! The API the pipeline and the poller use:
//! - [`Translator::translate`]: one delivery in → logs and spans out (deterministic: the same
//!   delivery always yields the same records and ids), metric points folded into the
//!   translator's aggregation state;
//! - [`Translator::collect_metrics`]: the aggregated metrics at a collection time;
//! - [`resource`]: the resource every signal carries, for the poller to reuse.
//!
//! Layout: [`attrs`] (naming), [`logs`], [`metrics`] (definitions and aggregation), [`traces`]
//! (ids and correlation), [`time`] (event times from untrusted numbers: unit by magnitude, a
//! sane window, receipt time otherwise), and one file per topic family ([`alarms`], [`devices`], [`clients`],
//! [`nac`], [`sle`], [`location`]). `docs/signals.md` documents what comes out of each topic.

pub mod alarms;
pub mod attrs;
pub mod clients;
pub mod config;
pub mod devices;
pub mod location;
pub mod logs;
pub mod metrics;
pub mod nac;
pub mod sle;
pub mod time;
pub mod traces;

use crate::mist::Envelope;
use crate::mist::events::{Lenient, MistEvent, parse_event};
use logs::Severity;
use metrics::{Aggregator, SiteKey};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use traces::{Correlator, Parked, SpanId, TraceId};

pub use config::{SignalsConfig, Temporality};
pub use metrics::{METRICS, MetricDef};
pub use time::secs_to_ns;

/// Every topic the translator knows by name (others still become generic logs).
pub const TOPICS: &[&str] = crate::mist::envelope::KNOWN_TOPICS;

/// The names of every metric the translator can emit.
pub fn metric_names() -> Vec<&'static str> {
    METRICS.iter().map(|m| m.name).collect()
}

/// One accepted delivery, as the translator sees it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Name of the endpoint that received it (`default` or a configured name).
    pub endpoint: &'a str,
    /// The endpoint's static attributes, added to the resource.
    pub endpoint_attributes: &'a BTreeMap<String, String>,
    /// Receipt time (nanoseconds since the epoch): the logs' observed time.
    pub received_at_ns: u64,
    /// The parsed body.
    pub envelope: &'a Envelope,
}

/// What one delivery produced now (metrics are aggregated and come from
/// [`Translator::collect_metrics`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translated {
    /// Log records, grouped by resource.
    pub logs: Vec<ResourceLogs>,
    /// Spans, grouped by resource.
    pub spans: Vec<ResourceSpans>,
}

/// The translator's own figures, for self-metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranslatorStats {
    /// Clients held in the trace correlation state.
    pub correlation_entries: u64,
    /// Clients evicted from it (capacity or TTL) since start.
    pub correlation_evictions: u64,
    /// Parts (auth, info, accounting) waiting for their association.
    pub correlation_parked: u64,
    /// Live metric series.
    pub metric_series: u64,
    /// Metric series refused because of `max_metric_series`, since start.
    pub metric_series_dropped: u64,
    /// Events whose time needed correcting (sent in ms/µs/ns, or outside the sane window and
    /// replaced), since start; see [`time`].
    pub timestamps_corrected: u64,
}

/// Translates deliveries; holds the metric aggregation and the bounded correlation state.
pub struct Translator {
    cfg: SignalsConfig,
    metrics: Aggregator,
    corr: Correlator,
    /// Static attributes of each endpoint seen, for the metrics' resources.
    endpoints: BTreeMap<String, BTreeMap<String, String>>,
    /// Resources of logs and spans already built, by origin: most deliveries come from a few
    /// sites, and building one costs a sorted map and an allocation per attribute. Emptied when
    /// it reaches [`RESOURCE_CACHE_MAX`] or an endpoint's attributes change.
    resources: HashMap<Origin, Resource>,
    /// See [`TranslatorStats::timestamps_corrected`].
    timestamps_corrected: u64,
}

/// Most resources the translator keeps built (one per endpoint × org × site × site name).
const RESOURCE_CACHE_MAX: usize = 4096;

/// Instrumentation scope name on everything the translator emits.
pub const SCOPE: &str = "mist-otel";

/// Where an event comes from: the site resource of its signals (`site_name` is added to logs
/// and spans only).
pub type Origin = (SiteKey, Option<String>);

/// What a topic family decided about one event; the log record is built from it.
#[derive(Debug, Clone)]
pub struct EventOut {
    /// Record severity.
    pub severity: Severity,
    /// Human body.
    pub body: String,
    /// Semantic attributes.
    pub attrs: Vec<KeyValue>,
    /// Raw fields already represented by `attrs` (not repeated as `mist.event.*`).
    pub consumed: &'static [&'static str],
    /// Raw fields replaced by a decoded value (audits' JSON-encoded strings).
    pub decoded: Vec<(&'static str, Value)>,
    /// The span this record belongs to.
    pub trace: Option<(TraceId, SpanId)>,
}

impl EventOut {
    fn new(topic: &str) -> Self {
        Self {
            severity: Severity::Info,
            body: [topic, " event"].concat(),
            attrs: Vec::new(),
            consumed: &[],
            decoded: Vec::new(),
            trace: None,
        }
    }
}

/// What a topic family may touch while translating one event.
pub struct Cx<'a> {
    /// Configuration.
    pub cfg: &'a SignalsConfig,
    /// Metric aggregation.
    pub metrics: &'a mut Aggregator,
    /// Trace correlation.
    pub corr: &'a mut Correlator,
    /// Spans produced, with their origin.
    pub spans: &'a mut Vec<(Origin, Span)>,
    /// The event's origin.
    pub origin: &'a Origin,
    /// Receipt time, ns.
    pub received_ns: u64,
    /// The event's time (its own, else receipt), ns.
    pub time_ns: u64,
}

impl Cx<'_> {
    /// Adds `n` to a counter of this event's site.
    pub fn count(&mut self, def: &MetricDef, labels: Vec<(&'static str, String)>, n: i64) {
        self.metrics.add(def, &self.origin.0, labels, n, self.received_ns);
    }

    /// Sets a gauge of this event's site at the event's time.
    pub fn gauge(&mut self, def: &MetricDef, labels: Vec<(&'static str, String)>, value: f64) {
        self.metrics.gauge(def, &self.origin.0, labels, value, self.time_ns);
    }

    /// Records a histogram value for this event's site.
    pub fn hist(&mut self, def: &MetricDef, labels: Vec<(&'static str, String)>, value: f64) {
        self.metrics.record(def, &self.origin.0, labels, value, self.received_ns);
    }

    /// Org and site ids as id inputs (empty when absent).
    pub fn ids(&self) -> (&str, &str) {
        (self.origin.0.org.as_deref().unwrap_or(""), self.origin.0.site.as_deref().unwrap_or(""))
    }

    /// Emits parked spans released into association `a` or let go.
    pub fn emit_released(&mut self, released: Vec<Parked>, a: &traces::Assoc) {
        for p in released {
            self.spans.push(p.into_span(a));
        }
    }

    /// Emits parked parts that were evicted or expired: auths as their own traces, the rest
    /// dropped.
    pub fn emit_evicted(&mut self, evicted: Vec<Parked>) {
        self.spans.extend(evicted.into_iter().filter_map(Parked::into_standalone));
    }

    /// When a parked part is given up, on the receipt clock.
    pub fn park_deadline(&self) -> u64 {
        let w = u64::try_from(self.cfg.nac_join_window.as_nanos()).unwrap_or(u64::MAX);
        self.received_ns.saturating_add(w.saturating_mul(2))
    }
}

impl Translator {
    /// Creates a translator.
    pub fn new(cfg: &SignalsConfig) -> Self {
        let ttl_ns = u64::try_from(cfg.correlation_ttl.as_nanos()).unwrap_or(u64::MAX);
        let window_us = i64::try_from(cfg.nac_join_window.as_micros()).unwrap_or(i64::MAX / 4);
        Self {
            cfg: cfg.clone(),
            metrics: Aggregator::new(cfg),
            corr: Correlator::new(cfg.correlation_capacity, ttl_ns, window_us),
            endpoints: BTreeMap::new(),
            resources: HashMap::new(),
            timestamps_corrected: 0,
        }
    }

    /// The translator's own figures.
    pub fn stats(&self) -> TranslatorStats {
        TranslatorStats {
            correlation_entries: self.corr.len() as u64,
            correlation_evictions: self.corr.evictions(),
            correlation_parked: self.corr.parked() as u64,
            metric_series: self.metrics.series_count() as u64,
            metric_series_dropped: self.metrics.dropped(),
            timestamps_corrected: self.timestamps_corrected,
        }
    }

    /// Translates one delivery.
    pub fn translate(&mut self, input: &Input<'_>) -> Translated {
        self.note_endpoint(input);
        let mut spans: Vec<(Origin, Span)> = Vec::new();
        let expired = self.corr.expire(input.received_at_ns);
        spans.extend(expired.into_iter().filter_map(Parked::into_standalone));

        let mut logs: Vec<(Origin, LogRecord)> = Vec::with_capacity(input.envelope.events.len());
        for ev in &input.envelope.events {
            logs.push(self.translate_event(input, ev, &mut spans));
        }
        self.assemble(logs, spans)
    }

    /// Remembers the delivering endpoint's attributes; a change (or a full cache) empties the
    /// resource cache so no resource carries stale attributes.
    fn note_endpoint(&mut self, input: &Input<'_>) {
        if !self.endpoints.contains_key(input.endpoint)
            || self.endpoints[input.endpoint] != *input.endpoint_attributes
        {
            self.endpoints.insert(input.endpoint.to_owned(), input.endpoint_attributes.clone());
            self.resources.clear();
        }
        if self.resources.len() >= RESOURCE_CACHE_MAX {
            self.resources.clear();
        }
    }

    /// One event of the delivery: its topic family folds metrics and adds spans; the log
    /// record is returned with its origin.
    fn translate_event(
        &mut self,
        input: &Input<'_>,
        ev: &Map<String, Value>,
        spans: &mut Vec<(Origin, Span)>,
    ) -> (Origin, LogRecord) {
        let topic = input.envelope.topic.as_str();
        let origin = origin(input.endpoint, ev);
        // A malformed known-topic event degrades to the generic log.
        let typed = parse_event(topic, ev).unwrap_or(MistEvent::Unknown);
        let (time_ns, corrected) = event_time(&typed, ev, input.received_at_ns);
        self.timestamps_corrected += u64::from(corrected);
        let mut out = EventOut::new(topic);
        let mut cx = Cx {
            cfg: &self.cfg,
            metrics: &mut self.metrics,
            corr: &mut self.corr,
            spans,
            origin: &origin,
            received_ns: input.received_at_ns,
            time_ns: time_ns.unwrap_or(input.received_at_ns),
        };
        dispatch(&mut cx, topic, &typed, ev, &mut out);
        let time = time_ns.unwrap_or(input.received_at_ns);
        let record = logs::record(topic, ev, out, time, input.received_at_ns);
        (origin, record)
    }

    /// Groups records and spans by origin under their (cached) resources.
    fn assemble(&mut self, logs: Vec<(Origin, LogRecord)>, spans: Vec<(Origin, Span)>) -> Translated {
        let cfg = &self.cfg;
        let endpoints = &self.endpoints;
        let resources = &mut self.resources;
        let mut resource_of = |o: Origin| -> Resource {
            resources.entry(o).or_insert_with_key(|o| event_resource(cfg, endpoints, o)).clone()
        };
        let logs = group(logs)
            .into_iter()
            .map(|(o, records)| ResourceLogs {
                resource: Some(resource_of(o)),
                scope_logs: vec![ScopeLogs { scope: scope(), log_records: records, ..Default::default() }],
                ..Default::default()
            })
            .collect();
        let spans =
            group(spans).into_iter().map(|(o, spans)| resource_spans(resource_of(o), spans)).collect();
        Translated { logs, spans }
    }

    /// Gives up every parked part now and returns the spans that stand alone (NAC permits whose
    /// join never came): called at shutdown, so a permit waiting for its join is exported as its
    /// own trace instead of vanishing with the process.
    pub fn release_parked(&mut self) -> Vec<ResourceSpans> {
        let released: Vec<(Origin, Span)> =
            self.corr.expire(u64::MAX).into_iter().filter_map(Parked::into_standalone).collect();
        group(released)
            .into_iter()
            .map(|(o, spans)| resource_spans(event_resource(&self.cfg, &self.endpoints, &o), spans))
            .collect()
    }

    /// The aggregated metrics as of `now_ns`.
    pub fn collect_metrics(&mut self, now_ns: u64) -> Vec<ResourceMetrics> {
        let (cfg, endpoints) = (&self.cfg, &self.endpoints);
        self.metrics.collect(now_ns, |site| event_resource(cfg, endpoints, &(site.clone(), None)))
    }
}

/// Hands one typed event to its topic family, which fills `out` (and may count, park or emit
/// spans through `cx`).
fn dispatch(cx: &mut Cx<'_>, topic: &str, typed: &MistEvent, ev: &Map<String, Value>, out: &mut EventOut) {
    match typed {
        MistEvent::Alarm(a) => alarms::alarm(cx, a, out),
        MistEvent::Audit(a) => alarms::audit(cx, a, out),
        MistEvent::DeviceEvent(e) => devices::device_event(cx, e, out),
        MistEvent::DeviceUpdown(e) => devices::updown(cx, e, out),
        MistEvent::MxedgeEvent(e) => devices::mxedge(cx, e, out),
        MistEvent::ClientJoin(e) => clients::join(cx, e, out),
        MistEvent::ClientSession(e) => clients::session(cx, e, out),
        MistEvent::ClientInfo(e) => clients::info(cx, e, out),
        MistEvent::ClientLatency(e) => clients::latency(cx, e, out),
        MistEvent::GuestAuthorization(e) => clients::guest(cx, e, out),
        MistEvent::NacEvent(e) => nac::event(cx, e, out),
        MistEvent::NacAccounting(e) => nac::accounting(cx, e, out),
        MistEvent::SiteSle(e) => sle::site_sle(cx, e, out),
        MistEvent::OccupancyAlerts(e) => sle::occupancy(cx, e, out),
        MistEvent::MinisApplication(e) => sle::minis_application(cx, e, out),
        MistEvent::MinisReachability(e) => sle::minis_reachability(cx, e, out),
        MistEvent::Location(e) => location::location(topic, e, out),
        MistEvent::Unknown => location::generic(topic, ev, out),
    }
}

/// The instrumentation scope of everything the translator emits.
fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope { name: SCOPE.into(), ..Default::default() })
}

/// One resource's spans under the translator's scope.
fn resource_spans(resource: Resource, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(resource),
        scope_spans: vec![ScopeSpans { scope: scope(), spans, ..Default::default() }],
        ..Default::default()
    }
}

/// Groups items by origin, keeping the order of first appearance (deliveries rarely mix
/// sites, so a linear scan is cheapest).
fn group<T>(items: Vec<(Origin, T)>) -> Vec<(Origin, Vec<T>)> {
    let mut out: Vec<(Origin, Vec<T>)> = Vec::new();
    for (o, item) in items {
        match out.iter_mut().find(|(k, _)| *k == o) {
            Some((_, v)) => v.push(item),
            None => out.push((o, vec![item])),
        }
    }
    out
}

pub(crate) fn str_field(ev: &Map<String, Value>, k: &str) -> Option<String> {
    ev.get(k).cloned().and_then(String::from_json).filter(|s| !s.trim().is_empty())
}

fn origin(endpoint: &str, ev: &Map<String, Value>) -> Origin {
    (
        SiteKey {
            endpoint: endpoint.to_owned(),
            org: str_field(ev, "org_id"),
            site: str_field(ev, "site_id"),
        },
        str_field(ev, "site_name"),
    )
}

/// The resource of an origin's signals, with the static attributes of the origin's own endpoint
/// (not necessarily the current delivery's: a span parked by another endpoint's event can be
/// released during this one).
fn event_resource(
    cfg: &SignalsConfig,
    endpoints: &BTreeMap<String, BTreeMap<String, String>>,
    o: &Origin,
) -> Resource {
    let endpoint_attrs = endpoints.get(&o.0.endpoint).into_iter().flatten();
    let mut extra: Vec<(&str, &str)> = endpoint_attrs.map(|(k, v)| (k.as_str(), v.as_str())).collect();
    extra.push((attrs::WEBHOOK_ENDPOINT, o.0.endpoint.as_str()));
    if let Some(org) = &o.0.org {
        extra.push((attrs::ORG_ID, org));
    }
    if let Some(site) = &o.0.site {
        extra.push((attrs::SITE_ID, site));
    }
    if let Some(name) = &o.1 {
        extra.push((attrs::SITE_NAME, name));
    }
    resource(cfg, &extra)
}

/// The resource of every signal: `service.name`, the configured static attributes, then
/// `extra` (later entries win), sorted by key. The poller passes `mist.org.id`/`mist.site.id`.
pub fn resource(cfg: &SignalsConfig, extra: &[(&str, &str)]) -> Resource {
    let mut m: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in &cfg.resource_attributes {
        m.insert(k, v);
    }
    m.insert(attrs::SERVICE_NAME, &cfg.service_name);
    for (k, v) in extra {
        if *k != attrs::SERVICE_NAME {
            m.insert(k, v);
        }
    }
    Resource { attributes: m.into_iter().map(|(k, v)| attrs::kv(k, v)).collect(), ..Default::default() }
}

/// The event's own time: `timestamp`, else the topic's own time field, each read by
/// [`time::read`] (unit by magnitude, sane window). `None` → receipt. The flag says whether a
/// value needed correcting.
fn event_time(typed: &MistEvent, ev: &Map<String, Value>, received_ns: u64) -> (Option<u64>, bool) {
    let generic = logs::raw_timestamp(ev);
    let first =
        |candidates: &[Option<f64>]| time::first(candidates.iter().copied().chain([generic]), received_ns);
    match typed {
        MistEvent::Alarm(a) => first(&[a.timestamp, a.last_seen]),
        MistEvent::ClientJoin(j) => first(&[j.timestamp, j.connect_float, j.connect]),
        MistEvent::ClientSession(s) => first(&[s.timestamp, s.disconnect_float, s.disconnect]),
        MistEvent::GuestAuthorization(g) => first(&[g.authorized_time]),
        MistEvent::Location(l) => first(&[l.timestamp, l.last_seen]),
        MistEvent::OccupancyAlerts(o) => {
            let alert_time = o.alert_events.iter().flatten().find_map(|a| a.timestamp);
            first(&[o.timestamp, alert_time])
        }
        _ => first(&[]),
    }
}

#[cfg(test)]
mod tests;
