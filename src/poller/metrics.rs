//! The poller's data as metric families: the Go exporter's names and labels on Prometheus text,
//! and the same set as OTLP gauges and cumulative sums.
//!
//! Types: cumulative byte/packet/retry/error totals are counters (Prometheus `counter`, OTLP
//! monotonic cumulative sum). Names ending in `_total` that the Go exporter used for
//! instantaneous counts (`mist_device_radio_clients_total`, `mist_device_radio_wlans_total`,
//! `mist_client_locating_aps_total`, the org/site counts) keep their names for dashboard
//! compatibility but are gauges, because they go down. Values are as Mist sends them (the Go
//! exporter did the same), so existing dashboards keep their scales.

use super::state::{CLIENT_LABEL_KEYS, CLIENT_NUM_KEYS, State, number};
use crate::signals::{self, SignalsConfig, attrs};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

/// Gauge or counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Goes up and down.
    Gauge,
    /// Cumulative total.
    Counter,
}

/// One label: its Prometheus name (empty = not on Prometheus, to keep the Go label set
/// exact) and its OTLP attribute key (empty = carried by the resource instead).
#[derive(Debug, Clone)]
pub struct Label {
    /// Prometheus label name.
    pub prom: &'static str,
    /// OTLP attribute key.
    pub otel: &'static str,
    /// Value.
    pub value: String,
}

/// One point.
#[derive(Debug, Clone)]
pub struct Point {
    /// Site of the point (`None` for org-wide figures); selects the OTLP resource.
    pub site: Option<Arc<str>>,
    /// Labels shared by every point of the same device, client or site (cloned by reference,
    /// so gathering 10,000 clients does not copy 200,000 label sets).
    pub labels: Arc<[Label]>,
    /// Labels of this point only (`radio`, `port`, `type`, …).
    pub extra: Vec<Label>,
    /// Value.
    pub value: f64,
    /// Series start (counters), nanoseconds since the epoch.
    pub start_ns: u64,
}

impl Point {
    /// Every label: shared ones, then this point's own.
    pub fn all_labels(&self) -> impl Iterator<Item = &Label> {
        self.labels.iter().chain(self.extra.iter())
    }
}

/// A metric family.
#[derive(Debug, Clone)]
pub struct Family {
    /// Name (the Go exporter's).
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Type.
    pub kind: Kind,
    /// Points.
    pub points: Vec<Point>,
}

/// Families gathered in a stable order.
#[derive(Default)]
pub struct Families {
    list: Vec<Family>,
    index: HashMap<&'static str, usize>,
}

impl Families {
    fn push(&mut self, name: &'static str, help: &'static str, kind: Kind, p: Point) {
        let i = *self.index.entry(name).or_insert_with(|| {
            self.list.push(Family { name, help, kind, points: Vec::new() });
            self.list.len() - 1
        });
        self.list[i].points.push(p);
    }

    /// The families.
    pub fn into_vec(self) -> Vec<Family> {
        self.list
    }
}

type Extract = fn(&Map<String, Value>) -> Option<f64>;

fn path(m: &Map<String, Value>, keys: &[&str]) -> Option<f64> {
    let mut cur = m.get(keys[0])?;
    for k in &keys[1..] {
        cur = cur.get(k)?;
    }
    number(cur)
}

macro_rules! at {
    ($($k:literal),+) => { (|m: &Map<String, Value>| path(m, &[$($k),+])) as Extract };
}

