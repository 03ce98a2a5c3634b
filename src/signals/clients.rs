//! `client-join`, `client-sessions`, `client-info`, `client-latency` and
//! `guest-authorizations`.

use super::attrs::{self, kv, kv_bool, kv_f64, kv_i64, non_empty, opt};
use super::logs::Severity;
use super::metrics;
use super::traces::{self, Assoc, Correlator, Parked, PartKind};
use super::{Cx, EventOut, secs_to_ns, time};
use crate::mist::events::{ClientInfo, ClientJoin, ClientLatency, ClientSession, GuestAuthorization};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::{Span, Status, span, status};

/// An instantaneous or timed span of the association, ids filled by the caller.
pub(crate) fn span(name: &str, start_ns: u64, end_ns: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        name: name.into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: start_ns,
        end_time_unix_nano: end_ns.max(start_ns),
        attributes,
        ..Default::default()
    }
}

/// An error status with its reason.
pub(crate) fn error_status(message: String) -> Option<Status> {
    Some(Status { code: status::StatusCode::Error as i32, message })
}

/// The client labels of metrics: SSID and band, plus the MAC when per-client metrics are on.
fn client_labels(
    cx: &Cx<'_>,
    ssid: Option<&String>,
    band: Option<&String>,
    mac: Option<&String>,
) -> Vec<(&'static str, String)> {
    let mut l = vec![
        (attrs::SSID, ssid.cloned().unwrap_or_default()),
        (attrs::BAND, band.cloned().unwrap_or_default()),
    ];
    push_client_mac(cx, &mut l, mac);
    l
}

/// Adds the client's MAC to metric labels when per-client metrics are on.
pub(crate) fn push_client_mac(cx: &Cx<'_>, labels: &mut Vec<(&'static str, String)>, mac: Option<&String>) {
    if cx.metrics.per_client()
        && let Some(m) = mac
    {
        labels.push((attrs::CLIENT_MAC, traces::normalize_mac(m)));
    }
}

/// The AP and radio attributes that joins and sessions both carry, in this order.
fn push_radio_attrs(
    a: &mut Vec<KeyValue>,
    ap: &Option<String>,
    ap_name: &Option<String>,
    bssid: &Option<String>,
    ssid: Option<&String>,
    wlan_id: &Option<String>,
    band: Option<&String>,
) {
    opt(a, attrs::AP_MAC, non_empty(ap));
    opt(a, attrs::AP_NAME, non_empty(ap_name));
    opt(a, attrs::BSSID, non_empty(bssid));
    opt(a, attrs::SSID, ssid);
    opt(a, attrs::WLAN_ID, non_empty(wlan_id));
    opt(a, attrs::BAND, band);
}

/// The association's connect time in µs: `connect_float`, else `connect`.
fn connect_us(connect_float: Option<f64>, connect: Option<f64>, received_ns: u64) -> Option<i64> {
    // µs from the same reading as event times, so a join's and its session's agree whatever unit
    // they came in; a time outside the sane window is no time (no association to key on).
    time::first([connect_float, connect], received_ns).0.map(|ns| (ns / 1000) as i64)
}

/// A join: counted with its RSSI; the association's join span (child of its session span).
pub fn join(cx: &mut Cx<'_>, e: &ClientJoin, out: &mut EventOut) {
    let mac = non_empty(&e.mac);
    let (ssid, band) = (non_empty(&e.ssid), non_empty(&e.band));
    let mut a = Vec::new();
    opt(&mut a, attrs::CLIENT_MAC, mac);
    push_radio_attrs(&mut a, &e.ap, &e.ap_name, &e.bssid, ssid, &e.wlan_id, band);
    out.consumed = &["mac", "ap", "ap_name", "bssid", "ssid", "wlan_id", "band"];
    let ap = non_empty(&e.ap_name).or(non_empty(&e.ap)).map(String::as_str).unwrap_or("?");
    let mut body = format!(
        "client {} joined {} on AP {ap}",
        mac.map(String::as_str).unwrap_or("?"),
        ssid.map(String::as_str).unwrap_or("?")
    );
    if let Some(b) = band {
        body.push_str(&format!(", band {b}"));
    }
    if let Some(r) = e.rssi {
        body.push_str(&format!(", {r} dBm"));
    }
    out.body = body;

    let labels = client_labels(cx, ssid, band, mac);
    cx.count(&metrics::CLIENT_JOINS, labels.clone(), 1);
    if let Some(r) = e.rssi {
        cx.hist(&metrics::CLIENT_JOIN_RSSI, labels, r);
    }

    if let (Some(mac), Some(connect)) = (mac, connect_us(e.connect_float, e.connect, cx.received_ns)) {
        let (org, site) = cx.ids();
        let trace = traces::association_trace_id(org, site, mac, connect);
        let key = Correlator::client_key(org, site, mac);
        let assoc = Assoc { connect_us: connect, disconnect_us: None, roamed: false, trace };
        let mut s = span(traces::SPAN_JOIN, (connect as u64).saturating_mul(1000), cx.time_ns, a.clone());
        let id = traces::span_id(&trace, "join", 0);
        s.trace_id = trace.to_vec();
        s.span_id = id.to_vec();
        s.parent_span_id = assoc.session_span().to_vec();
        push_and_associate(cx, s, key, assoc);
        out.trace = Some((trace, id));
    }
    out.attrs = a;
}

