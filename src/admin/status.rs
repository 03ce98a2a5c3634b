//! The status page on the admin listener: what arrived recently, what was rejected and why, a
//! live tail of events, and the health of export, buffer and poller as read from the
//! self-metrics registry.
//!
//! Routes: `/` (server-rendered HTML, a few lines of vanilla JS), `/status.json` (the same data)
//! and `/status/events` (Server-Sent Events, one per accepted event).
//!
//! Everything kept here is bounded: fixed-size rings for deliveries and events, and a cap on the
//! number of distinct topics (further unknown topics are counted as `other`), so a sender cannot
//! grow the server's memory through this page.

use crate::ingest::Observer;
use crate::mist::envelope::Envelope;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use bytes::Bytes;
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How many recent deliveries the page keeps.
const RECENT_DELIVERIES: usize = 100;
/// How many recent events the live tail keeps (and shows on first load).
const RECENT_EVENTS: usize = 200;
/// Distinct topic rows before further topics are folded into `other`.
const MAX_TOPICS: usize = 64;
/// Longest event summary kept, in characters.
const SUMMARY_CHARS: usize = 400;
/// Events queued per SSE subscriber before it skips ahead.
const SSE_QUEUE: usize = 256;

/// One request as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// Receipt time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Endpoint name.
    pub endpoint: String,
    /// Topic, when the body was parsed (rejections happen before parsing).
    pub topic: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Events in the delivery.
    pub events: usize,
    /// `verified` or `rejected: <why>`.
    pub outcome: String,
}

/// Totals for one topic.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TopicStats {
    /// Deliveries answered 200.
    pub accepted: u64,
    /// Events in accepted deliveries.
    pub events: u64,
    /// Deliveries answered with an error.
    pub rejected: u64,
    /// Outcome of the latest delivery.
    pub last_outcome: String,
    /// Time of the latest delivery, ms since the epoch.
    pub last_at_ms: u64,
}

/// One event in the live tail.
#[derive(Debug, Clone, Serialize)]
pub struct TailEvent {
    /// Receipt time, ms since the epoch.
    pub received_at_ms: u64,
    /// The event's own `timestamp` (seconds), when it has one.
    pub timestamp: Option<f64>,
    /// Endpoint name.
    pub endpoint: String,
    /// Topic.
    pub topic: String,
    /// A short `key=value` summary of the event's scalar fields.
    pub summary: String,
}

/// Most bytes of accepted bodies kept unparsed until someone looks (see [`StatusBoard`]).
const PENDING_BYTES: usize = 8 * 1024 * 1024;

/// An accepted delivery not yet summarised into tail events.
struct PendingDelivery {
    endpoint: String,
    received_at_ns: u64,
    body: Bytes,
}

#[derive(Default)]
struct Inner {
    topics: BTreeMap<String, TopicStats>,
    deliveries: VecDeque<DeliveryRecord>,
    events: VecDeque<TailEvent>,
    pending: VecDeque<PendingDelivery>,
    pending_bytes: usize,
}

impl Inner {
    fn push_event(&mut self, item: TailEvent) {
        if self.events.len() == RECENT_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(item);
    }

    /// Summarises the kept bodies into tail events, oldest first.
    fn drain_pending(&mut self) {
        self.pending_bytes = 0;
        while let Some(d) = self.pending.pop_front() {
            for item in tail_events(&d.endpoint, &d.body, d.received_at_ns) {
                self.push_event(item);
            }
        }
    }
}

/// The tail events of one accepted body (which ingest has already validated).
fn tail_events(endpoint: &str, body: &[u8], received_at_ns: u64) -> Vec<TailEvent> {
    let Ok(envelope) = Envelope::parse(body) else { return Vec::new() };
    let skip = envelope.events.len().saturating_sub(RECENT_EVENTS);
    envelope
        .events
        .iter()
        .skip(skip)
        .map(|ev| TailEvent {
            received_at_ms: received_at_ns / 1_000_000,
            timestamp: ev.get("timestamp").and_then(Value::as_f64),
            endpoint: endpoint.to_owned(),
            topic: envelope.topic.clone(),
            summary: summarize(ev),
        })
        .collect()
}

