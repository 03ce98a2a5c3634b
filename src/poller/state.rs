//! What the poller knows: sites, per-MAC merged device and client stats, org figures.
//!
//! Stream frames are partial updates, so each is merged into the state kept for its MAC
//! (devices: a deep merge of the JSON object; clients: a compact typed record). Entries not
//! updated for `ttl` are forgotten, so departed clients, removed devices and removed sites
//! take their series with them — unlike the Go exporter, whose series lived forever.

use crate::mist::api::SiteRef;
use crate::telemetry::poller::ChannelKind;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The channel name for a site and kind.
pub fn channel(site_id: &str, kind: ChannelKind) -> String {
    format!("/sites/{site_id}/stats/{}", kind.as_str())
}

/// Splits `/sites/{id}/stats/devices|clients` into (site id, kind).
pub fn parse_channel(ch: &str) -> Option<(&str, ChannelKind)> {
    let rest = ch.strip_prefix("/sites/")?;
    let (site, tail) = rest.split_once('/')?;
    let kind = match tail {
        "stats/devices" => ChannelKind::Devices,
        "stats/clients" => ChannelKind::Clients,
        _ => return None,
    };
    (!site.is_empty()).then_some((site, kind))
}

/// The state shared by the stream's sink, the refresh loop and the readers (scrapes, OTLP).
pub type SharedState = Arc<Mutex<State>>;

/// Locks the state. Poisoning is ignored: every update is a merge or a replacement, so a
/// panic elsewhere never leaves it half-written in a way readers could not use.
pub fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A device (AP, switch, gateway): its merged stats.
#[derive(Debug, Clone)]
pub struct DeviceEntry {
    /// Site it was last reported by.
    pub site_id: String,
    /// Merged stats (keys starting with `_` — Mist's internal offsets — are not kept).
    pub data: Map<String, Value>,
    /// Last update.
    pub updated: Instant,
    /// When this series started (for OTLP cumulative start times).
    pub start_ns: u64,
}

/// Client label fields: (JSON key in Mist's client stats).
pub const CLIENT_LABEL_KEYS: [&str; 12] = [
    "mac",
    "username",
    "hostname",
    "os",
    "manufacture",
    "family",
    "model",
    "ap_id",
    "proto",
    "band",
    "ssid",
    "ap_mac",
];

/// Client numeric fields: (JSON keys, Mist's alternatives first-come).
pub const CLIENT_NUM_KEYS: [&[&str]; 20] = [
    &["channel"],
    &["dual_band"],
    &["idle_time"],
    &["is_guest"],
    &["last_seen"],
    &["num_locating_aps"],
    &["power_saving"],
    &["rx_bps"],
    &["rx_bytes"],
    &["rx_pkts", "rx_packets"],
    &["rx_rate"],
    &["rx_retries"],
    &["rssi"],
    &["snr"],
    &["tx_bps"],
    &["tx_bytes"],
    &["tx_pkts", "tx_packets"],
    &["tx_rate"],
    &["tx_retries"],
    &["uptime"],
];

/// A wireless client: merged labels and readings, compact (absent readings are NaN).
#[derive(Debug, Clone)]
pub struct ClientEntry {
    /// Site it was last reported by.
    pub site_id: Box<str>,
    /// Label values, indexed like [`CLIENT_LABEL_KEYS`].
    pub labels: [Box<str>; 12],
    /// Readings, indexed like [`CLIENT_NUM_KEYS`]; NaN when never reported.
    pub nums: [f64; 20],
    /// Last update.
    pub updated: Instant,
    /// When this series started.
    pub start_ns: u64,
}

/// Org-wide figures from REST, refreshed on their own interval.
#[derive(Debug, Clone, Default)]
pub struct OrgFigures {
    /// Alarm counts by type.
    pub alarms_by_type: Vec<(String, f64)>,
    /// Ticket counts by status.
    pub tickets_by_status: Vec<(String, f64)>,
    /// Device counts by site id.
    pub devices_by_site: HashMap<String, f64>,
    /// Client counts by site id.
    pub clients_by_site: HashMap<String, f64>,
    /// Whether figures were fetched at least once.
    pub fetched: bool,
}

/// Outcome of applying a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Objects merged.
    pub merged: u32,
    /// Client objects left out because of the client cap.
    pub dropped: u32,
    /// Objects without a usable MAC.
    pub invalid: u32,
}

/// Everything the poller tracks.
#[derive(Debug)]
pub struct State {
    /// Organisation id.
    pub org_id: String,
    /// Current sites by id (after filters).
    pub sites: BTreeMap<String, SiteRef>,
    /// Devices by MAC.
    pub devices: HashMap<String, DeviceEntry>,
    /// Clients by MAC.
    pub clients: HashMap<String, ClientEntry>,
    /// Org figures.
    pub org: OrgFigures,
    /// Most clients tracked.
    pub max_clients: usize,
    /// Forget entries not updated for this long.
    pub ttl: Duration,
}

