//! `site-sle`, `occupancy-alerts`, `minis-application` and `minis-reachability`: gauges at
//! the event's time.

use super::attrs::{self, non_empty, opt};
use super::logs::Severity;
use super::metrics;
use super::{Cx, EventOut, time};
use crate::mist::events::{Lenient, MinisApplication, MinisReachability, OccupancyAlerts, SiteSle};

/// Site SLEs: one `mist.site.sle` gauge per SLE metric.
pub fn site_sle(cx: &mut Cx<'_>, e: &SiteSle, out: &mut EventOut) {
    let mut parts = Vec::new();
    for (name, v) in e.sle.iter().flatten() {
        if let Some(v) = f64::from_json(v.clone()) {
            cx.gauge(&metrics::SITE_SLE, vec![(attrs::SLE_METRIC, name.clone())], v);
            parts.push(format!("{name} {v}"));
        }
    }
    out.body = format!("site SLE: {}", if parts.is_empty() { "none".into() } else { parts.join(", ") });
}

/// Occupancy alerts: occupancy and limit gauges per zone at the alert's time, alerts counted
/// by type; WARN when a zone is over its limit.
pub fn occupancy(cx: &mut Cx<'_>, e: &OccupancyAlerts, out: &mut EventOut) {
    let mut parts = Vec::new();
    for alert in e.alert_events.iter().flatten() {
        let kind = non_empty(&alert.kind).cloned().unwrap_or_else(|| "unknown".into());
        if kind.to_ascii_uppercase().contains("VIOLATION") {
            out.severity = Severity::Warn;
        }
        let mut zone = Vec::new();
        if let Some(z) = non_empty(&alert.zone_id) {
            zone.push((attrs::ZONE_ID, z.clone()));
        }
        if let Some(z) = non_empty(&alert.zone_name) {
            zone.push((attrs::ZONE_NAME, z.clone()));
        }
        if let Some(m) = non_empty(&alert.map_id) {
            zone.push((attrs::MAP_ID, m.clone()));
        }
        let at = time::first([alert.timestamp], cx.received_ns).0.unwrap_or(cx.time_ns);
        if let Some(v) = alert.current_occupancy {
            cx.metrics.gauge(&metrics::ZONE_OCCUPANCY, &cx.origin.0, zone.clone(), v, at);
        }
        if let Some(v) = alert.occupancy_limit {
            cx.metrics.gauge(&metrics::ZONE_OCCUPANCY_LIMIT, &cx.origin.0, zone, v, at);
        }
        cx.count(&metrics::OCCUPANCY_ALERTS, vec![(attrs::EVENT_TYPE, kind.clone())], 1);
        parts.push(format!(
            "zone {} {}/{} ({kind})",
            alert.zone_name.as_deref().or(alert.zone_id.as_deref()).unwrap_or("?"),
            alert.current_occupancy.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
            alert.occupancy_limit.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
        ));
    }
    out.body =
        format!("occupancy alert: {}", if parts.is_empty() { "no zones".into() } else { parts.join("; ") });
}

/// The attributes both Minis probe topics share; returns their metric labels and the fields the
/// log body names.
fn probe_common<'e>(
    out: &mut EventOut,
    device_mac: &'e Option<String>,
    probe_name: &'e Option<String>,
    probe_type: &'e Option<String>,
    test_type: &'e Option<String>,
) -> Probe<'e> {
    let (device, name, ptype, test) =
        (non_empty(device_mac), non_empty(probe_name), non_empty(probe_type), non_empty(test_type));
    opt(&mut out.attrs, attrs::DEVICE_MAC, device);
    opt(&mut out.attrs, attrs::PROBE_NAME, name);
    opt(&mut out.attrs, attrs::PROBE_TYPE, ptype);
    opt(&mut out.attrs, attrs::TEST_TYPE, test);
    out.consumed = &["device_mac", "probe_name", "probe_type", "test_type"];
    Probe { labels: probe_labels(device, name, ptype, test), device, name, test }
}

/// What [`probe_common`] hands back to the topic functions.
struct Probe<'e> {
    labels: Vec<(&'static str, String)>,
    device: Option<&'e String>,
    name: Option<&'e String>,
    test: Option<&'e String>,
}

fn probe_labels(
    device: Option<&String>,
    name: Option<&String>,
    ptype: Option<&String>,
    test: Option<&String>,
) -> Vec<(&'static str, String)> {
    let mut l = Vec::new();
    for (k, v) in [
        (attrs::DEVICE_MAC, device),
        (attrs::PROBE_NAME, name),
        (attrs::PROBE_TYPE, ptype),
        (attrs::TEST_TYPE, test),
    ] {
        if let Some(v) = v {
            l.push((k, v.clone()));
        }
    }
    l
}

/// A Minis application probe: latency and success gauges; WARN when it failed.
pub fn minis_application(cx: &mut Cx<'_>, e: &MinisApplication, out: &mut EventOut) {
    let Probe { labels, device, name, test } =
        probe_common(out, &e.device_mac, &e.probe_name, &e.probe_type, &e.test_type);
    if let Some(l) = e.latency {
        cx.gauge(&metrics::APP_LATENCY, labels.clone(), l);
    }
    if let Some(ok) = e.success {
        cx.gauge(&metrics::APP_SUCCESS, labels, if ok { 1.0 } else { 0.0 });
        if !ok {
            out.severity = Severity::Warn;
        }
    }
    out.body = format!(
        "application probe {} ({}) from {}: {}{}",
        name.map(String::as_str).unwrap_or("?"),
        test.map(String::as_str).unwrap_or("?"),
        device.map(String::as_str).unwrap_or("?"),
        match e.success {
            Some(true) => "ok",
            Some(false) => "failed",
            None => "unknown",
        },
        e.latency.map(|l| format!(", {l} ms")).unwrap_or_default()
    );
}

/// A Minis reachability probe: latency (avg/min/max) and loss-ratio gauges; WARN at ≥ 50 %
/// loss (the target is mostly unreachable).
pub fn minis_reachability(cx: &mut Cx<'_>, e: &MinisReachability, out: &mut EventOut) {
    let Probe { labels, device, name, .. } =
        probe_common(out, &e.device_mac, &e.probe_name, &e.probe_type, &e.test_type);
    for (stat, v) in [("avg", e.avg_latency), ("min", e.min_latency), ("max", e.max_latency)] {
        if let Some(v) = v {
            let mut l = labels.clone();
            l.push((attrs::STAT, stat.into()));
            cx.gauge(&metrics::REACH_LATENCY, l, v);
        }
    }
    if let Some(loss) = e.loss_percentage {
        cx.gauge(&metrics::REACH_LOSS, labels, loss / 100.0);
        if loss >= 50.0 {
            out.severity = Severity::Warn;
        }
    }
    out.body = format!(
        "reachability probe {} to {} from {}: avg {} ms, loss {} %",
        name.map(String::as_str).unwrap_or("?"),
        e.probe_target.as_deref().unwrap_or("?"),
        device.map(String::as_str).unwrap_or("?"),
        e.avg_latency.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
        e.loss_percentage.map(|v| v.to_string()).unwrap_or_else(|| "?".into()),
    );
}
