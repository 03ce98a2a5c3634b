//! `device-events`, `device-updowns` and `mxedge-events`.

use super::attrs::{self, kv, non_empty, opt};
use super::logs::Severity;
use super::metrics;
use super::{Cx, EventOut};
use crate::mist::events::{DeviceEvent, DeviceUpdown, MxedgeEvent};

/// Device type from an event type's prefix (`AP_…`, `SW_…`, `GW_…`, `ME_…`).
pub fn device_type_of(kind: &str) -> Option<&'static str> {
    let k = kind.trim().to_ascii_uppercase();
    [("AP_", "ap"), ("SW_", "switch"), ("GW_", "gateway"), ("ME_", "mxedge")]
        .into_iter()
        .find_map(|(p, t)| k.starts_with(p).then_some(t))
}

/// Whether an event type says something broke or went away (≥ WARN).
pub fn is_bad(kind: &str) -> bool {
    const BAD: &[&str] = &[
        "DISCONNECT",
        "_DOWN",
        "FAIL",
        "REJECT",
        "UNRESOLVED",
        "CRASH",
        "_ERROR",
        "LOST",
        "BLOCKED",
        "UNPLUGGED",
        "STUCK",
        "STORM",
        "_ALARM",
    ];
    let k = kind.to_ascii_uppercase();
    BAD.iter().any(|b| k.contains(b))
}

/// A device event: severity from `ev_type`, raised to WARN for failures/downs; counted by type.
pub fn device_event(cx: &mut Cx<'_>, e: &DeviceEvent, out: &mut EventOut) {
    let kind = non_empty(&e.kind).cloned().unwrap_or_else(|| "unknown".into());
    let dtype = non_empty(&e.device_type).cloned().or_else(|| device_type_of(&kind).map(str::to_owned));
    let mac = non_empty(&e.mac).or(non_empty(&e.ap));
    let name = non_empty(&e.device_name).or(non_empty(&e.ap_name));
    let mut sev = e.ev_type.as_deref().and_then(Severity::from_mist).unwrap_or(Severity::Info);
    if is_bad(&kind) {
        sev = sev.max(Severity::Warn);
    }
    out.severity = sev;
    out.attrs.push(kv(attrs::EVENT_TYPE, kind.as_str()));
    opt(&mut out.attrs, attrs::DEVICE_MAC, mac);
    opt(&mut out.attrs, attrs::DEVICE_NAME, name);
    opt(&mut out.attrs, attrs::DEVICE_TYPE, dtype.as_ref());
    opt(&mut out.attrs, attrs::DEVICE_MODEL, non_empty(&e.model));
    out.consumed = &["type", "mac", "ap", "device_name", "ap_name", "device_type", "model", "text"];
    let who = name.or(mac).map(String::as_str).unwrap_or("device");
    out.body = match non_empty(&e.text) {
        Some(t) => t.clone(),
        None => match non_empty(&e.reason) {
            Some(r) => format!("{kind} on {who}: {r}"),
            None => format!("{kind} on {who}"),
        },
    };
    cx.count(
        &metrics::DEVICE_EVENTS,
        vec![(attrs::EVENT_TYPE, kind), (attrs::DEVICE_TYPE, dtype.unwrap_or_else(|| "unknown".into()))],
        1,
    );
}

/// Up (1), down (0) or neither, from a device-updowns type.
pub fn up_state(kind: &str) -> Option<bool> {
    let k = kind.to_ascii_uppercase();
    if k.contains("DISCONNECT") || k.ends_with("_DOWN") {
        Some(false)
    } else if k.contains("CONNECTED") || k.contains("RESTARTED") || k.ends_with("_UP") {
        Some(true)
    } else {
        None
    }
}