/// Device-level families: (name, help, kind, extractor).
const DEVICE: &[(&str, &str, Kind, Extract)] = &[
    (
        "mist_device_acceleration_x_g",
        "Accelerometer reading on the X-axis in G-force.",
        Kind::Gauge,
        at!("env_stat", "accel_x"),
    ),
    (
        "mist_device_acceleration_y_g",
        "Accelerometer reading on the Y-axis in G-force.",
        Kind::Gauge,
        at!("env_stat", "accel_y"),
    ),
    (
        "mist_device_acceleration_z_g",
        "Accelerometer reading on the Z-axis in G-force.",
        Kind::Gauge,
        at!("env_stat", "accel_z"),
    ),
    (
        "mist_device_ambient_temperature_celsius",
        "Ambient temperature measured by the device in Celsius.",
        Kind::Gauge,
        at!("env_stat", "ambient_temp"),
    ),
    (
        "mist_device_attitude_degrees",
        "Device attitude or orientation in degrees.",
        Kind::Gauge,
        at!("env_stat", "attitude"),
    ),
    (
        "mist_device_cpu_temperature_celsius",
        "CPU temperature of the device in Celsius.",
        Kind::Gauge,
        at!("env_stat", "cpu_temp"),
    ),
    (
        "mist_device_cpu_utilization_percent",
        "Current CPU utilization of the device.",
        Kind::Gauge,
        at!("cpu_util"),
    ),
    (
        "mist_device_created_timestamp_seconds",
        "The time the device was created, as a Unix timestamp.",
        Kind::Gauge,
        at!("created_time"),
    ),
    (
        "mist_device_humidity_percent",
        "Relative humidity percentage.",
        Kind::Gauge,
        at!("env_stat", "humidity"),
    ),
    (
        "mist_device_last_seen_timestamp_seconds",
        "The last time the device was seen, as a Unix timestamp.",
        Kind::Gauge,
        at!("last_seen"),
    ),
    (
        "mist_device_magnetometer_x_tesla",
        "Magnetometer reading on the X-axis in micro-Teslas (as Mist sends it).",
        Kind::Gauge,
        at!("env_stat", "magne_x"),
    ),
    (
        "mist_device_magnetometer_y_tesla",
        "Magnetometer reading on the Y-axis in micro-Teslas (as Mist sends it).",
        Kind::Gauge,
        at!("env_stat", "magne_y"),
    ),
    (
        "mist_device_magnetometer_z_tesla",
        "Magnetometer reading on the Z-axis in micro-Teslas (as Mist sends it).",
        Kind::Gauge,
        at!("env_stat", "magne_z"),
    ),
    (
        "mist_device_modified_timestamp_seconds",
        "The last time the device stats were modified, as a Unix timestamp.",
        Kind::Gauge,
        at!("modified_time"),
    ),
    (
        "mist_device_power_budget_watts",
        "The power budget of the device (as Mist sends it).",
        Kind::Gauge,
        at!("power_budget"),
    ),
    (
        "mist_device_power_constrained_status",
        "Whether the device is power constrained (1 for true, 0 for false).",
        Kind::Gauge,
        at!("power_constrained"),
    ),
    (
        "mist_device_pressure_pascals",
        "Atmospheric pressure (as Mist sends it).",
        Kind::Gauge,
        at!("env_stat", "pressure"),
    ),
    (
        "mist_device_receive_bits_per_second",
        "Bits per second received by the device.",
        Kind::Gauge,
        at!("rx_bps"),
    ),
    (
        "mist_device_status_code",
        "The operational status of the device (1 for connected, 0 otherwise).",
        Kind::Gauge,
        status_code,
    ),
    (
        "mist_device_transmit_bits_per_second",
        "Bits per second transmitted by the device.",
        Kind::Gauge,
        at!("tx_bps"),
    ),
    ("mist_device_uptime_seconds", "Device uptime in seconds.", Kind::Gauge, at!("uptime")),
    (
        "mist_device_vcore_voltage_volts",
        "VCore voltage of the device.",
        Kind::Gauge,
        at!("env_stat", "vcore_voltage"),
    ),
    // Beyond the Go exporter: readings Mist sends that it ignored.
    (
        "mist_device_receive_bytes_total",
        "Total bytes received by the device.",
        Kind::Counter,
        at!("rx_bytes"),
    ),
    (
        "mist_device_transmit_bytes_total",
        "Total bytes transmitted by the device.",
        Kind::Counter,
        at!("tx_bytes"),
    ),
    (
        "mist_device_receive_packets_total",
        "Total packets received by the device.",
        Kind::Counter,
        at!("rx_pkts"),
    ),
    (
        "mist_device_transmit_packets_total",
        "Total packets transmitted by the device.",
        Kind::Counter,
        at!("tx_pkts"),
    ),
    ("mist_device_clients", "Clients connected to the device.", Kind::Gauge, at!("num_clients")),
    ("mist_device_memory_used_bytes", "Memory in use on the device.", Kind::Gauge, |m| {
        path(m, &["mem_used_kb"]).map(|v| v * 1024.0)
    }),
    ("mist_device_memory_total_bytes", "Memory installed on the device.", Kind::Gauge, |m| {
        path(m, &["mem_total_kb"]).map(|v| v * 1024.0)
    }),
    (
        "mist_device_memory_utilization_percent",
        "Memory utilisation (switches and gateways).",
        Kind::Gauge,
        at!("memory_stat", "usage"),
    ),
    (
        "mist_device_ble_receive_bytes_total",
        "Total bytes received by the BLE radio.",
        Kind::Counter,
        at!("ble_stat", "rx_bytes"),
    ),
    (
        "mist_device_ble_transmit_bytes_total",
        "Total bytes transmitted by the BLE radio.",
        Kind::Counter,
        at!("ble_stat", "tx_bytes"),
    ),
    (
        "mist_device_ble_receive_packets_total",
        "Total packets received by the BLE radio.",
        Kind::Counter,
        at!("ble_stat", "rx_pkts"),
    ),
    (
        "mist_device_ble_transmit_packets_total",
        "Total packets transmitted by the BLE radio.",
        Kind::Counter,
        at!("ble_stat", "tx_pkts"),
    ),
];