/// Collects what the status page shows. Register it with `IngestState::with_observer`.
///
/// Accepted bodies are kept as received (a reference-counted view, no copy) and only parsed into
/// tail events when the page, `/status.json` or a live-tail subscriber asks: the webhook path
/// never parses a body twice for the page's sake.
pub struct StatusBoard {
    inner: Mutex<Inner>,
    tail: broadcast::Sender<TailEvent>,
    started: Instant,
}

impl Default for StatusBoard {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Row name for requests rejected before their topic was known.
pub const UNPARSED: &str = "(not parsed)";

impl StatusBoard {
    /// An empty board.
    pub fn new() -> Self {
        let (tail, _) = broadcast::channel(SSE_QUEUE);
        Self { inner: Mutex::new(Inner::default()), tail, started: Instant::now() }
    }

    /// Recent deliveries, newest first.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.lock().deliveries.iter().rev().cloned().collect()
    }

    /// Per-topic totals.
    pub fn topics(&self) -> BTreeMap<String, TopicStats> {
        self.lock().topics.clone()
    }

    /// Recent events, newest first.
    pub fn events(&self) -> Vec<TailEvent> {
        let mut inner = self.lock();
        inner.drain_pending();
        inner.events.iter().rev().cloned().collect()
    }

    /// A receiver of events accepted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<TailEvent> {
        self.tail.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock must not take the status page down with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Observer for StatusBoard {
    fn observe(&self, endpoint: &str, topic: Option<&str>, status: u16, events: usize, reason: Option<&str>) {
        let at_ms = now_ms();
        let ok = (200..300).contains(&status);
        let mut guard = self.lock();
        let inner = &mut *guard;
        // This runs for every request: once the ring is full, the oldest record is reused, its
        // strings keeping their capacity, so a steady stream allocates nothing here.
        let recycled =
            if inner.deliveries.len() >= RECENT_DELIVERIES { inner.deliveries.pop_front() } else { None };
        let mut rec = recycled.unwrap_or_else(|| DeliveryRecord {
            at_ms,
            endpoint: String::new(),
            topic: None,
            status,
            events,
            outcome: String::new(),
        });
        rec.at_ms = at_ms;
        rec.status = status;
        rec.events = events;
        overwrite(&mut rec.endpoint, endpoint);
        match (topic, &mut rec.topic) {
            (Some(t), Some(kept)) => overwrite(kept, t),
            (t, slot) => *slot = t.map(str::to_owned),
        }
        rec.outcome.clear();
        let _ = match (ok, reason) {
            (true, _) => rec.outcome.write_str("verified"),
            (false, Some(r)) => write!(rec.outcome, "rejected: {r}"),
            (false, None) => write!(rec.outcome, "rejected: HTTP {status}"),
        };
        let key = topic.unwrap_or(UNPARSED);
        let key =
            if inner.topics.contains_key(key) || inner.topics.len() < MAX_TOPICS { key } else { "other" };
        if !inner.topics.contains_key(key) {
            inner.topics.insert(key.to_owned(), TopicStats::default());
        }
        if let Some(row) = inner.topics.get_mut(key) {
            if ok {
                row.accepted += 1;
                row.events += events as u64;
            } else {
                row.rejected += 1;
            }
            overwrite(&mut row.last_outcome, &rec.outcome);
            row.last_at_ms = at_ms;
        }
        inner.deliveries.push_back(rec);
    }

    fn accepted(&self, endpoint: &str, _topic: &str, body: &Bytes, received_at_ns: u64) {
        let mut inner = self.lock();
        if self.tail.receiver_count() == 0 {
            // Nobody watches live: keep the body for later, within a byte and count bound
            // (making room first, so the oldest entry's endpoint string can be reused).
            let mut endpoint_buf = String::new();
            while inner.pending.len() >= RECENT_EVENTS
                || (!inner.pending.is_empty() && inner.pending_bytes + body.len() > PENDING_BYTES)
            {
                if let Some(old) = inner.pending.pop_front() {
                    inner.pending_bytes -= old.body.len();
                    endpoint_buf = old.endpoint;
                }
            }
            overwrite(&mut endpoint_buf, endpoint);
            inner.pending_bytes += body.len();
            inner.pending.push_back(PendingDelivery {
                endpoint: endpoint_buf,
                received_at_ns,
                body: body.clone(),
            });
            return;
        }
        inner.drain_pending();
        for item in tail_events(endpoint, body, received_at_ns) {
            inner.push_event(item.clone());
            // A lagging subscriber skips ahead; the error only says nobody is left.
            let _ = self.tail.send(item);
        }
    }
}

/// Replaces a string's content, keeping its allocation.
fn overwrite(s: &mut String, with: &str) {
    s.clear();
    s.push_str(with);
}

/// Fields that say most about an event, shown first in its summary.
const LEADING_FIELDS: &[&str] = &[
    "type",
    "severity",
    "text",
    "site_name",
    "ap_name",
    "device_name",
    "ap",
    "mac",
    "client_mac",
    "hostname",
    "ssid",
    "reason",
    "message",
];

/// `key=value` pairs of an event's scalar fields, leading fields first, cut to a bounded length.
fn summarize(ev: &Map<String, Value>) -> String {
    let mut out = String::new();
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let leading = LEADING_FIELDS.iter().filter_map(|k| ev.get_key_value(*k));
    let rest = ev.iter().filter(|(k, _)| !LEADING_FIELDS.contains(&k.as_str()) && k.as_str() != "timestamp");
    for (k, v) in leading.chain(rest) {
        let Some(v) = scalar(v) else { continue };
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{k}={v}");
        if out.chars().count() > SUMMARY_CHARS {
            out = out.chars().take(SUMMARY_CHARS).collect();
            out.push('…');
            break;
        }
    }
    out
}

/// One self-metric sample, as read from the registry's text.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// Metric name (with the `mist_otel_` prefix).
    pub name: String,
    /// Labels as `k="v",…` (empty when none).
    pub labels: String,
    /// The value as printed.
    pub value: String,
}

