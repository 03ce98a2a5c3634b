//! Trace model: one client association = one trace.
//!
//! Ids are derived, not random, so every part of an association gets the same trace id no
//! matter which webhook, replica or process lifetime delivers it:
//! `trace_id = sha256("mist-otel/assoc", org, site, client mac, connect µs)[..16]` and
//! `span_id = sha256(trace_id, part, part time µs)[..8]`. The connect time is in both
//! `client-join` and `client-sessions`; the other parts (`nac-events`, `client-info`,
//! `nac-accounting`) carry no connect time, so a small bounded [`Correlator`] remembers recent
//! associations per client and parks parts that arrive before their association is known.

use super::metrics::SiteKey;
use opentelemetry_proto::tonic::trace::v1::Span;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};

/// Root span of an association: connect → disconnect (`client-sessions`).
pub const SPAN_SESSION: &str = "mist.client.session";
/// The association's join (`client-join`).
pub const SPAN_JOIN: &str = "mist.client.join";
/// NAC authentication (`nac-events`).
pub const SPAN_AUTH: &str = "mist.nac.auth";
/// IP/host name learned (`client-info`).
pub const SPAN_INFO: &str = "mist.client.info";
/// NAC accounting record (`nac-accounting`).
pub const SPAN_ACCOUNTING: &str = "mist.nac.accounting";
/// Every span name (for the documentation check).
pub const SPAN_NAMES: &[&str] = &[SPAN_SESSION, SPAN_JOIN, SPAN_AUTH, SPAN_INFO, SPAN_ACCOUNTING];

/// A trace id.
pub type TraceId = [u8; 16];
/// A span id.
pub type SpanId = [u8; 8];

/// MAC as Mist spells it elsewhere: lowercase hex without separators.
pub fn normalize_mac(mac: &str) -> String {
    mac.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefix every part so ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// A trace id from a client's stable keys; `domain` keeps the kinds of trace apart.
fn client_trace_id(domain: &[u8], org: &str, site: &str, mac: &str, at_us: i64) -> TraceId {
    let d = digest(&[
        domain,
        org.as_bytes(),
        site.as_bytes(),
        normalize_mac(mac).as_bytes(),
        &at_us.to_be_bytes(),
    ]);
    nonzero16(d)
}

/// The association's trace id from its stable keys.
pub fn association_trace_id(org: &str, site: &str, mac: &str, connect_us: i64) -> TraceId {
    client_trace_id(b"mist-otel/assoc", org, site, mac, connect_us)
}

/// Trace id of an authentication that belongs to no known association (a deny, a wired
/// client, or a permit whose join never came).
pub fn auth_trace_id(org: &str, site: &str, mac: &str, at_us: i64) -> TraceId {
    client_trace_id(b"mist-otel/auth", org, site, mac, at_us)
}

/// A span id inside a trace: `part` names the span kind, `at_us` tells apart repeated parts.
pub fn span_id(trace: &TraceId, part: &str, at_us: i64) -> SpanId {
    let d = digest(&[trace, part.as_bytes(), &at_us.to_be_bytes()]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    if id == [0; 8] {
        id[7] = 1; // an all-zero id is invalid in OTLP
    }
    id
}

fn nonzero16(d: [u8; 32]) -> TraceId {
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    if id == [0; 16] {
        id[15] = 1;
    }
    id
}

/// Seconds → whole microseconds (Mist's precision), the unit of every id input.
pub fn secs_to_us(secs: f64) -> i64 {
    if secs.is_finite() { (secs * 1e6).round() as i64 } else { 0 }
}

/// What the correlator knows of one association.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assoc {
    /// Connect time, µs.
    pub connect_us: i64,
    /// Disconnect time, µs, once the session ended.
    pub disconnect_us: Option<i64>,
    /// Whether the session ended by roaming to another AP.
    pub roamed: bool,
    /// Its trace id.
    pub trace: TraceId,
}

impl Assoc {
    /// The root (session) span id.
    pub fn session_span(&self) -> SpanId {
        span_id(&self.trace, "session", 0)
    }
}

/// Which part of an association a parked span is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// NAC authentication: belongs to the association whose connect time is within the
    /// window on either side.
    Auth,
    /// IP learned / accounting start and updates: belongs to the association in progress at
    /// that time.
    During,
    /// Accounting stop: belongs to the association whose disconnect is within the window, so
    /// it waits for the session end rather than guess (an open association might be followed
    /// by a roam not yet delivered).
    End,
}

