//! Gathering: the state's devices, clients, sites and org figures as metric families, in the
//! catalog's names, with the Go exporter's Prometheus labels and the OTLP attribute keys.

use super::catalog::{
    CLIENT, CLIENT_LABELS, DEVICE, LOAD_AVERAGE, ORG_ALARMS, ORG_SITES, ORG_TICKETS, PORT, RADIO,
    SITE_CLIENTS, SITE_DEVICES, SITE_INFO,
};
use super::family::{Families, Family, Kind, Label, Point, lbl};
use super::state::{CLIENT_LABEL_KEYS, CLIENT_NUM_KEYS, ClientEntry, DeviceEntry, State, number};
use crate::signals::attrs;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

// One client family per numeric field, in the same order.
const _: () = assert!(CLIENT.len() == CLIENT_NUM_KEYS.len());

/// Gathers every family from the state as of `now` (entries past their TTL are left out even
/// before the next prune).
pub fn gather(st: &State, now: Instant) -> Vec<Family> {
    let mut f = Families::default();
    for (mac, d) in &st.devices {
        if st.live(d.updated, now) {
            device(&mut f, st, mac, d);
        }
    }
    for c in st.clients.values() {
        if st.live(c.updated, now) {
            client(&mut f, st, c);
        }
    }
    org(&mut f, st);
    sites(&mut f, st);
    f.into_vec()
}

/// What the points of one device, client, site or the org share.
struct Series {
    site: Option<Arc<str>>,
    labels: Arc<[Label]>,
    start_ns: u64,
}

impl Series {
    fn point(&self, value: f64, extra: Vec<Label>) -> Point {
        Point { site: self.site.clone(), labels: self.labels.clone(), extra, value, start_ns: self.start_ns }
    }
}

/// `org_id`, `site_id`, `site_name`: the Prometheus labels every site-level series starts with.
fn base(st: &State, site: &str) -> Vec<Label> {
    let name = st.sites.get(site).map(|s| s.name.clone()).unwrap_or_default();
    vec![lbl("org_id", "", st.org_id.as_str()), lbl("site_id", "", site), lbl("site_name", "", name)]
}

fn device(f: &mut Families, st: &State, mac: &str, d: &DeviceEntry) {
    let m = &d.data;
    let mut labels = base(st, &d.site_id);
    labels.extend([
        lbl("device_id", attrs::DEVICE_ID, device_id(m, mac)),
        lbl("device_name", attrs::DEVICE_NAME, text(m, "name")),
        lbl("device_type", attrs::DEVICE_TYPE, text(m, "type")),
        lbl("device_model", attrs::DEVICE_MODEL, text(m, "model")),
        lbl("device_hw_rev", attrs::DEVICE_HW_REV, text(m, "hw_rev")),
        lbl("", attrs::DEVICE_MAC, mac),
    ]);
    let s = Series { site: Some(d.site_id.as_str().into()), labels: labels.into(), start_ns: d.start_ns };
    for &(name, help, kind, ex) in DEVICE {
        if let Some(v) = ex(m) {
            f.push((name, help, kind), s.point(v, Vec::new()));
        }
    }
    if let Some(Value::Array(load)) = m.get("cpu_stat").and_then(|c| c.get("load_avg")) {
        for (v, period) in load.iter().zip(["1m", "5m", "15m"]) {
            if let Some(v) = number(v) {
                f.push(LOAD_AVERAGE, s.point(v, vec![lbl("period", attrs::LOAD_PERIOD, period)]));
            }
        }
    }
    per_entry(f, m, "radio_stat", RADIO, &s, |band| {
        let raw = band.strip_prefix("band_").unwrap_or(band);
        vec![lbl("radio", "", radio_label(band)), lbl("", attrs::BAND, raw)]
    });
    per_entry(f, m, "port_stat", PORT, &s, |port| vec![lbl("port", attrs::PORT_ID, port)]);
}

/// Each entry of a stats map (`radio_stat` by band, `port_stat` by port): one point per
/// table row the entry has a reading for, with the entry's own labels.
fn per_entry(
    f: &mut Families,
    m: &Map<String, Value>,
    field: &str,
    table: &[(&'static str, &'static str, Kind, &str)],
    s: &Series,
    labels: impl Fn(&str) -> Vec<Label>,
) {
    let Some(Value::Object(entries)) = m.get(field) else { return };
    for (key, entry) in entries {
        let Value::Object(entry) = entry else { continue };
        for &(name, help, kind, k) in table {
            if let Some(v) = entry.get(k).and_then(number) {
                f.push((name, help, kind), s.point(v, labels(key)));
            }
        }
    }
}

fn client(f: &mut Families, st: &State, c: &ClientEntry) {
    let mut labels = base(st, &c.site_id);
    for (i, (prom, otel)) in CLIENT_LABELS.iter().enumerate() {
        let raw = &*c.labels[i];
        if CLIENT_LABEL_KEYS[i] == "band" {
            labels.push(lbl(prom, "", radio_label(raw)));
            labels.push(lbl("", otel, raw));
        } else {
            labels.push(lbl(prom, otel, raw));
        }
    }
    let s = Series { site: Some((*c.site_id).into()), labels: labels.into(), start_ns: c.start_ns };
    for (def, v) in CLIENT.iter().zip(c.nums) {
        if !v.is_nan() {
            f.push(*def, s.point(v, Vec::new()));
        }
    }
}

fn org(f: &mut Families, st: &State) {
    let s = Series { site: None, labels: vec![lbl("org_id", "", st.org_id.as_str())].into(), start_ns: 0 };
    f.push(ORG_SITES, s.point(st.sites.len() as f64, vec![]));
    if !st.org.fetched {
        return;
    }
    for (t, n) in &st.org.alarms_by_type {
        f.push(ORG_ALARMS, s.point(*n, vec![lbl("type", attrs::ALARM_TYPE, t.clone())]));
    }
    for (status, n) in &st.org.tickets_by_status {
        f.push(ORG_TICKETS, s.point(*n, vec![lbl("status", attrs::TICKET_STATUS, status.clone())]));
    }
}

fn sites(f: &mut Families, st: &State) {
    for site in st.sites.values() {
        let s =
            Series { site: Some(site.id.as_str().into()), labels: base(st, &site.id).into(), start_ns: 0 };
        let info = vec![
            lbl("country_code", attrs::SITE_COUNTRY_CODE, site.country_code.clone()),
            lbl("timezone", attrs::SITE_TIMEZONE, site.timezone.clone()),
        ];
        f.push(SITE_INFO, s.point(1.0, info));
        if let Some(n) = st.org.devices_by_site.get(&site.id) {
            f.push(SITE_DEVICES, s.point(*n, vec![]));
        }
        if let Some(n) = st.org.clients_by_site.get(&site.id) {
            f.push(SITE_CLIENTS, s.point(*n, vec![]));
        }
    }
}

/// `band_24` / `24` → `2.4GHz` (the Go exporter's `radio` label values).
fn radio_label(band: &str) -> String {
    match band.strip_prefix("band_").unwrap_or(band) {
        "24" | "2.4" => "2.4GHz".into(),
        "5" => "5GHz".into(),
        "6" => "6GHz".into(),
        "" => String::new(),
        other => other.to_owned(),
    }
}

fn text(m: &Map<String, Value>, k: &str) -> String {
    match m.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// The device id; partial frames may lack it, and Mist derives it from the MAC, so the
/// series keeps one identity (and distinct devices never collapse into one label set).
fn device_id(m: &Map<String, Value>, mac: &str) -> String {
    match m.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("00000000-0000-0000-1000-{mac}"),
    }
}