/// Health of a component, as read from its self-metrics.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Whether the component registered any metric.
    pub enabled: bool,
    /// Its samples.
    pub samples: Vec<Sample>,
}

/// Picks the samples whose names start with `prefix` out of Prometheus/OpenMetrics text.
pub fn samples_with_prefix(text: &str, prefix: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').unwrap_or(rest)),
                None => (series, ""),
            };
            Some(Sample { name: name.to_owned(), labels: labels.to_owned(), value: value.to_owned() })
        })
        .collect()
}

/// Splits a Prometheus label string (`a="x",b="y\\"z"`) into pairs, unescaping values.
pub fn parse_labels(labels: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').trim().to_owned(), value));
        rest = &after[end..];
    }
    out
}

/// One site's stream subscription as the poller reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteState {
    /// Site id.
    pub site_id: String,
    /// Stream channel (`devices`, `clients`, …).
    pub channel: String,
    /// Whether the subscription is confirmed now.
    pub subscribed: bool,
}

/// Per-site connection state from the poller's `mist_otel_poller_site_subscribed` gauge.
pub fn poller_sites(samples: &[Sample]) -> Vec<SiteState> {
    samples
        .iter()
        .filter(|s| s.name == "mist_otel_poller_site_subscribed")
        .map(|s| {
            let labels = parse_labels(&s.labels);
            let get =
                |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
            SiteState {
                site_id: get("site_id"),
                channel: get("channel"),
                subscribed: s.value.parse::<f64>().is_ok_and(|v| v >= 1.0),
            }
        })
        .collect()
}

/// The components whose health the page shows: (title, metric prefix).
pub const COMPONENTS: &[(&str, &str)] =
    &[("export", "mist_otel_export_"), ("buffer", "mist_otel_buffer_"), ("poller", "mist_otel_poller_")];