/// A span waiting for its association.
#[derive(Debug, Clone)]
pub struct Parked {
    /// Matching rule.
    pub kind: PartKind,
    /// Time of the part, µs.
    pub at_us: i64,
    /// Span name part used for its id.
    pub part: &'static str,
    /// Its resource.
    pub site: (SiteKey, Option<String>),
    /// The span, without ids.
    pub span: Span,
    /// Ids to use if it must be emitted on its own (auths), else `None` (dropped).
    pub standalone: Option<TraceId>,
    deadline_ns: u64,
}

impl Parked {
    /// A span waiting for its association; given up at `deadline_ns` (receipt clock).
    pub fn new(
        kind: PartKind,
        at_us: i64,
        part: &'static str,
        site: (SiteKey, Option<String>),
        span: Span,
        standalone: Option<TraceId>,
        deadline_ns: u64,
    ) -> Self {
        Self { kind, at_us, part, site, span, standalone, deadline_ns }
    }

    /// Completes the span inside association `a`.
    pub fn into_span(self, a: &Assoc) -> ((SiteKey, Option<String>), Span) {
        let mut span = self.span;
        span.trace_id = a.trace.to_vec();
        span.span_id = span_id(&a.trace, self.part, self.at_us).to_vec();
        span.parent_span_id = a.session_span().to_vec();
        (self.site, span)
    }

    /// Completes the span as its own trace, if it has standalone ids.
    pub fn into_standalone(self) -> Option<((SiteKey, Option<String>), Span)> {
        let trace = self.standalone?;
        let mut span = self.span;
        span.trace_id = trace.to_vec();
        span.span_id = span_id(&trace, self.part, self.at_us).to_vec();
        Some((self.site, span))
    }
}

const MAX_ASSOCS: usize = 4;
const MAX_PARKED: usize = 8;

#[derive(Debug, Default)]
struct Entry {
    assocs: Vec<Assoc>,
    parked: Vec<Parked>,
    seq: u64,
}

/// Bounded memory of recent associations and parked parts, per client.
///
/// Bounds: at most `capacity` clients (oldest-touched evicted first), each with at most 4
/// associations and 8 parked parts, and at most `capacity / 4` parked parts in all (a parked
/// part holds a whole span); clients untouched for `ttl` are forgotten; parked parts are given
/// up at their deadline. Evicted or expired parked auths are emitted as traces of
/// their own, other parked parts are dropped (their logs were already sent).
#[derive(Debug)]
pub struct Correlator {
    map: HashMap<[u8; 16], Entry>,
    fifo: VecDeque<(u64, u64, [u8; 16])>, // (touched_ns, seq, key)
    parked_q: VecDeque<(u64, [u8; 16])>,  // (deadline_ns, key)
    next_seq: u64,
    capacity: usize,
    parked_total: usize,
    parked_cap: usize,
    ttl_ns: u64,
    window_us: i64,
    evictions: u64,
}

impl Correlator {
    /// An empty correlator.
    pub fn new(capacity: usize, ttl_ns: u64, window_us: i64) -> Self {
        Self {
            map: HashMap::new(),
            fifo: VecDeque::new(),
            parked_q: VecDeque::new(),
            next_seq: 0,
            capacity: capacity.max(1),
            parked_total: 0,
            parked_cap: (capacity / 4).max(16),
            ttl_ns,
            window_us,
            evictions: 0,
        }
    }