/// 802.11 reason codes that end a session normally: none, STA leaving (deauth/disassoc),
/// inactivity.
const NORMAL_REASONS: &[i64] = &[0, 3, 4, 8];

/// A short name of common 802.11 reason codes, for error messages.
pub fn reason_name(code: i64) -> &'static str {
    match code {
        0 => "none",
        1 => "unspecified",
        2 => "previous authentication no longer valid",
        3 => "deauthenticated: station leaving",
        4 => "disassociated: inactivity",
        5 => "AP unable to handle all stations",
        6 => "class 2 frame from unauthenticated station",
        7 => "class 3 frame from unassociated station",
        8 => "disassociated: station leaving",
        15 => "4-way handshake timeout",
        16 => "group key handshake timeout",
        23 => "802.1X authentication failed",
        34 => "excessive lost frames",
        _ => "other",
    }
}

/// The fields a session end consumes, in the order of its attributes.
const SESSION_FIELDS: &[&str] = &[
    "mac",
    "hostname",
    "username",
    "client_os",
    "ap",
    "ap_name",
    "bssid",
    "ssid",
    "wlan_id",
    "band",
    "termination_reason",
];

/// What a session end says, derived once from the event and shared by its log, metrics and
/// span.
struct SessionEnd<'e> {
    mac: Option<&'e String>,
    ssid: Option<&'e String>,
    band: Option<&'e String>,
    /// Ended by a roam to another AP (`next_ap` set), not by leaving.
    roamed: bool,
    /// 802.11 reason code, 0 when absent.
    reason: i64,
    /// Left for a reason outside [`NORMAL_REASONS`]: a WARN log and an error span.
    abnormal: bool,
    /// Connect and disconnect times, µs.
    connect: Option<i64>,
    disconnect: Option<i64>,
    /// Seconds: the reported duration, else disconnect − connect.
    duration: Option<f64>,
}

impl<'e> SessionEnd<'e> {
    /// Derives the facts of a session end.
    fn of(e: &'e ClientSession, received_ns: u64) -> Self {
        let roamed = non_empty(&e.next_ap).is_some();
        let reason = e.termination_reason.unwrap_or(0);
        let connect = connect_us(e.connect_float, e.connect, received_ns);
        let disconnect = connect_us(e.disconnect_float, e.disconnect, received_ns);
        let duration = e.duration.filter(|d| *d >= 0.0).or_else(|| match (connect, disconnect) {
            (Some(c), Some(d)) if d >= c => Some((d - c) as f64 / 1e6),
            _ => None,
        });
        SessionEnd {
            mac: non_empty(&e.mac),
            ssid: non_empty(&e.ssid),
            band: non_empty(&e.band),
            roamed,
            reason,
            abnormal: !roamed && !NORMAL_REASONS.contains(&reason),
            connect,
            disconnect,
            duration,
        }
    }

    /// The log attributes, in export order (see [`SESSION_FIELDS`]).
    fn attrs(&self, e: &ClientSession) -> Vec<KeyValue> {
        let mut a = Vec::new();
        opt(&mut a, attrs::CLIENT_MAC, self.mac);
        opt(&mut a, attrs::CLIENT_HOSTNAME, non_empty(&e.hostname));
        opt(&mut a, attrs::CLIENT_USERNAME, non_empty(&e.username));
        opt(&mut a, attrs::CLIENT_OS, non_empty(&e.client_os));
        push_radio_attrs(&mut a, &e.ap, &e.ap_name, &e.bssid, self.ssid, &e.wlan_id, self.band);
        a.push(kv_i64(attrs::TERMINATION_REASON, self.reason));
        a.push(kv_bool(attrs::ROAMED, self.roamed));
        a
    }

    /// The log body: who left which AP, after how long, and why.
    fn body(&self, e: &ClientSession) -> String {
        let who = self.mac.map(String::as_str).unwrap_or("?");
        let ap = non_empty(&e.ap_name).or(non_empty(&e.ap)).map(String::as_str).unwrap_or("?");
        let how = if self.roamed {
            format!("roamed to {}", e.next_ap.as_deref().unwrap_or("?"))
        } else {
            format!("left (reason {}: {})", self.reason, reason_name(self.reason))
        };
        match self.duration {
            Some(d) => format!("client {who} session on AP {ap} ended after {d} s: {how}"),
            None => format!("client {who} session on AP {ap} ended: {how}"),
        }
    }