fn status_code(m: &Map<String, Value>) -> Option<f64> {
    let s = m.get("status")?.as_str()?;
    Some(if s.eq_ignore_ascii_case("connected") { 1.0 } else { 0.0 })
}

/// Per-radio families: (name, help, kind, key in `radio_stat.band_*`).
const RADIO: &[(&str, &str, Kind, &str)] = &[
    ("mist_device_radio_bandwidth_mhz", "Radio channel bandwidth in MHz.", Kind::Gauge, "bandwidth"),
    ("mist_device_radio_channel", "The current radio channel.", Kind::Gauge, "channel"),
    (
        "mist_device_radio_clients_total",
        "Number of clients connected to this radio.",
        Kind::Gauge,
        "num_clients",
    ),
    (
        "mist_device_radio_dynamic_chaining_enabled",
        "Whether dynamic chaining is enabled for the radio (1 for true, 0 for false).",
        Kind::Gauge,
        "dynamic_chaining_enabled",
    ),
    ("mist_device_radio_noise_floor_dbm", "The radio noise floor in dBm.", Kind::Gauge, "noise_floor"),
    (
        "mist_device_radio_receive_bytes_total",
        "Total bytes received by the radio.",
        Kind::Counter,
        "rx_bytes",
    ),
    (
        "mist_device_radio_receive_packets_total",
        "Total packets received by the radio.",
        Kind::Counter,
        "rx_pkts",
    ),
    (
        "mist_device_radio_transmit_bytes_total",
        "Total bytes transmitted by the radio.",
        Kind::Counter,
        "tx_bytes",
    ),
    (
        "mist_device_radio_transmit_packets_total",
        "Total packets transmitted by the radio.",
        Kind::Counter,
        "tx_pkts",
    ),
    ("mist_device_radio_transmit_power_dbm", "The radio's transmit power in dBm.", Kind::Gauge, "power"),
    (
        "mist_device_radio_utilization_all_percent",
        "Total radio channel utilization percentage.",
        Kind::Gauge,
        "util_all",
    ),
    (
        "mist_device_radio_utilization_non_wifi_percent",
        "Radio channel utilization percentage by non-WiFi sources.",
        Kind::Gauge,
        "util_non_wifi",
    ),
    (
        "mist_device_radio_utilization_receive_in_bss_percent",
        "Radio channel utilization percentage by receiving data in the same BSS.",
        Kind::Gauge,
        "util_rx_in_bss",
    ),
    (
        "mist_device_radio_utilization_receive_other_bss_percent",
        "Radio channel utilization percentage by receiving data from other BSS.",
        Kind::Gauge,
        "util_rx_other_bss",
    ),
    (
        "mist_device_radio_utilization_transmit_percent",
        "Radio channel utilization percentage by transmitting data.",
        Kind::Gauge,
        "util_tx",
    ),
    (
        "mist_device_radio_utilization_undecodable_wifi_percent",
        "Radio channel utilization percentage by undecodable WiFi sources.",
        Kind::Gauge,
        "util_undecodable_wifi",
    ),
    (
        "mist_device_radio_utilization_unknown_wifi_percent",
        "Radio channel utilization percentage by unknown WiFi sources.",
        Kind::Gauge,
        "util_unknown_wifi",
    ),
    ("mist_device_radio_wlans_total", "Number of WLANs served by this radio.", Kind::Gauge, "num_wlans"),
];