    /// The client key: (org, site, normalised MAC) hashed.
    pub fn client_key(org: &str, site: &str, mac: &str) -> [u8; 16] {
        let d =
            digest(&[b"mist-otel/client", org.as_bytes(), site.as_bytes(), normalize_mac(mac).as_bytes()]);
        let mut k = [0u8; 16];
        k.copy_from_slice(&d[..16]);
        k
    }

    /// Clients remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Clients evicted (capacity or TTL) since start.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Parts waiting for their association.
    pub fn parked(&self) -> usize {
        self.parked_total
    }

    /// The correlation window, µs.
    pub fn window_us(&self) -> i64 {
        self.window_us
    }

    fn touch(&mut self, key: [u8; 16], now_ns: u64, out: &mut Vec<Parked>) -> &mut Entry {
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.capacity {
                if !self.evict_oldest(out) {
                    break;
                }
            }
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        self.fifo.push_back((now_ns, seq, key));
        if self.fifo.len() > 2 * self.map.len() + 1024 {
            // Drop stale fifo items (clients touched again later) so the queue stays O(clients).
            let map = &self.map;
            self.fifo.retain(|(_, s, k)| map.get(k).is_some_and(|e| e.seq == *s) || *k == key);
        }
        let e = self.map.entry(key).or_default();
        e.seq = seq;
        e
    }

    fn evict_oldest(&mut self, out: &mut Vec<Parked>) -> bool {
        while let Some((_, seq, key)) = self.fifo.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                if let Some(e) = self.map.remove(&key) {
                    self.parked_total = self.parked_total.saturating_sub(e.parked.len());
                    out.extend(e.parked);
                }
                self.evictions += 1;
                return true;
            }
        }
        false
    }

    /// Forgets clients untouched for the TTL and gives up parked parts past their deadline;
    /// returns the parked parts let go.
    pub fn expire(&mut self, now_ns: u64) -> Vec<Parked> {
        let mut out = Vec::new();
        while let Some(&(touched, seq, key)) = self.fifo.front() {
            if touched.saturating_add(self.ttl_ns) > now_ns {
                break;
            }
            self.fifo.pop_front();
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                if let Some(e) = self.map.remove(&key) {
                    self.parked_total = self.parked_total.saturating_sub(e.parked.len());
                    out.extend(e.parked);
                }
                self.evictions += 1;
            }
        }
        while let Some(&(deadline, key)) = self.parked_q.front() {
            if deadline > now_ns {
                break;
            }
            self.parked_q.pop_front();
            if let Some(e) = self.map.get_mut(&key) {
                let (gone, keep): (Vec<_>, Vec<_>) =
                    e.parked.drain(..).partition(|p| p.deadline_ns <= now_ns);
                e.parked = keep;
                self.parked_total = self.parked_total.saturating_sub(gone.len());
                out.extend(gone);
            }
        }
        out
    }

    /// Records an association (from a join or a session end) and releases the parked parts
    /// that belong to it. `also_released` receives parts evicted to make room.
    pub fn associate(
        &mut self,
        key: [u8; 16],
        a: Assoc,
        now_ns: u64,
        evicted: &mut Vec<Parked>,
    ) -> Vec<Parked> {
        let window = self.window_us;
        let e = self.touch(key, now_ns, evicted);
        match e.assocs.iter_mut().find(|x| x.connect_us == a.connect_us) {
            Some(x) => {
                x.disconnect_us = a.disconnect_us.or(x.disconnect_us);
                x.roamed |= a.roamed;
            }
            None => {
                e.assocs.push(a);
                e.assocs.sort_by_key(|x| x.connect_us);
                if e.assocs.len() > MAX_ASSOCS {
                    e.assocs.remove(0);
                }
            }
        }
        let assocs = e.assocs.clone();
        let (mine, keep): (Vec<_>, Vec<_>) = e
            .parked
            .drain(..)
            .partition(|p| best_match(&assocs, p.kind, p.at_us, window) == Some(a.connect_us));
        e.parked = keep;
        self.parked_total = self.parked_total.saturating_sub(mine.len());
        mine
    }

    /// The association a part at `at_us` belongs to, if known.
    pub fn find(&self, key: &[u8; 16], kind: PartKind, at_us: i64) -> Option<Assoc> {
        let e = self.map.get(key)?;
        let c = best_match(&e.assocs, kind, at_us, self.window_us)?;
        e.assocs.iter().find(|a| a.connect_us == c).copied()
    }

    /// The association before the one connected at `connect_us`, if it ended by roaming.
    pub fn roamed_from(&self, key: &[u8; 16], connect_us: i64) -> Option<Assoc> {
        let e = self.map.get(key)?;
        e.assocs.iter().rev().find(|a| a.connect_us < connect_us && a.roamed).copied()
    }

    /// Parks a part until its association is known (or its deadline passes).
    pub fn park(&mut self, key: [u8; 16], p: Parked, now_ns: u64, evicted: &mut Vec<Parked>) {
        let deadline = p.deadline_ns;
        if self.parked_total >= self.parked_cap {
            // Full: give this part up now rather than grow.
            evicted.push(p);
            return;
        }
        let e = self.touch(key, now_ns, evicted);
        // Net change: +1, unless this client's oldest parked part makes room.
        let replaced = e.parked.len() >= MAX_PARKED;
        if replaced {
            evicted.push(e.parked.remove(0));
        }
        e.parked.push(p);
        if !replaced {
            self.parked_total += 1;
        }
        self.parked_q.push_back((deadline, key));
    }
}