/// A device up/down: WARN when down; the `mist.device.up` gauge at the event's time.
pub fn updown(cx: &mut Cx<'_>, e: &DeviceUpdown, out: &mut EventOut) {
    let kind = non_empty(&e.kind).cloned().unwrap_or_else(|| "unknown".into());
    let dtype = non_empty(&e.device_type).cloned().or_else(|| device_type_of(&kind).map(str::to_owned));
    let mac = non_empty(&e.ap).or(non_empty(&e.mac));
    let name = non_empty(&e.ap_name).or(non_empty(&e.device_name));
    let up = up_state(&kind);
    out.severity = if up == Some(false) { Severity::Warn } else { Severity::Info };
    out.attrs.push(kv(attrs::EVENT_TYPE, kind.as_str()));
    opt(&mut out.attrs, attrs::DEVICE_MAC, mac);
    opt(&mut out.attrs, attrs::DEVICE_NAME, name);
    opt(&mut out.attrs, attrs::DEVICE_TYPE, dtype.as_ref());
    out.consumed = &["type", "ap", "mac", "ap_name", "device_name", "device_type"];
    let what = match up {
        Some(true) => "is up",
        Some(false) => "is down",
        None => "changed state",
    };
    let who = match (name, mac) {
        (Some(n), Some(m)) => format!("{n} ({m})"),
        (Some(x), None) | (None, Some(x)) => x.clone(),
        (None, None) => "device".into(),
    };
    out.body = match non_empty(&e.reason) {
        Some(r) => format!("{} {who} {what} ({kind}: {r})", dtype.as_deref().unwrap_or("device")),
        None => format!("{} {who} {what} ({kind})", dtype.as_deref().unwrap_or("device")),
    };
    if let (Some(up), Some(mac)) = (up, mac) {
        let mut labels = vec![(attrs::DEVICE_MAC, mac.clone())];
        if let Some(n) = name {
            labels.push((attrs::DEVICE_NAME, n.clone()));
        }
        labels.push((attrs::DEVICE_TYPE, dtype.unwrap_or_else(|| "unknown".into())));
        cx.gauge(&metrics::DEVICE_UP, labels, if up { 1.0 } else { 0.0 });
    }
}

/// A Mist Edge event: WARN for failures; counted by type and Mist Edge.
pub fn mxedge(cx: &mut Cx<'_>, e: &MxedgeEvent, out: &mut EventOut) {
    let kind = non_empty(&e.kind).cloned().unwrap_or_else(|| "unknown".into());
    out.severity = if is_bad(&kind) { Severity::Warn } else { Severity::Info };
    out.attrs.push(kv(attrs::EVENT_TYPE, kind.as_str()));
    opt(&mut out.attrs, attrs::MXEDGE_ID, non_empty(&e.mxedge_id));
    opt(&mut out.attrs, attrs::MXEDGE_NAME, non_empty(&e.mxedge_name));
    out.consumed = &["type", "mxedge_id", "mxedge_name"];
    let who =
        non_empty(&e.mxedge_name).or(non_empty(&e.mxedge_id)).map(String::as_str).unwrap_or("Mist Edge");
    out.body = match non_empty(&e.service).or(non_empty(&e.component)) {
        Some(s) => format!("{kind} on {who} ({s})"),
        None => format!("{kind} on {who}"),
    };
    let mut labels = vec![(attrs::EVENT_TYPE, kind)];
    if let Some(id) = non_empty(&e.mxedge_id) {
        labels.push((attrs::MXEDGE_ID, id.clone()));
    }
    cx.count(&metrics::MXEDGE_EVENTS, labels, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(up_state("AP_DISCONNECTED"), Some(false));
        assert_eq!(up_state("SW_CONNECTED"), Some(true));
        assert_eq!(up_state("AP_RESTARTED"), Some(true));
        assert_eq!(up_state("string"), None);
        assert!(is_bad("SW_PORT_DOWN") && is_bad("AP_UPGRADE_FAILED") && !is_bad("AP_CONFIGURED"));
        assert_eq!(device_type_of("gw_vpn_path_down"), Some("gateway"));
    }
}