/// Per-port families: (name, help, kind, key in `port_stat.<port>`).
const PORT: &[(&str, &str, Kind, &str)] = &[
    ("mist_device_port_up", "Whether the port is up (1) or down (0).", Kind::Gauge, "up"),
    ("mist_device_port_speed_mbps", "Negotiated port speed in Mbps.", Kind::Gauge, "speed"),
    (
        "mist_device_port_full_duplex",
        "Whether the port is full duplex (1) or not (0).",
        Kind::Gauge,
        "full_duplex",
    ),
    ("mist_device_port_receive_bytes_total", "Total bytes received on the port.", Kind::Counter, "rx_bytes"),
    (
        "mist_device_port_transmit_bytes_total",
        "Total bytes transmitted on the port.",
        Kind::Counter,
        "tx_bytes",
    ),
    (
        "mist_device_port_receive_packets_total",
        "Total packets received on the port.",
        Kind::Counter,
        "rx_pkts",
    ),
    (
        "mist_device_port_transmit_packets_total",
        "Total packets transmitted on the port.",
        Kind::Counter,
        "tx_pkts",
    ),
    (
        "mist_device_port_receive_errors_total",
        "Total receive errors on the port.",
        Kind::Counter,
        "rx_errors",
    ),
    (
        "mist_device_port_receive_peak_bits_per_second",
        "Peak receive rate on the port.",
        Kind::Gauge,
        "rx_peak_bps",
    ),
    (
        "mist_device_port_transmit_peak_bits_per_second",
        "Peak transmit rate on the port.",
        Kind::Gauge,
        "tx_peak_bps",
    ),
];

/// Client families, indexed like `CLIENT_NUM_KEYS`: (name, help, kind).
const CLIENT: [(&str, &str, Kind); 20] = [
    ("mist_client_channel", "The channel the client is connected on.", Kind::Gauge),
    (
        "mist_client_dual_band_capable",
        "Whether the client is dual-band capable (1 for true, 0 for false).",
        Kind::Gauge,
    ),
    ("mist_client_idle_seconds", "Time in seconds since the client was last active.", Kind::Gauge),
    (
        "mist_client_is_guest_status",
        "Whether the client is a guest user (1 for true, 0 for false).",
        Kind::Gauge,
    ),
    (
        "mist_client_last_seen_timestamp_seconds",
        "The last time the client was seen, as a Unix timestamp.",
        Kind::Gauge,
    ),
    ("mist_client_locating_aps_total", "The number of APs that can hear the client.", Kind::Gauge),
    (
        "mist_client_power_saving_mode_active",
        "Whether the client is in power-saving mode (1 for true, 0 for false).",
        Kind::Gauge,
    ),
    ("mist_client_receive_bits_per_second", "Bits per second received from the client.", Kind::Gauge),
    ("mist_client_receive_bytes_total", "Total bytes received from the client.", Kind::Counter),
    ("mist_client_receive_packets_total", "Total packets received from the client.", Kind::Counter),
    ("mist_client_receive_rate_mbps", "The receive data rate in Mbps.", Kind::Gauge),
    ("mist_client_receive_retries_total", "Total number of receive retries.", Kind::Counter),
    ("mist_client_rssi_dbm", "The client's Received Signal Strength Indicator in dBm.", Kind::Gauge),
    ("mist_client_snr_db", "The client's Signal-to-Noise Ratio in dB.", Kind::Gauge),
    ("mist_client_transmit_bits_per_second", "Bits per second transmitted to the client.", Kind::Gauge),
    ("mist_client_transmit_bytes_total", "Total bytes transmitted to the client.", Kind::Counter),
    ("mist_client_transmit_packets_total", "Total packets transmitted to the client.", Kind::Counter),
    ("mist_client_transmit_rate_mbps", "The transmit data rate in Mbps.", Kind::Gauge),
    ("mist_client_transmit_retries_total", "Total number of transmit retries.", Kind::Counter),
    ("mist_client_uptime_seconds", "The client's session uptime in seconds.", Kind::Gauge),
];

