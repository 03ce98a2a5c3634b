//! `nac-events` and `nac-accounting`.

use super::attrs::{self, kv, kv_bool, non_empty, opt};
use super::clients::{attach, error_status, push_client_mac, span};
use super::logs::Severity;
use super::metrics;
use super::traces::{self, PartKind};
use super::{Cx, EventOut};
use crate::mist::events::{NacAccounting, NacEvent};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;

/// The outcome of a NAC event type: `permit`, `deny`, `failure` or `other`.
pub fn nac_result(kind: &str) -> &'static str {
    let k = kind.to_ascii_uppercase();
    if k.contains("PERMIT") || k.contains("ACCEPT") {
        "permit"
    } else if k.contains("DENY") || k.contains("REJECT") {
        "deny"
    } else if k.contains("FAIL") || k.contains("ERROR") {
        "failure"
    } else {
        "other"
    }
}

/// A NAC authentication: WARN on deny/failure, counted by result; a `mist.nac.auth` span —
/// in the client's association for a wireless permit (parked until the join if needed), its
/// own error trace for a deny or failure, its own trace for a wired permit (wired clients have
/// no join).
pub fn event(cx: &mut Cx<'_>, e: &NacEvent, out: &mut EventOut) {
    let kind = non_empty(&e.kind).cloned().unwrap_or_else(|| "unknown".into());
    let result = nac_result(&kind);
    let failed = matches!(result, "deny" | "failure");
    let mac = non_empty(&e.mac);
    let (ssid, auth) = (non_empty(&e.ssid), non_empty(&e.auth_type));
    let a = event_attrs(e, &kind, result);
    out.consumed =
        &["type", "auth_type", "mac", "username", "ap", "bssid", "ssid", "device_mac", "random_mac"];
    out.severity = if failed { Severity::Warn } else { Severity::Info };
    let why = non_empty(&e.text).or(non_empty(&e.reason));
    let who = non_empty(&e.username).or(mac).map(String::as_str).unwrap_or("?");
    out.body = format!(
        "NAC {result} for {who} on {} ({}){}",
        ssid.map(String::as_str).unwrap_or("?"),
        auth.map(String::as_str).unwrap_or("?"),
        why.map(|w| format!(": {w}")).unwrap_or_default()
    );

    let mut labels = vec![
        (attrs::NAC_RESULT, result.to_owned()),
        (attrs::EVENT_TYPE, kind.clone()),
        (attrs::AUTH_TYPE, auth.cloned().unwrap_or_default()),
        (attrs::SSID, ssid.cloned().unwrap_or_default()),
    ];
    push_client_mac(cx, &mut labels, mac);
    cx.count(&metrics::NAC_EVENTS, labels, 1);

    if let Some(mac) = mac.filter(|_| result != "other") {
        let mut s = span(traces::SPAN_AUTH, cx.time_ns, cx.time_ns, a.clone());
        if failed {
            s.status = error_status(why.cloned().unwrap_or_else(|| kind.clone()));
            s.attributes.push(kv(attrs::ERROR_TYPE, kind.as_str()));
        }
        let wired = e.client_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("wired"));
        out.trace = place_auth_span(cx, mac, s, failed || wired);
    }
    out.attrs = a;
}

/// The attributes of a NAC authentication, in export order.
fn event_attrs(e: &NacEvent, kind: &str, result: &str) -> Vec<KeyValue> {
    let mut a = vec![kv(attrs::EVENT_TYPE, kind), kv(attrs::NAC_RESULT, result)];
    opt(&mut a, attrs::AUTH_TYPE, non_empty(&e.auth_type));
    opt(&mut a, attrs::CLIENT_MAC, non_empty(&e.mac));
    opt(&mut a, attrs::CLIENT_USERNAME, non_empty(&e.username));
    opt(&mut a, attrs::AP_MAC, non_empty(&e.ap));
    opt(&mut a, attrs::BSSID, non_empty(&e.bssid));
    opt(&mut a, attrs::SSID, non_empty(&e.ssid));
    opt(&mut a, attrs::DEVICE_MAC, non_empty(&e.device_mac));
    // Spec versions disagree (`true` vs `"true"`): the attribute is always a boolean.
    if let Some(r) = e.random_mac {
        a.push(kv_bool("mist.event.random_mac", r));
    }
    a
}