    /// The duration histogram (with `roamed`), the termination counter (with `roamed` and the
    /// reason, without the band) and, for a roam, the roam counter.
    fn record_metrics(&self, cx: &mut Cx<'_>) {
        let labels = client_labels(cx, self.ssid, self.band, self.mac);
        let mut dl = labels.clone();
        dl.push((attrs::ROAMED, self.roamed.to_string()));
        if let Some(d) = self.duration {
            cx.hist(&metrics::SESSION_DURATION, dl.clone(), d);
        }
        dl.retain(|(k, _)| *k != attrs::BAND);
        dl.push((attrs::TERMINATION_REASON, self.reason.to_string()));
        cx.count(&metrics::SESSION_TERMINATIONS, dl, 1);
        if self.roamed {
            cx.count(&metrics::CLIENT_ROAMS, labels, 1);
        }
    }

    /// The association's root span from connect to disconnect (now if unknown), ids set;
    /// an error on abnormal termination.
    fn root_span(&self, e: &ClientSession, a: &[KeyValue], assoc: &Assoc, now_ns: u64) -> Span {
        let end_ns = self.disconnect.map(|d| (d as u64).saturating_mul(1000)).unwrap_or(now_ns);
        let mut sa = a.to_vec();
        if let Some(d) = self.duration {
            sa.push(kv_f64(attrs::SESSION_DURATION, d));
        }
        if let Some(n) = non_empty(&e.next_ap) {
            sa.push(kv(attrs::NEXT_AP, n.as_str()));
        }
        let mut s = span(traces::SPAN_SESSION, (assoc.connect_us as u64).saturating_mul(1000), end_ns, sa);
        s.trace_id = assoc.trace.to_vec();
        s.span_id = assoc.session_span().to_vec();
        if self.abnormal {
            let reason = self.reason;
            s.status = error_status(format!("termination reason {reason}: {}", reason_name(reason)));
            s.attributes.push(kv(attrs::ERROR_TYPE, reason.to_string()));
        }
        s
    }
}

/// The link from a session's root span to the association the client roamed from (see
/// docs/signals.md for why a link and not one trace per stay).
fn roamed_from_link(prev: &Assoc) -> span::Link {
    span::Link {
        trace_id: prev.trace.to_vec(),
        span_id: prev.session_span().to_vec(),
        attributes: vec![kv(attrs::LINK_TYPE, "roamed_from")],
        ..Default::default()
    }
}

/// Exports a span of an association and records the association, which releases the parts
/// parked for it; parts evicted to make room are exported on their own.
fn push_and_associate(cx: &mut Cx<'_>, s: Span, key: [u8; 16], assoc: Assoc) {
    cx.spans.push((cx.origin.clone(), s));
    let mut evicted = Vec::new();
    let released = cx.corr.associate(key, assoc, cx.received_ns, &mut evicted);
    cx.emit_released(released, &assoc);
    cx.emit_evicted(evicted);
}

/// A session end: duration histogram, termination and roam counters; the association's
/// root span from connect to disconnect (error on abnormal termination), linked to the
/// association it roamed from.
pub fn session(cx: &mut Cx<'_>, e: &ClientSession, out: &mut EventOut) {
    let end = SessionEnd::of(e, cx.received_ns);
    let a = end.attrs(e);
    out.consumed = SESSION_FIELDS;
    out.severity = if end.abnormal { Severity::Warn } else { Severity::Info };
    out.body = end.body(e);
    end.record_metrics(cx);
    if let (Some(mac), Some(connect)) = (end.mac, end.connect) {
        let (org, site) = cx.ids();
        let trace = traces::association_trace_id(org, site, mac, connect);
        let key = Correlator::client_key(org, site, mac);
        let assoc = Assoc { connect_us: connect, disconnect_us: end.disconnect, roamed: end.roamed, trace };
        let mut s = end.root_span(e, &a, &assoc, cx.time_ns);
        if let Some(prev) = cx.corr.roamed_from(&key, connect) {
            s.links.push(roamed_from_link(&prev));
        }
        push_and_associate(cx, s, key, assoc);
        out.trace = Some((trace, assoc.session_span()));
    }
    out.attrs = a;
}

