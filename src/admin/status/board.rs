//! The board: what the status page shows of recent requests, kept in bounded rings as the
//! ingest observer reports each outcome.

use super::tail::{RECENT_EVENTS, TailEvent, tail_events};
use crate::ingest::Observer;
use bytes::Bytes;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// How many recent deliveries the page keeps.
pub(super) const RECENT_DELIVERIES: usize = 100;
/// Distinct topic rows before further topics are folded into `other`.
pub(super) const MAX_TOPICS: usize = 64;
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

/// Most bytes of accepted bodies kept unparsed until someone looks (see [`StatusBoard`]).
pub(super) const PENDING_BYTES: usize = 8 * 1024 * 1024;

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

/// Collects what the status page shows. Register it with `IngestState::with_observer`.
///
/// Accepted bodies are kept as received (a reference-counted view, no copy) and only parsed into
/// tail events when the page, `/status.json` or a live-tail subscriber asks: the webhook path
/// never parses a body twice for the page's sake.
pub struct StatusBoard {
    inner: Mutex<Inner>,
    pub(super) tail: broadcast::Sender<TailEvent>,
    pub(super) started: Instant,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::status::tail::RECENT_EVENTS;

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
}