/// Everything on the page, as `/status.json` serves it.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// Server version.
    pub version: &'static str,
    /// Seconds since the board was created.
    pub uptime_secs: u64,
    /// Totals per topic.
    pub topics: BTreeMap<String, TopicStats>,
    /// Recent deliveries, newest first.
    pub deliveries: Vec<DeliveryRecord>,
    /// Recent events, newest first.
    pub events: Vec<TailEvent>,
    /// Health per component (`export`, `buffer`, `poller`).
    pub health: BTreeMap<String, Health>,
    /// Open live-tail streams (pages watching right now).
    pub live_viewers: usize,
    /// The poller's per-site stream state (empty when the poller is off).
    pub poller_sites: Vec<SiteState>,
}

#[derive(Clone)]
struct StatusState {
    board: Arc<StatusBoard>,
    registry: Arc<Registry>,
    cancel: CancellationToken,
}

impl StatusState {
    fn snapshot(&self) -> Snapshot {
        let text = crate::telemetry::render(&self.registry);
        let health: BTreeMap<String, Health> = COMPONENTS
            .iter()
            .map(|(name, prefix)| {
                let samples = samples_with_prefix(&text, prefix);
                ((*name).to_owned(), Health { enabled: !samples.is_empty(), samples })
            })
            .collect();
        let poller_sites = health.get("poller").map(|h| poller_sites(&h.samples)).unwrap_or_default();
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: self.board.started.elapsed().as_secs(),
            topics: self.board.topics(),
            deliveries: self.board.deliveries(),
            events: self.board.events(),
            health,
            live_viewers: self.board.tail.receiver_count(),
            poller_sites,
        }
    }
}

/// The status routes. `cancel` ends open event streams so graceful shutdown is not held up.
pub fn router(board: Arc<StatusBoard>, registry: Arc<Registry>, cancel: CancellationToken) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/status.json", get(json))
        .route("/status/events", get(events))
        .with_state(StatusState { board, registry, cancel })
}

async fn json(State(st): State<StatusState>) -> impl IntoResponse {
    axum::Json(st.snapshot())
}