/// Places an auth span: in its own trace (`own_trace`: a deny, a failure or a wired client),
/// else in the client's association (parked until the join if needed). Returns the ids used.
fn place_auth_span(
    cx: &mut Cx<'_>,
    mac: &str,
    mut s: Span,
    own_trace: bool,
) -> Option<(traces::TraceId, traces::SpanId)> {
    let (org, site) = cx.ids();
    let at_us = (cx.time_ns / 1000) as i64;
    let own = traces::auth_trace_id(org, site, mac, at_us);
    if own_trace {
        s.trace_id = own.to_vec();
        let id = traces::span_id(&own, "auth", at_us);
        s.span_id = id.to_vec();
        cx.spans.push((cx.origin.clone(), s));
        Some((own, id))
    } else {
        attach(cx, mac, PartKind::Auth, "auth", s, Some(own))
    }
}

/// NAC accounting: packet totals of finished sessions; a span in the client's association.
pub fn accounting(cx: &mut Cx<'_>, e: &NacAccounting, out: &mut EventOut) {
    let kind = non_empty(&e.kind).cloned().unwrap_or_else(|| "unknown".into());
    let mac = non_empty(&e.mac);
    let (ssid, auth) = (non_empty(&e.ssid), non_empty(&e.auth_type));
    let mut a = vec![kv(attrs::EVENT_TYPE, kind.as_str())];
    opt(&mut a, attrs::AUTH_TYPE, auth);
    opt(&mut a, attrs::CLIENT_MAC, mac);
    opt(&mut a, attrs::CLIENT_USERNAME, non_empty(&e.username));
    opt(&mut a, attrs::CLIENT_ADDRESS, non_empty(&e.client_ip));
    opt(&mut a, attrs::AP_MAC, non_empty(&e.ap));
    opt(&mut a, attrs::BSSID, non_empty(&e.bssid));
    opt(&mut a, attrs::SSID, ssid);
    out.consumed = &["type", "auth_type", "mac", "username", "client_ip", "ap", "bssid", "ssid"];
    let who = non_empty(&e.username).or(mac).map(String::as_str).unwrap_or("?");
    let phase = kind.rsplit('_').next().unwrap_or("").to_ascii_lowercase();
    out.body = format!(
        "NAC accounting {phase} for {who}: rx {} tx {} packets",
        e.rx_pkts.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
        e.tx_pkts.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
    );
    // Interim updates repeat running totals; only the stop record's totals are added, so
    // the counter never counts a packet twice.
    let is_stop = kind.to_ascii_uppercase().ends_with("STOP");
    if is_stop {
        for (dir, v) in [("receive", e.rx_pkts), ("transmit", e.tx_pkts)] {
            if let Some(v) = v {
                let mut labels = vec![
                    (attrs::IO_DIRECTION, dir.to_owned()),
                    (attrs::AUTH_TYPE, auth.cloned().unwrap_or_default()),
                    (attrs::SSID, ssid.cloned().unwrap_or_default()),
                ];
                push_client_mac(cx, &mut labels, mac);
                cx.count(&metrics::NAC_ACCOUNTING_PACKETS, labels, v);
            }
        }
    }
    if let Some(mac) = mac {
        let s = span(traces::SPAN_ACCOUNTING, cx.time_ns, cx.time_ns, a.clone());
        let kind = if is_stop { PartKind::End } else { PartKind::During };
        out.trace = attach(cx, mac, kind, "accounting", s, None);
    }
    out.attrs = a;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results() {
        assert_eq!(nac_result("NAC_CLIENT_PERMIT"), "permit");
        assert_eq!(nac_result("NAC_CLIENT_DENY"), "deny");
        assert_eq!(nac_result("NAC_IDP_AUTHC_FAILURE"), "failure");
        assert_eq!(nac_result("NAC_SESSION_STARTED"), "other");
    }
}