impl State {
    /// Empty state.
    pub fn new(org_id: String, max_clients: usize, ttl: Duration) -> Self {
        Self {
            org_id,
            sites: BTreeMap::new(),
            devices: HashMap::new(),
            clients: HashMap::new(),
            org: OrgFigures::default(),
            max_clients,
            ttl,
        }
    }

    /// Replaces the site list; devices and clients of sites that are gone are dropped at once.
    /// Returns the ids of removed sites.
    pub fn set_sites(&mut self, sites: Vec<SiteRef>) -> Vec<String> {
        let new: BTreeMap<String, SiteRef> = sites.into_iter().map(|s| (s.id.clone(), s)).collect();
        let removed: Vec<String> = self.sites.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
        self.sites = new;
        let sites = &self.sites;
        self.devices.retain(|_, d| sites.contains_key(&d.site_id));
        self.clients.retain(|_, c| sites.contains_key(&*c.site_id));
        removed
    }

    /// Merges a stream `data` payload (one object or an array of them) from `channel`.
    pub fn apply(&mut self, channel: &str, data: Value, now: Instant, now_ns: u64) -> Applied {
        let mut out = Applied::default();
        let Some((site, kind)) = parse_channel(channel) else {
            out.invalid += 1;
            return out;
        };
        // Frames for a site that was just removed may still arrive: ignore them.
        if !self.sites.contains_key(site) {
            return out;
        }
        let items = match data {
            Value::Array(a) => a,
            v => vec![v],
        };
        for item in items {
            let Value::Object(obj) = item else {
                out.invalid += 1;
                continue;
            };
            let Some(mac) =
                obj.get("mac").and_then(Value::as_str).map(normalize_mac).filter(|m| !m.is_empty())
            else {
                out.invalid += 1;
                continue;
            };
            match kind {
                ChannelKind::Devices => self.upsert_device(site, mac, obj, now, now_ns),
                ChannelKind::Clients => {
                    if !self.clients.contains_key(&mac) && self.clients.len() >= self.max_clients {
                        out.dropped += 1;
                        continue;
                    }
                    self.upsert_client(site, mac, &obj, now, now_ns);
                }
            }
            out.merged += 1;
        }
        out
    }

    /// Merges a device object into the entry for its MAC (moving it to `site`).
    fn upsert_device(&mut self, site: &str, mac: String, obj: Map<String, Value>, now: Instant, now_ns: u64) {
        let e = self.devices.entry(mac).or_insert_with(|| DeviceEntry {
            site_id: site.to_owned(),
            data: Map::new(),
            updated: now,
            start_ns: now_ns,
        });
        if e.site_id != site {
            site.clone_into(&mut e.site_id);
        }
        e.updated = now;
        merge(&mut e.data, keep_device_fields(obj));
    }

    /// Merges a client object into the entry for its MAC (moving it to `site`).
    fn upsert_client(
        &mut self,
        site: &str,
        mac: String,
        obj: &Map<String, Value>,
        now: Instant,
        now_ns: u64,
    ) {
        let e = self.clients.entry(mac).or_insert_with(|| ClientEntry {
            site_id: site.into(),
            labels: Default::default(),
            nums: [f64::NAN; 20],
            updated: now,
            start_ns: now_ns,
        });
        if *e.site_id != *site {
            e.site_id = site.into();
        }
        e.updated = now;
        merge_client(e, obj);
    }

    /// Forgets devices and clients not updated within the TTL.
    pub fn prune(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.devices.retain(|_, d| now.saturating_duration_since(d.updated) < ttl);
        self.clients.retain(|_, c| now.saturating_duration_since(c.updated) < ttl);
    }

    /// Whether an entry updated at `updated` is still live at `now`.
    pub fn live(&self, updated: Instant, now: Instant) -> bool {
        now.saturating_duration_since(updated) < self.ttl
    }
}

/// Top-level device fields the metrics read (see `catalog.rs`); the rest of Mist's device
/// stats (LLDP text, BLE beacon config, IP config…) is dropped: a tracked AP with the full
/// sample costs about 13 KiB of heap instead of about 23 KiB (measured in tests/poller_memory.rs).
pub const DEVICE_KEYS: &[&str] = &[
    "ble_stat",
    "cpu_stat",
    "cpu_util",
    "created_time",
    "env_stat",
    "hw_rev",
    "id",
    "last_seen",
    "mem_total_kb",
    "mem_used_kb",
    "memory_stat",
    "model",
    "modified_time",
    "name",
    "num_clients",
    "port_stat",
    "power_budget",
    "power_constrained",
    "radio_stat",
    "rx_bps",
    "rx_bytes",
    "rx_pkts",
    "status",
    "tx_bps",
    "tx_bytes",
    "tx_pkts",
    "type",
    "uptime",
];