/// Client labels, indexed like `CLIENT_LABEL_KEYS`: (Prometheus name, OTLP key).
const CLIENT_LABELS: [(&str, &str); 12] = [
    ("client_mac", attrs::CLIENT_MAC),
    ("client_username", attrs::CLIENT_USERNAME),
    ("client_hostname", attrs::CLIENT_HOSTNAME),
    ("client_os", attrs::CLIENT_OS),
    ("client_manufacture", attrs::CLIENT_MANUFACTURE),
    ("client_family", attrs::CLIENT_FAMILY),
    ("client_model", attrs::CLIENT_MODEL),
    ("device_id", attrs::DEVICE_ID),
    ("proto", attrs::CLIENT_PROTO),
    ("radio", attrs::BAND),
    ("ssid", attrs::SSID),
    ("", attrs::AP_MAC),
];

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

fn lbl(prom: &'static str, otel: &'static str, value: impl Into<String>) -> Label {
    Label { prom, otel, value: value.into() }
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

/// Gathers every family from the state as of `now` (entries past their TTL are left out even
/// before the next prune).
pub fn gather(st: &State, now: Instant) -> Vec<Family> {
    let mut f = Families::default();
    let org = st.org_id.as_str();
    let site_name = |id: &str| st.sites.get(id).map(|s| s.name.clone()).unwrap_or_default();
    let base = |site: &str| {
        vec![lbl("org_id", "", org), lbl("site_id", "", site), lbl("site_name", "", site_name(site))]
    };

    for (mac, d) in &st.devices {
        if !st.live(d.updated, now) {
            continue;
        }
        let m = &d.data;
        let site: Arc<str> = d.site_id.as_str().into();
        let mut labels = base(&d.site_id);
        labels.extend([
            lbl("device_id", attrs::DEVICE_ID, device_id(m, mac)),
            lbl("device_name", attrs::DEVICE_NAME, text(m, "name")),
            lbl("device_type", attrs::DEVICE_TYPE, text(m, "type")),
            lbl("device_model", attrs::DEVICE_MODEL, text(m, "model")),
            lbl("device_hw_rev", attrs::DEVICE_HW_REV, text(m, "hw_rev")),
            lbl("", attrs::DEVICE_MAC, mac.clone()),
        ]);
        let labels: Arc<[Label]> = labels.into();
        let point = |value: f64, extra: Vec<Label>| Point {
            site: Some(site.clone()),
            labels: labels.clone(),
            extra,
            value,
            start_ns: d.start_ns,
        };
        for (name, help, kind, ex) in DEVICE {
            if let Some(v) = ex(m) {
                f.push(name, help, *kind, point(v, Vec::new()));
            }
        }
        if let Some(Value::Array(load)) = m.get("cpu_stat").and_then(|c| c.get("load_avg")) {
            for (v, period) in load.iter().zip(["1m", "5m", "15m"]) {
                if let Some(v) = number(v) {
                    let p = point(v, vec![lbl("period", attrs::LOAD_PERIOD, period)]);
                    f.push(
                        "mist_device_load_average",
                        "CPU load average (switches and gateways).",
                        Kind::Gauge,
                        p,
                    );
                }
            }
        }
        if let Some(Value::Object(radios)) = m.get("radio_stat") {
            for (band, r) in radios {
                let Value::Object(r) = r else { continue };
                for (name, help, kind, key) in RADIO {
                    if let Some(v) = r.get(*key).and_then(number) {
                        let raw = band.strip_prefix("band_").unwrap_or(band);
                        let p =
                            point(v, vec![lbl("radio", "", radio_label(band)), lbl("", attrs::BAND, raw)]);
                        f.push(name, help, *kind, p);
                    }
                }
            }
        }
        if let Some(Value::Object(ports)) = m.get("port_stat") {
            for (port, p) in ports {
                let Value::Object(p) = p else { continue };
                for (name, help, kind, key) in PORT {
                    if let Some(v) = p.get(*key).and_then(number) {
                        f.push(name, help, *kind, point(v, vec![lbl("port", attrs::PORT_ID, port.clone())]));
                    }
                }
            }
        }
    }

    for c in st.clients.values() {
        if !st.live(c.updated, now) {
            continue;
        }
        let mut labels = base(&c.site_id);
        for (i, (prom, otel)) in CLIENT_LABELS.iter().enumerate() {
            let raw = &*c.labels[i];
            if CLIENT_LABEL_KEYS[i] == "band" {
                labels.push(lbl(prom, "", radio_label(raw)));
                labels.push(lbl("", otel, raw));
            } else {
                labels.push(lbl(prom, otel, raw));
            }
        }
        let site: Arc<str> = (*c.site_id).into();
        let labels: Arc<[Label]> = labels.into();
        for (i, (name, help, kind)) in CLIENT.iter().enumerate() {
            debug_assert_eq!(CLIENT_NUM_KEYS.len(), CLIENT.len());
            let v = c.nums[i];
            if v.is_nan() {
                continue;
            }
            f.push(
                name,
                help,
                *kind,
                Point {
                    site: Some(site.clone()),
                    labels: labels.clone(),
                    extra: Vec::new(),
                    value: v,
                    start_ns: c.start_ns,
                },
            );
        }
    }

    let org_labels: Arc<[Label]> = vec![lbl("org_id", "", org)].into();
    let org_point = |value: f64, extra: Vec<Label>| Point {
        site: None,
        labels: org_labels.clone(),
        extra,
        value,
        start_ns: 0,
    };
    f.push(
        "mist_org_sites_total",
        "The total number of sites in the organization.",
        Kind::Gauge,
        org_point(st.sites.len() as f64, vec![]),
    );
    if st.org.fetched {
        for (t, n) in &st.org.alarms_by_type {
            let p = org_point(*n, vec![lbl("type", attrs::ALARM_TYPE, t.clone())]);
            f.push(
                "mist_org_alarms_total",
                "Alarms in the organization by type (Mist's count window; a gauge).",
                Kind::Gauge,
                p,
            );
        }
        for (s, n) in &st.org.tickets_by_status {
            let p = org_point(*n, vec![lbl("status", attrs::TICKET_STATUS, s.clone())]);
            f.push(
                "mist_org_tickets_total",
                "Tickets in the organization by status (a gauge).",
                Kind::Gauge,
                p,
            );
        }
    }
    for s in st.sites.values() {
        let site: Arc<str> = s.id.as_str().into();
        let shared: Arc<[Label]> = base(&s.id).into();
        let l = vec![
            lbl("country_code", attrs::SITE_COUNTRY_CODE, s.country_code.clone()),
            lbl("timezone", attrs::SITE_TIMEZONE, s.timezone.clone()),
        ];
        f.push(
            "mist_site_info",
            "Information about a Mist site.",
            Kind::Gauge,
            Point { site: Some(site.clone()), labels: shared.clone(), extra: l, value: 1.0, start_ns: 0 },
        );
        if let Some(n) = st.org.devices_by_site.get(&s.id) {
            let p = Point {
                site: Some(site.clone()),
                labels: shared.clone(),
                extra: vec![],
                value: *n,
                start_ns: 0,
            };
            f.push("mist_site_devices_total", "Devices assigned to the site (from REST).", Kind::Gauge, p);
        }
        if let Some(n) = st.org.clients_by_site.get(&s.id) {
            let p = Point {
                site: Some(site.clone()),
                labels: shared.clone(),
                extra: vec![],
                value: *n,
                start_ns: 0,
            };
            f.push("mist_site_clients_total", "Wireless clients at the site (from REST).", Kind::Gauge, p);
        }
    }
    f.into_vec()
}

/// Appends Prometheus text (format 0.0.4) for the families.
pub fn render_prometheus(families: &[Family], out: &mut String) {
    for fam in families {
        let ty = match fam.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let _ = writeln!(out, "# HELP {} {}", fam.name, fam.help);
        let _ = writeln!(out, "# TYPE {} {ty}", fam.name);
        for p in &fam.points {
            out.push_str(fam.name);
            out.push('{');
            let mut first = true;
            for l in p.all_labels().filter(|l| !l.prom.is_empty()) {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(l.prom);
                out.push_str("=\"");
                escape_label(&l.value, out);
                out.push('"');
            }
            out.push_str("} ");
            write_value(p.value, out);
            out.push('\n');
        }
    }
}

fn escape_label(v: &str, out: &mut String) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        // `{}` on f64 is the shortest representation that round-trips: full precision.
        let _ = write!(out, "{v}");
    }
}