async fn events(State(st): State<StatusState>) -> impl IntoResponse {
    let rx = st.board.subscribe();
    let stream = futures_util::stream::unfold((rx, st.cancel), |(mut rx, cancel)| async move {
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return None,
                r = rx.recv() => r,
            };
            match next {
                Ok(ev) => {
                    let data = serde_json::to_string(&ev).unwrap_or_default();
                    let item: Result<Event, std::convert::Infallible> = Ok(Event::default().data(data));
                    return Some((item, (rx, cancel)));
                }
                // A slow page skips what it missed rather than holding memory for it.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `HH:MM:SS` UTC of a millisecond epoch time (the page is for "what just happened").
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

async fn page(State(st): State<StatusState>) -> impl IntoResponse {
    let html = render_page(&st.snapshot());
    ([(header::CACHE_CONTROL, "no-store")], Html(html))
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}\
th{background:#f3f3f3}.bad{color:#b00}.ok{color:#070}.muted{color:#888}\
#tail{font:12px monospace;max-height:24em;overflow:auto;list-style:none;padding:0}";

/// Adds each streamed event to the live tail as text (never as HTML), newest on top.
const SCRIPT: &str = "const tail=document.getElementById('tail');\
const es=new EventSource('/status/events');\
es.onmessage=(m)=>{const e=JSON.parse(m.data);const li=document.createElement('li');\
li.textContent=new Date(e.received_at_ms).toISOString().slice(11,19)+' '+e.topic+' '+e.summary;\
tail.prepend(li);while(tail.children.length>200)tail.lastChild.remove();};\
const live=document.getElementById('live');const note=live.textContent;\
es.onopen=()=>{live.textContent=note;};\
es.onerror=()=>{live.textContent='(live tail disconnected; retrying)';};";

/// Renders the page. Every piece of event or request text goes through [`escape`].
pub fn render_page(s: &Snapshot) -> String {
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mist-otel status</title>\
         <style>{STYLE}</style></head><body><h1>mist-otel status</h1>\
         <p class=\"muted\">version {} · up {} s · {} other live viewer(s) · times in UTC</p>",
        escape(s.version),
        s.uptime_secs,
        s.live_viewers
    );

    h.push_str("<h2>Deliveries by topic</h2><p class=\"muted\">totals since start, as of page load</p>");
    if s.topics.is_empty() {
        h.push_str("<p id=\"no-deliveries\">No deliveries yet.</p>");
    } else {
        h.push_str(
            "<table id=\"topics\"><tr><th>topic</th><th>accepted</th><th>events</th><th>rejected</th>\
             <th>last outcome</th><th>last seen</th></tr>",
        );
        for (topic, t) in &s.topics {
            let class = if t.last_outcome == "verified" { "ok" } else { "bad" };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
                escape(topic),
                t.accepted,
                t.events,
                t.rejected,
                escape(&t.last_outcome),
                clock(t.last_at_ms)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Recent deliveries</h2>");
    if !s.deliveries.is_empty() {
        h.push_str(
            "<table id=\"deliveries\"><tr><th>time</th><th>endpoint</th><th>topic</th><th>status</th>\
             <th>events</th><th>outcome</th></tr>",
        );
        for d in &s.deliveries {
            let class = if d.outcome == "verified" { "ok" } else { "bad" };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
                clock(d.at_ms),
                escape(&d.endpoint),
                escape(d.topic.as_deref().unwrap_or("—")),
                d.status,
                d.events,
                escape(&d.outcome)
            );
        }
        h.push_str("</table>");
    }

    if !s.poller_sites.is_empty() {
        h.push_str(
            "<h2>Poller sites</h2><table id=\"poller-sites\"><tr><th>site</th><th>channel</th><th>stream</th></tr>",
        );
        for site in &s.poller_sites {
            let (class, state) =
                if site.subscribed { ("ok", "subscribed") } else { ("bad", "not connected") };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{state}</td></tr>",
                escape(&site.site_id),
                escape(&site.channel)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Health</h2>");
    for (name, health) in &s.health {
        let _ = write!(h, "<h3>{}</h3>", escape(name));
        if !health.enabled {
            let _ = write!(h, "<p class=\"muted\" id=\"{0}-health\">{0}: not enabled</p>", escape(name));
            continue;
        }
        let _ = write!(
            h,
            "<table id=\"{}-health\"><tr><th>metric</th><th>labels</th><th>value</th></tr>",
            escape(name)
        );
        for smp in &health.samples {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&smp.name),
                escape(&smp.labels),
                escape(&smp.value)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Live tail</h2><p class=\"muted\" id=\"live\">newest first; updates as events arrive</p><ul id=\"tail\">");
    for e in &s.events {
        let _ = write!(h, "<li>{} {} {}</li>", clock(e.received_at_ms), escape(&e.topic), escape(&e.summary));
    }
    let _ = write!(h, "</ul><script>{SCRIPT}</script></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<b a=\"1\">&'"), "&lt;b a=&quot;1&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn records_outcomes_and_bounds_topics() {
        let b = StatusBoard::new();
        b.observe("default", None, 401, 0, Some("signature does not match"));
        b.observe("default", Some("alarms"), 200, 3, None);
        let t = b.topics();
        assert_eq!(t["alarms"].events, 3);
        assert_eq!(t[UNPARSED].last_outcome, "rejected: signature does not match");
        for i in 0..(MAX_TOPICS * 2) {
            b.observe("default", Some(&format!("t{i}")), 200, 1, None);
        }
        assert!(b.topics().len() <= MAX_TOPICS + 1);
        assert_eq!(b.deliveries().len(), RECENT_DELIVERIES);
    }

    #[test]
    fn reused_records_carry_only_the_latest_request() {
        let b = StatusBoard::new();
        for i in 0..RECENT_DELIVERIES {
            b.observe("a-long-endpoint-name", Some("client-sessions"), 200, i, None);
        }
        // The ring is full: these reuse the oldest records, whose strings are longer.
        b.observe("e", None, 401, 0, Some("bad"));
        b.observe("e2", Some("x"), 503, 2, None);
        let d = b.deliveries();
        assert_eq!(d.len(), RECENT_DELIVERIES);
        assert_eq!((d[0].endpoint.as_str(), d[0].topic.as_deref(), d[0].status), ("e2", Some("x"), 503));
        assert_eq!((d[0].events, d[0].outcome.as_str()), (2, "rejected: HTTP 503"));
        assert_eq!(
            (d[1].endpoint.as_str(), d[1].topic.as_deref(), d[1].outcome.as_str()),
            ("e", None, "rejected: bad")
        );
        assert_eq!((d[2].events, d[2].outcome.as_str()), (RECENT_DELIVERIES - 1, "verified"));
        assert_eq!(b.topics()["x"].last_outcome, "rejected: HTTP 503");
        assert_eq!(b.topics()["client-sessions"].last_outcome, "verified");
    }

    #[test]
    fn kept_bodies_stay_within_their_bounds_and_endpoints() {
        let b = StatusBoard::new();
        let body = Bytes::from_static(br#"{"topic":"alarms","events":[{"type":"x"}]}"#);
        for i in 0..(RECENT_EVENTS + 5) {
            b.accepted(if i % 2 == 0 { "even-endpoint" } else { "odd" }, "alarms", &body, i as u64);
        }
        {
            let inner = b.lock();
            assert_eq!(inner.pending.len(), RECENT_EVENTS);
            assert_eq!(inner.pending_bytes, RECENT_EVENTS * body.len());
            // Oldest kept is delivery 5 (odd), newest RECENT_EVENTS + 4 (even).
            assert_eq!((inner.pending[0].endpoint.as_str(), inner.pending[0].received_at_ns), ("odd", 5));
            let last = &inner.pending[RECENT_EVENTS - 1];
            assert_eq!(last.endpoint, "even-endpoint");
        }
        // One body larger than the byte bound is kept alone.
        let big = Bytes::from(vec![b' '; PENDING_BYTES + 1]);
        b.accepted("big", "alarms", &big, 0);
        let inner = b.lock();
        assert_eq!((inner.pending.len(), inner.pending_bytes), (1, big.len()));
    }

    #[test]
    fn picks_samples_by_prefix() {
        let text = "# HELP mist_otel_buffer_bytes x\nmist_otel_buffer_bytes 12\n\
                    mist_otel_poller_site_connected{site=\"a b\"} 1\nmist_otel_ingest_x 3\n";
        let s = samples_with_prefix(text, "mist_otel_poller_");
        assert_eq!(
            s,
            vec![Sample {
                name: "mist_otel_poller_site_connected".into(),
                labels: "site=\"a b\"".into(),
                value: "1".into()
            }]
        );
        assert_eq!(samples_with_prefix(text, "mist_otel_buffer_").len(), 1);
        assert!(samples_with_prefix(text, "mist_otel_export_").is_empty());
    }

    #[test]
    fn poller_site_state_from_its_gauge() {
        let text = "mist_otel_poller_site_subscribed{site_id=\"s-1\",channel=\"devices\"} 1\n\
                    mist_otel_poller_site_subscribed{site_id=\"s\\\"2\",channel=\"clients\"} 0\n\
                    mist_otel_poller_sites 2\n";
        let sites = poller_sites(&samples_with_prefix(text, "mist_otel_poller_"));
        assert_eq!(sites.len(), 2);
        assert_eq!(
            sites[0],
            SiteState { site_id: "s-1".into(), channel: "devices".into(), subscribed: true }
        );
        assert_eq!(sites[1].site_id, "s\"2");
        assert!(!sites[1].subscribed);
        let page = render_page(&Snapshot {
            version: "t",
            uptime_secs: 0,
            topics: BTreeMap::new(),
            deliveries: vec![],
            events: vec![],
            health: BTreeMap::new(),
            live_viewers: 0,
            poller_sites: sites,
        });
        assert!(page.contains("<td>s-1</td><td>devices</td><td class=\"ok\">subscribed</td>"), "{page}");
        assert!(page.contains("s&quot;2"), "{page}");
    }

    #[test]
    fn summary_is_bounded_and_leads_with_type() {
        let mut m = Map::new();
        m.insert("zzz".into(), Value::String("x".repeat(2000)));
        m.insert("type".into(), Value::String("AP_DISCONNECTED".into()));
        let s = summarize(&m);
        assert!(s.starts_with("type=AP_DISCONNECTED"));
        assert!(s.chars().count() <= SUMMARY_CHARS + 1);
    }
}