/// BLE fields the metrics read.
const BLE_KEYS: &[&str] = &["rx_bytes", "rx_pkts", "tx_bytes", "tx_pkts"];

fn keep_device_fields(mut obj: Map<String, Value>) -> Map<String, Value> {
    obj.retain(|k, _| DEVICE_KEYS.binary_search(&k.as_str()).is_ok());
    if let Some(Value::Object(ble)) = obj.get_mut("ble_stat") {
        ble.retain(|k, _| BLE_KEYS.contains(&k.as_str()));
    }
    obj
}

/// MACs lowercase hex without separators, as Mist writes them.
pub fn normalize_mac(m: &str) -> String {
    m.chars().filter(char::is_ascii_hexdigit).map(|c| c.to_ascii_lowercase()).collect()
}

/// Deep merge: objects merge key by key, everything else replaces. Mist's internal keys
/// (`_time`, `_partition`, `_offset_*`) are not kept.
pub fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        if k.starts_with('_') {
            continue;
        }
        match (into.get_mut(&k), v) {
            (Some(Value::Object(a)), Value::Object(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn merge_client(e: &mut ClientEntry, obj: &Map<String, Value>) {
    for (i, key) in CLIENT_LABEL_KEYS.iter().enumerate() {
        if let Some(v) = obj.get(*key) {
            let s: Box<str> = match v {
                Value::String(s) => s.as_str().into(),
                Value::Null => "".into(),
                other => other.to_string().into(),
            };
            if e.labels[i] != s {
                e.labels[i] = s;
            }
        }
    }
    for (i, keys) in CLIENT_NUM_KEYS.iter().enumerate() {
        if let Some(v) = keys.iter().find_map(|k| obj.get(*k)) {
            e.nums[i] = number(v).unwrap_or(f64::NAN);
        }
    }
}

/// A JSON value as a number: numbers as is (full f64 precision), booleans as 1/0, numeric strings parsed.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn site(id: &str) -> SiteRef {
        SiteRef {
            id: id.into(),
            name: format!("{id}-name"),
            country_code: String::new(),
            timezone: String::new(),
        }
    }

    #[test]
    fn partial_frames_merge_deeply() {
        let mut s = State::new("o".into(), 10, Duration::from_secs(60));
        s.set_sites(vec![site("s1")]);
        let now = Instant::now();
        s.apply(
            "/sites/s1/stats/devices",
            json!({"mac":"AA:bb:cc:00:00:01","radio_stat":{"band_5":{"channel":36}},"uptime":1}),
            now,
            1,
        );
        s.apply(
            "/sites/s1/stats/devices",
            json!({"mac":"aabbcc000001","radio_stat":{"band_24":{"channel":11}},"uptime":2,"_time":1.5}),
            now,
            2,
        );
        let d = &s.devices["aabbcc000001"];
        assert_eq!(d.data["radio_stat"]["band_5"]["channel"], 36);
        assert_eq!(d.data["radio_stat"]["band_24"]["channel"], 11);
        assert_eq!(d.data["uptime"], 2);
        assert!(!d.data.contains_key("_time"));
        let mut sorted = DEVICE_KEYS.to_vec();
        sorted.sort();
        assert_eq!(sorted, DEVICE_KEYS, "binary search needs a sorted list");
    }

    #[test]
    fn client_cap_and_site_removal() {
        let mut s = State::new("o".into(), 1, Duration::from_secs(60));
        s.set_sites(vec![site("s1"), site("s2")]);
        let now = Instant::now();
        let a = s.apply("/sites/s1/stats/clients", json!([{"mac":"01"},{"mac":"02"}]), now, 1);
        assert_eq!((a.merged, a.dropped), (1, 1));
        s.apply("/sites/s2/stats/devices", json!({"mac":"03"}), now, 1);
        assert_eq!(s.set_sites(vec![site("s2")]), vec!["s1".to_string()]);
        assert!(s.clients.is_empty());
        assert_eq!(s.devices.len(), 1);
        assert_eq!(s.apply("/sites/s1/stats/clients", json!({"mac":"09"}), now, 1), Applied::default());
    }

    #[test]
    fn untrusted_shapes_never_panic() {
        let mut s = State::new("o".into(), 1, Duration::from_secs(60));
        s.set_sites(vec![site("s1")]);
        let now = Instant::now();
        for v in [json!(null), json!(1), json!("x"), json!([1, null]), json!({"mac": 5}), json!({"mac": ""})]
        {
            let a = s.apply("/sites/s1/stats/clients", v, now, 1);
            assert_eq!(a.merged, 0);
        }
        assert_eq!(s.apply("/nope", json!({}), now, 1).invalid, 1);
        assert_eq!(parse_channel("/sites/x/stats/devices"), Some(("x", ChannelKind::Devices)));
        assert_eq!(parse_channel("/sites//stats/devices"), None);
    }
}