/// The same families as OTLP: one `ResourceMetrics` per site (and one for org-wide figures),
/// whose resource is [`signals::resource`] with `mist.org.id`, `mist.site.id`, `mist.site.name`.
pub fn to_otlp(
    families: &[Family],
    st_org: &str,
    site_names: &HashMap<String, String>,
    signals_cfg: &SignalsConfig,
    now_ns: u64,
) -> Vec<ResourceMetrics> {
    // site (None = org) → metric name → metric
    let mut by_site: Vec<(Option<Arc<str>>, Vec<Metric>)> = Vec::new();
    let mut idx: HashMap<Option<Arc<str>>, usize> = HashMap::new();
    for fam in families {
        let mut per_site: HashMap<Option<Arc<str>>, Vec<NumberDataPoint>> = HashMap::new();
        for p in &fam.points {
            let attributes = p
                .all_labels()
                .filter(|l| !l.otel.is_empty() && !l.value.is_empty())
                .map(|l| attrs::kv(l.otel, l.value.as_str()))
                .collect();
            let dp = NumberDataPoint {
                attributes,
                start_time_unix_nano: if fam.kind == Kind::Counter { p.start_ns } else { 0 },
                time_unix_nano: now_ns,
                value: Some(number_data_point::Value::AsDouble(p.value)),
                ..Default::default()
            };
            per_site.entry(p.site.clone()).or_default().push(dp);
        }
        for (site, data_points) in per_site {
            let data = match fam.kind {
                Kind::Gauge => metric::Data::Gauge(Gauge { data_points }),
                Kind::Counter => metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
            };
            let m = Metric {
                name: fam.name.to_owned(),
                description: fam.help.to_owned(),
                data: Some(data),
                ..Default::default()
            };
            let i = *idx.entry(site.clone()).or_insert_with(|| {
                by_site.push((site.clone(), Vec::new()));
                by_site.len() - 1
            });
            by_site[i].1.push(m);
        }
    }
    by_site
        .into_iter()
        .map(|(site, metrics)| {
            let mut extra = vec![(attrs::ORG_ID, st_org)];
            if let Some(s) = &site {
                extra.push((attrs::SITE_ID, s));
                if let Some(n) = site_names.get(&**s).filter(|n| !n.is_empty()) {
                    extra.push((attrs::SITE_NAME, n));
                }
            }
            ResourceMetrics {
                resource: Some(signals::resource(signals_cfg, &extra)),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: "mist-otel/poller".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_full_precision() {
        let mut s = String::new();
        write_value(1686592607.62131, &mut s);
        assert_eq!(s, "1686592607.62131");
        let mut s = String::new();
        escape_label("a\"b\\c\nd", &mut s);
        assert_eq!(s, "a\\\"b\\\\c\\nd");
    }
}