/// Emits a part now if its association is known, else parks it. Returns the ids used.
pub(crate) fn attach(
    cx: &mut Cx<'_>,
    mac: &str,
    kind: PartKind,
    part: &'static str,
    s: Span,
    standalone: Option<traces::TraceId>,
) -> Option<(traces::TraceId, traces::SpanId)> {
    let (org, site) = cx.ids();
    let key = Correlator::client_key(org, site, mac);
    // Event times are whole microseconds (see `time::read`), so this is exact.
    let at_us = (cx.time_ns / 1000) as i64;
    let parked = Parked::new(kind, at_us, part, cx.origin.clone(), s, standalone, cx.park_deadline());
    match cx.corr.find(&key, kind, at_us) {
        Some(assoc) => {
            let (origin, span) = parked.into_span(&assoc);
            let ids = (assoc.trace, traces::span_id(&assoc.trace, part, at_us));
            cx.spans.push((origin, span));
            Some(ids)
        }
        None => {
            let mut evicted = Vec::new();
            cx.corr.park(key, parked, cx.received_ns, &mut evicted);
            cx.emit_evicted(evicted);
            None
        }
    }
}

/// The client's IP became known: a span in its current association.
pub fn info(cx: &mut Cx<'_>, e: &ClientInfo, out: &mut EventOut) {
    let mac = non_empty(&e.mac);
    let mut a = Vec::new();
    opt(&mut a, attrs::CLIENT_MAC, mac);
    opt(&mut a, attrs::CLIENT_ADDRESS, non_empty(&e.ip));
    opt(&mut a, attrs::CLIENT_HOSTNAME, non_empty(&e.hostname));
    out.consumed = &["mac", "ip", "hostname"];
    out.body = format!(
        "client {} has IP {}{}",
        mac.map(String::as_str).unwrap_or("?"),
        e.ip.as_deref().unwrap_or("?"),
        non_empty(&e.hostname).map(|h| format!(" ({h})")).unwrap_or_default()
    );
    if let Some(mac) = mac {
        let s = span(traces::SPAN_INFO, cx.time_ns, cx.time_ns, a.clone());
        out.trace = attach(cx, mac, PartKind::During, "info", s, None);
    }
    out.attrs = a;
}

/// Site latency aggregates: `mist.client.latency` gauges by phase and statistic.
pub fn latency(cx: &mut Cx<'_>, e: &ClientLatency, out: &mut EventOut) {
    let figures = [
        ("auth", "avg", e.avg_auth),
        ("auth", "min", e.min_auth),
        ("auth", "max", e.max_auth),
        ("dhcp", "avg", e.avg_dhcp),
        ("dhcp", "min", e.min_dhcp),
        ("dhcp", "max", e.max_dhcp),
        ("dns", "avg", e.avg_dns),
        ("dns", "min", e.min_dns),
        ("dns", "max", e.max_dns),
    ];
    for (phase, stat, v) in figures {
        if let Some(v) = v {
            cx.gauge(
                &metrics::CLIENT_LATENCY,
                vec![(attrs::LATENCY_PHASE, phase.into()), (attrs::STAT, stat.into())],
                v,
            );
        }
    }
    let f = |v: Option<f64>| v.map(|v| format!("{v} s")).unwrap_or_else(|| "?".into());
    out.body = format!(
        "site client latency (avg): auth {}, dhcp {}, dns {}",
        f(e.avg_auth),
        f(e.avg_dhcp),
        f(e.avg_dns)
    );
}

/// A guest authorisation: counted by SSID and method.
pub fn guest(cx: &mut Cx<'_>, e: &GuestAuthorization, out: &mut EventOut) {
    let mut a = Vec::new();
    opt(&mut a, attrs::CLIENT_MAC, non_empty(&e.client));
    opt(&mut a, attrs::AP_MAC, non_empty(&e.ap));
    opt(&mut a, attrs::SSID, non_empty(&e.ssid));
    opt(&mut a, attrs::WLAN_ID, non_empty(&e.wlan_id));
    opt(&mut a, attrs::AUTH_METHOD, non_empty(&e.auth_method));
    out.consumed = &["client", "ap", "ssid", "wlan_id", "auth_method"];
    let until = e.authorized_expiring_time.map(secs_to_ns).filter(|t| *t > 0);
    out.body = format!(
        "guest {} authorized on {} by {}{}",
        e.client.as_deref().unwrap_or("?"),
        e.ssid.as_deref().unwrap_or("?"),
        e.auth_method.as_deref().unwrap_or("?"),
        match (until, e.authorized_time) {
            (Some(_), Some(t)) => format!(" for {} s", e.authorized_expiring_time.unwrap_or(t) - t),
            _ => String::new(),
        }
    );
    out.attrs = a;
    cx.count(
        &metrics::GUEST_AUTHORIZATIONS,
        vec![
            (attrs::SSID, e.ssid.clone().unwrap_or_default()),
            (attrs::AUTH_METHOD, e.auth_method.clone().unwrap_or_default()),
        ],
        1,
    );
}