/// Which association (by connect time) a part at `at_us` belongs to.
fn best_match(assocs: &[Assoc], kind: PartKind, at_us: i64, window: i64) -> Option<i64> {
    match kind {
        PartKind::Auth => assocs
            .iter()
            .filter(|a| a.connect_us.saturating_sub(at_us).saturating_abs() <= window)
            .min_by_key(|a| (a.connect_us.saturating_sub(at_us).saturating_abs(), a.connect_us))
            .map(|a| a.connect_us),
        PartKind::End => assocs
            .iter()
            .filter_map(|a| a.disconnect_us.map(|d| (d.saturating_sub(at_us).saturating_abs(), a.connect_us)))
            .filter(|(dist, _)| *dist <= window)
            .min()
            .map(|(_, c)| c),
        PartKind::During => assocs
            .iter()
            .rev()
            .find(|a| {
                a.connect_us.saturating_sub(window) <= at_us
                    && a.disconnect_us.is_none_or(|d| at_us <= d.saturating_add(window))
            })
            .map(|a| a.connect_us),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_mac_spelling_insensitive() {
        let a = association_trace_id("o", "s", "AC:3E:B1:79:E5:35", 1_691_512_031_358_188);
        let b = association_trace_id("o", "s", "ac3eb179e535", 1_691_512_031_358_188);
        assert_eq!(a, b);
        assert_ne!(a, association_trace_id("o", "s", "ac3eb179e535", 1_691_512_031_358_189));
        assert_ne!(span_id(&a, "join", 0), span_id(&a, "session", 0));
    }

    #[test]
    fn capacity_bounds_clients() {
        let mut c = Correlator::new(10, u64::MAX, 60_000_000);
        let mut ev = Vec::new();
        for i in 0..1000i64 {
            let key = Correlator::client_key("o", "s", &format!("{i:012x}"));
            let a = Assoc { connect_us: i, disconnect_us: None, roamed: false, trace: [1; 16] };
            c.associate(key, a, i as u64, &mut ev);
            assert!(c.len() <= 10);
        }
        assert_eq!(c.evictions(), 990);
        assert!(c.fifo.len() <= 2 * c.len() + 1025);
    }

    #[test]
    fn ttl_forgets() {
        let mut c = Correlator::new(10, 100, 60_000_000);
        let key = Correlator::client_key("o", "s", "m");
        let a = Assoc { connect_us: 1, disconnect_us: None, roamed: false, trace: [1; 16] };
        c.associate(key, a, 1_000, &mut Vec::new());
        assert!(c.expire(1_050).is_empty());
        assert_eq!(c.len(), 1);
        c.expire(1_101);
        assert_eq!(c.len(), 0);
    }
}
