//! The catalog: every family the poller exports, with the Go exporter's names and help texts,
//! and where each reading is found in Mist's stats.
//!
//! Types: cumulative byte/packet/retry/error totals are counters (Prometheus `counter`, OTLP
//! monotonic cumulative sum). Names ending in `_total` that the Go exporter used for
//! instantaneous counts (`mist_device_radio_clients_total`, `mist_device_radio_wlans_total`,
//! `mist_client_locating_aps_total`, the org/site counts) keep their names for dashboard
//! compatibility but are gauges, because they go down. Values are as Mist sends them (the Go
//! exporter did the same), so existing dashboards keep their scales.

use super::family::{Def, Kind};
use super::state::number;
use crate::signals::attrs;
use serde_json::{Map, Value};

/// Reads one figure from a device's merged stats.
pub type Extract = fn(&Map<String, Value>) -> Option<f64>;

/// The number at a path of nested keys.
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
pub const DEVICE: &[(&str, &str, Kind, Extract)] = &[
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
pub const RADIO: &[(&str, &str, Kind, &str)] = &[
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
pub const PORT: &[(&str, &str, Kind, &str)] = &[
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
pub const CLIENT: [Def; 20] = [
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
pub const CLIENT_LABELS: [(&str, &str); 12] = [
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

/// CPU load average by period (`1m`, `5m`, `15m` from `cpu_stat.load_avg`).
pub const LOAD_AVERAGE: Def =
    ("mist_device_load_average", "CPU load average (switches and gateways).", Kind::Gauge);

/// Sites of the organisation.
pub const ORG_SITES: Def =
    ("mist_org_sites_total", "The total number of sites in the organization.", Kind::Gauge);

/// Alarms by type (REST).
pub const ORG_ALARMS: Def = (
    "mist_org_alarms_total",
    "Alarms in the organization by type (Mist's count window; a gauge).",
    Kind::Gauge,
);

/// Tickets by status (REST).
pub const ORG_TICKETS: Def =
    ("mist_org_tickets_total", "Tickets in the organization by status (a gauge).", Kind::Gauge);

/// One series per site, with its country code and time zone.
pub const SITE_INFO: Def = ("mist_site_info", "Information about a Mist site.", Kind::Gauge);

/// Devices per site (REST).
pub const SITE_DEVICES: Def =
    ("mist_site_devices_total", "Devices assigned to the site (from REST).", Kind::Gauge);

/// Clients per site (REST).
pub const SITE_CLIENTS: Def =
    ("mist_site_clients_total", "Wireless clients at the site (from REST).", Kind::Gauge);
