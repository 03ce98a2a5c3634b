//! Typed per-topic Mist events.
//!
//! Mist's payloads drift between spec versions and deliveries: `random_mac` is `true` or
//! `"true"`, audits' `before`/`after` are objects or JSON-encoded strings, timestamps are ints
//! or floats, and placeholder examples put `"string"` where a number belongs. Every field is
//! therefore decoded *leniently*: a value of the wrong shape becomes `None` instead of failing
//! the whole event. Fields this module does not name stay in the event's raw map, which the
//! log record keeps as `mist.event.*` attributes. Parsing never
//! panics; the only error is an event that is not a JSON object, which the envelope already
//! rules out.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A value that can be taken from any JSON value, or refused (→ `None`) without an error.
pub trait Lenient: Sized {
    /// The value, if `v` can reasonably be read as one.
    fn from_json(v: Value) -> Option<Self>;
}

impl Lenient for String {
    fn from_json(v: Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

impl Lenient for f64 {
    fn from_json(v: Value) -> Option<Self> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        }
    }
}

impl Lenient for i64 {
    fn from_json(v: Value) -> Option<Self> {
        match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl Lenient for bool {
    fn from_json(v: Value) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(b),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
            Value::Number(n) => n.as_i64().map(|i| i != 0),
            _ => None,
        }
    }
}

impl Lenient for Value {
    fn from_json(v: Value) -> Option<Self> {
        if v.is_null() { None } else { Some(v) }
    }
}

impl<T: Lenient> Lenient for Vec<T> {
    fn from_json(v: Value) -> Option<Self> {
        match v {
            Value::Array(items) => Some(items.into_iter().filter_map(T::from_json).collect()),
            _ => None,
        }
    }
}

impl Lenient for Map<String, Value> {
    fn from_json(v: Value) -> Option<Self> {
        match v {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
}

/// A JSON value that Mist sometimes sends JSON-encoded inside a string (audits'
/// `before`/`after`). A string that parses as a JSON object or array is decoded; any other
/// string is kept as a string.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded(pub Value);

impl Lenient for Decoded {
    fn from_json(v: Value) -> Option<Self> {
        match v {
            Value::Null => None,
            Value::String(s) => match serde_json::from_str::<Value>(&s) {
                Ok(parsed @ (Value::Object(_) | Value::Array(_))) => Some(Decoded(parsed)),
                _ => Some(Decoded(Value::String(s))),
            },
            other => Some(Decoded(other)),
        }
    }
}

/// `deserialize_with` helper: reads any JSON value, keeps it if it fits `T`.
fn lenient<'de, D: Deserializer<'de>, T: Lenient>(d: D) -> Result<Option<T>, D::Error> {
    Ok(T::from_json(Value::deserialize(d)?))
}

/// Declares an event struct whose every named field is an `Option` decoded leniently. Other
/// fields are skipped here (they stay in the event's raw map, which the log record carries):
/// no `#[serde(flatten)]` catch-all, which would copy every field of every event once more.
macro_rules! event_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Deserialize)]
        #[serde(default)]
        pub struct $name {
            $( $(#[$fm])* #[serde(deserialize_with = "lenient")] pub $f: Option<$t>, )*
        }
    };
}

event_struct! {
    /// `alarms`: an alarm raised or updated (Marvis, security, infrastructure).
    Alarm {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Site name (not always sent).
        site_name: String,
        /// Event time, seconds since the epoch.
        timestamp: f64,
        /// Alarm id.
        id: String,
        /// Alarm type, e.g. `rogue_ap`, `device_down`.
        #[serde(rename = "type")]
        kind: String,
        /// `infrastructure`, `security` or `marvis` (sent by some deliveries only).
        group: String,
        /// `info`, `warn` or `critical` (sent by some deliveries only).
        severity: String,
        /// Occurrences folded into this alarm.
        count: i64,
        /// Last occurrence, seconds.
        last_seen: f64,
        /// Whether this updates an alarm already raised.
        update: bool,
        /// Affected APs.
        aps: Vec<String>,
        /// Affected device host names.
        hostnames: Vec<String>,
    }
}

event_struct! {
    /// `audits`: a configuration change or admin action.
    Audit {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Site name.
        site_name: String,
        /// Event time, seconds.
        timestamp: f64,
        /// Audit id.
        id: String,
        /// What happened, in words.
        message: String,
        /// Who did it.
        admin_name: String,
        /// Their id.
        admin_id: String,
        /// Source IP of the change.
        src_ip: String,
        /// Browser or API client.
        user_agent: String,
        /// Device concerned.
        device_id: String,
        /// State before (decoded when JSON-encoded).
        before: Decoded,
        /// State after (decoded when JSON-encoded).
        after: Decoded,
    }
}

event_struct! {
    /// `device-events`: something happened on an AP, switch or gateway.
    DeviceEvent {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Site name.
        site_name: String,
        /// Event time, seconds.
        timestamp: f64,
        /// Event type, e.g. `AP_RESTARTED`, `SW_PORT_DOWN`.
        #[serde(rename = "type")]
        kind: String,
        /// Mist's own severity: `notice`, `warn`, …
        ev_type: String,
        /// Device MAC.
        mac: String,
        /// AP MAC (AP events).
        ap: String,
        /// AP name.
        ap_name: String,
        /// Device name.
        device_name: String,
        /// `ap`, `switch`, `gateway`.
        device_type: String,
        /// Hardware model.
        model: String,
        /// Why.
        reason: String,
        /// Human text.
        text: String,
        /// Port concerned.
        port_id: String,
        /// Audit record behind it.
        audit_id: String,
    }
}

event_struct! {
    /// `device-updowns`: a device connected to or disconnected from the cloud.
    DeviceUpdown {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Site name.
        site_name: String,
        /// Event time, seconds.
        timestamp: f64,
        /// `AP_CONNECTED`, `AP_DISCONNECTED`, `SW_…`, `GW_…`.
        #[serde(rename = "type")]
        kind: String,
        /// Device MAC (AP).
        ap: String,
        /// Device MAC (other spellings).
        mac: String,
        /// Device name.
        ap_name: String,
        /// Device name (other spellings).
        device_name: String,
        /// `ap`, `switch`, `gateway`.
        device_type: String,
        /// Why.
        reason: String,
    }
}

event_struct! {
    /// `mxedge-events`: an event on a Mist Edge.
    MxedgeEvent {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Event time, seconds.
        timestamp: f64,
        /// `ME_…`/`TT_…` event type.
        #[serde(rename = "type")]
        kind: String,
        /// Mist Edge id.
        mxedge_id: String,
        /// Mist Edge name.
        mxedge_name: String,
        /// Component concerned.
        component: String,
        /// Service concerned.
        service: String,
        /// Audit record behind it.
        audit_id: String,
    }
}

event_struct! {
    /// `client-join`: a wireless client associated to an AP.
    ClientJoin {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Site name.
        site_name: String,
        /// Event time, seconds.
        timestamp: f64,
        /// Client MAC.
        mac: String,
        /// AP MAC.
        ap: String,
        /// AP name.
        ap_name: String,
        /// Band: `24`, `5`, `6`.
        band: String,
        /// BSSID.
        bssid: String,
        /// SSID.
        ssid: String,
        /// WLAN id.
        wlan_id: String,
        /// Connect time, whole seconds.
        connect: f64,
        /// Connect time, seconds with microseconds.
        connect_float: f64,
        /// Signal at join, dBm.
        rssi: f64,
    }
}

event_struct! {
    /// `client-sessions`: a wireless session on one AP ended (disconnect or roam away).
    ClientSession {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Site name.
        site_name: String,
        /// Event time, seconds.
        timestamp: f64,
        /// Client MAC.
        mac: String,
        /// AP MAC.
        ap: String,
        /// AP name.
        ap_name: String,
        /// Band.
        band: String,
        /// BSSID.
        bssid: String,
        /// SSID.
        ssid: String,
        /// WLAN id.
        wlan_id: String,
        /// Connect time, whole seconds.
        connect: f64,
        /// Connect time, seconds with microseconds.
        connect_float: f64,
        /// Disconnect time, whole seconds.
        disconnect: f64,
        /// Disconnect time, seconds with microseconds.
        disconnect_float: f64,
        /// Session length, seconds.
        duration: f64,
        /// AP the client roamed to (empty when it left).
        next_ap: String,
        /// 802.11 reason code of the termination.
        termination_reason: i64,
        /// Last signal, dBm.
        rssi: f64,
        /// Client OS.
        client_os: String,
        /// Client family.
        client_family: String,
        /// Client model.
        client_model: String,
        /// Client manufacturer.
        client_manufacture: String,
        /// Client host name.
        hostname: String,
        /// Client user name.
        username: String,
    }
}

event_struct! {
    /// `client-info`: a client's IP/host name became known.
    ClientInfo {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Site name.
        site_name: String,
        /// Event time, seconds.
        timestamp: f64,
        /// Client MAC.
        mac: String,
        /// Client IP.
        ip: String,
        /// Client host name.
        hostname: String,
    }
}

event_struct! {
    /// `client-latency`: site-wide auth/DHCP/DNS latency aggregates (seconds).
    ClientLatency {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Event time, seconds.
        timestamp: f64,
        /// Average auth latency, s.
        avg_auth: f64,
        /// Minimum auth latency, s.
        min_auth: f64,
        /// Maximum auth latency, s.
        max_auth: f64,
        /// Average DHCP latency, s.
        avg_dhcp: f64,
        /// Minimum DHCP latency, s.
        min_dhcp: f64,
        /// Maximum DHCP latency, s.
        max_dhcp: f64,
        /// Average DNS latency, s.
        avg_dns: f64,
        /// Minimum DNS latency, s.
        min_dns: f64,
        /// Maximum DNS latency, s.
        max_dns: f64,
    }
}

event_struct! {
    /// `guest-authorizations`: a guest portal authorisation.
    GuestAuthorization {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Authorisation time, seconds (the topic has no `timestamp`).
        authorized_time: f64,
        /// Expiry, seconds.
        authorized_expiring_time: f64,
        /// Guest client MAC.
        client: String,
        /// AP MAC.
        ap: String,
        /// SSID.
        ssid: String,
        /// WLAN id.
        wlan_id: String,
        /// How the guest authenticated.
        auth_method: String,
    }
}

event_struct! {
    /// `nac-events`: a NAC (RADIUS) authentication result.
    NacEvent {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Site name.
        site_name: String,
        /// Event time, seconds.
        timestamp: f64,
        /// `NAC_CLIENT_PERMIT`, `NAC_CLIENT_DENY`, …
        #[serde(rename = "type")]
        kind: String,
        /// Client MAC.
        mac: String,
        /// AP MAC.
        ap: String,
        /// BSSID.
        bssid: String,
        /// SSID.
        ssid: String,
        /// `eap-tls`, `mab`, …
        auth_type: String,
        /// `wireless` or `wired`.
        client_type: String,
        /// User name.
        username: String,
        /// VLAN assigned.
        vlan: String,
        /// Whether the client uses a random MAC (`true` or `"true"`).
        random_mac: bool,
        /// Rule matched.
        nacrule_id: String,
        /// Whether a rule matched.
        nacrule_matched: bool,
        /// Why (deny/failure).
        text: String,
        /// Why (other spelling).
        reason: String,
        /// Switch/AP MAC for wired clients.
        device_mac: String,
    }
}

event_struct! {
    /// `nac-accounting`: RADIUS accounting start/update/stop.
    NacAccounting {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Event time, seconds.
        timestamp: f64,
        /// `NAC_ACCOUNTING_START`/`_UPDATE`/`_STOP`.
        #[serde(rename = "type")]
        kind: String,
        /// Client MAC.
        mac: String,
        /// AP MAC.
        ap: String,
        /// BSSID.
        bssid: String,
        /// SSID.
        ssid: String,
        /// Auth type.
        auth_type: String,
        /// `wireless` or `wired`.
        client_type: String,
        /// Client IP.
        client_ip: String,
        /// User name.
        username: String,
        /// Packets received in the session so far.
        rx_pkts: i64,
        /// Packets sent in the session so far.
        tx_pkts: i64,
    }
}

event_struct! {
    /// `site-sle`: the site's service-level figures (ratios 0..1) for an hour.
    SiteSle {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Event time, seconds.
        timestamp: f64,
        /// SLE name → value.
        sle: Map<String, Value>,
    }
}

event_struct! {
    /// One entry of an `occupancy-alerts` event.
    OccupancyAlert {
        /// Organisation id.
        org_id: String,
        /// Alert time, seconds.
        timestamp: f64,
        /// `COMPLIANCE-VIOLATION`, `COMPLIANCE-OK`.
        #[serde(rename = "type")]
        kind: String,
        /// Map id.
        map_id: String,
        /// Zone id.
        zone_id: String,
        /// Zone name.
        zone_name: String,
        /// People counted.
        current_occupancy: f64,
        /// Allowed.
        occupancy_limit: f64,
    }
}

impl Lenient for OccupancyAlert {
    fn from_json(v: Value) -> Option<Self> {
        match &v {
            Value::Object(m) => OccupancyAlert::deserialize(m).ok(),
            _ => None,
        }
    }
}

event_struct! {
    /// `occupancy-alerts`: zones over (or back under) their occupancy limit.
    OccupancyAlerts {
        /// Organisation id (sometimes only inside the alerts).
        org_id: String,
        /// Site id.
        site_id: String,
        /// Site name.
        site_name: String,
        /// Event time, seconds (usually only inside the alerts).
        timestamp: f64,
        /// The alerts.
        alert_events: Vec<OccupancyAlert>,
    }
}

event_struct! {
    /// `minis-application`: a Marvis Minis application probe result.
    MinisApplication {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Event time, seconds.
        timestamp: f64,
        /// Probing device MAC.
        device_mac: String,
        /// Probe name (target host).
        probe_name: String,
        /// Probe type.
        probe_type: String,
        /// Test type (`curl`, …).
        test_type: String,
        /// Latency, ms.
        latency: f64,
        /// Whether it succeeded.
        success: bool,
        /// VLAN probed from.
        vlan: String,
    }
}

event_struct! {
    /// `minis-reachability`: a Marvis Minis reachability probe result.
    MinisReachability {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Event time, seconds.
        timestamp: f64,
        /// Probing device MAC.
        device_mac: String,
        /// Probe name.
        probe_name: String,
        /// Probe target.
        probe_target: String,
        /// Probe type.
        probe_type: String,
        /// Test type (`ping`, …).
        test_type: String,
        /// Protocol.
        protocol: String,
        /// Average latency, ms.
        avg_latency: f64,
        /// Minimum latency, ms.
        min_latency: f64,
        /// Maximum latency, ms.
        max_latency: f64,
        /// Loss, percent.
        loss_percentage: f64,
        /// VLAN probed from.
        vlan: String,
    }
}

event_struct! {
    /// The location family (`location*`, `zone`, `rssizone`, `ping`), raw RSSI topics and
    /// SDK scans: positions and proximity, carried as logs.
    Location {
        /// Organisation id.
        org_id: String,
        /// Site id.
        site_id: String,
        /// Event time, seconds.
        timestamp: f64,
        /// Last seen (SDK scans carry this instead of `timestamp`).
        last_seen: f64,
        /// Device/asset/client MAC.
        mac: String,
        /// Map id.
        map_id: String,
        /// `wifi`, `asset`, `sdk`, …
        #[serde(rename = "type")]
        kind: String,
        /// Zone trigger: `enter`/`exit`.
        trigger: String,
        /// Zone id.
        zone_id: String,
        /// RSSI zone id (`rssizone` events).
        rssizone_id: String,
        /// SDK client id (SDK scans name the client this way).
        client_id: String,
        /// Object name.
        name: String,
        /// X on the map, m.
        x: f64,
        /// Y on the map, m.
        y: f64,
        /// Signal, dBm.
        rssi: f64,
    }
}

/// An event, typed by its topic.
#[derive(Debug, Clone, PartialEq)]
pub enum MistEvent {
    /// `alarms`.
    Alarm(Alarm),
    /// `audits`.
    Audit(Audit),
    /// `device-events`.
    DeviceEvent(DeviceEvent),
    /// `device-updowns`.
    DeviceUpdown(DeviceUpdown),
    /// `mxedge-events`.
    MxedgeEvent(MxedgeEvent),
    /// `client-join`.
    ClientJoin(ClientJoin),
    /// `client-sessions`.
    ClientSession(ClientSession),
    /// `client-info`.
    ClientInfo(ClientInfo),
    /// `client-latency`.
    ClientLatency(ClientLatency),
    /// `guest-authorizations`.
    GuestAuthorization(GuestAuthorization),
    /// `nac-events`.
    NacEvent(NacEvent),
    /// `nac-accounting`.
    NacAccounting(NacAccounting),
    /// `site-sle`.
    SiteSle(SiteSle),
    /// `occupancy-alerts`.
    OccupancyAlerts(OccupancyAlerts),
    /// `minis-application`.
    MinisApplication(MinisApplication),
    /// `minis-reachability`.
    MinisReachability(MinisReachability),
    /// Location, zone, raw RSSI and SDK scan topics.
    Location(Location),
    /// A topic this module does not type (forwarded as a generic log).
    Unknown,
}

/// Why an event could not be typed (the caller falls back to a generic log).
#[derive(Debug, thiserror::Error)]
#[error("cannot read `{topic}` event: {message}")]
pub struct EventError {
    /// The topic.
    pub topic: String,
    /// What went wrong.
    pub message: String,
}

/// Topics typed as [`Location`].
pub const LOCATION_TOPICS: &[&str] = &[
    "asset-raw-rssi",
    "discovered-raw-rssi",
    "location",
    "location-asset",
    "location-centrak",
    "location-client",
    "location-sdk",
    "location-unclient",
    "ping",
    "rssizone",
    "sdkclient-scan-data",
    "wifi-conn-raw",
    "wifi-unconn-raw",
    "zone",
];

/// Types one event of a (normalised) topic. Never panics.
pub fn parse_event(topic: &str, ev: &Map<String, Value>) -> Result<MistEvent, EventError> {
    fn de<'a, T: Deserialize<'a>>(topic: &str, ev: &'a Map<String, Value>) -> Result<T, EventError> {
        T::deserialize(ev).map_err(|e| EventError { topic: topic.to_owned(), message: e.to_string() })
    }
    Ok(match topic {
        "alarms" => MistEvent::Alarm(de(topic, ev)?),
        "audits" => MistEvent::Audit(de(topic, ev)?),
        "device-events" => MistEvent::DeviceEvent(de(topic, ev)?),
        "device-updowns" => MistEvent::DeviceUpdown(de(topic, ev)?),
        "mxedge-events" => MistEvent::MxedgeEvent(de(topic, ev)?),
        "client-join" => MistEvent::ClientJoin(de(topic, ev)?),
        "client-sessions" => MistEvent::ClientSession(de(topic, ev)?),
        "client-info" => MistEvent::ClientInfo(de(topic, ev)?),
        "client-latency" => MistEvent::ClientLatency(de(topic, ev)?),
        "guest-authorizations" => MistEvent::GuestAuthorization(de(topic, ev)?),
        "nac-events" => MistEvent::NacEvent(de(topic, ev)?),
        "nac-accounting" => MistEvent::NacAccounting(de(topic, ev)?),
        "site-sle" => MistEvent::SiteSle(de(topic, ev)?),
        "occupancy-alerts" => MistEvent::OccupancyAlerts(de(topic, ev)?),
        "minis-application" => MistEvent::MinisApplication(de(topic, ev)?),
        "minis-reachability" => MistEvent::MinisReachability(de(topic, ev)?),
        t if LOCATION_TOPICS.contains(&t) => MistEvent::Location(de(topic, ev)?),
        _ => MistEvent::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn random_mac_bool_or_string() {
        for v in [json!(true), json!("true"), json!("TRUE")] {
            let MistEvent::NacEvent(e) = parse_event("nac-events", &obj(json!({"random_mac": v}))).unwrap()
            else {
                panic!("not a nac event")
            };
            assert_eq!(e.random_mac, Some(true));
        }
        let MistEvent::NacEvent(e) = parse_event("nac-events", &obj(json!({"random_mac": "maybe"}))).unwrap()
        else {
            panic!()
        };
        assert_eq!(e.random_mac, None);
    }

    #[test]
    fn audit_before_after_decoded_from_strings() {
        let ev = obj(json!({"before": "{\"a\": {\"b\": [1, 2]}}", "after": {"a": 1}, "message": "x"}));
        let MistEvent::Audit(a) = parse_event("audits", &ev).unwrap() else { panic!() };
        assert_eq!(a.before, Some(Decoded(json!({"a": {"b": [1, 2]}}))));
        assert_eq!(a.after, Some(Decoded(json!({"a": 1}))));
        let ev = obj(json!({"before": "not json"}));
        let MistEvent::Audit(a) = parse_event("audits", &ev).unwrap() else { panic!() };
        assert_eq!(a.before, Some(Decoded(json!("not json"))));
    }

    #[test]
    fn wrong_types_become_none_and_unknown_fields_are_ignored() {
        let ev = obj(json!({"timestamp": "string", "rssi": "string", "mac": 12, "new_field": [1]}));
        let MistEvent::ClientJoin(j) = parse_event("client-join", &ev).unwrap() else { panic!() };
        assert_eq!(j.timestamp, None);
        assert_eq!(j.rssi, None);
        assert_eq!(j.mac.as_deref(), Some("12"));
    }

    #[test]
    fn int_and_float_timestamps() {
        for v in [json!(1691512031), json!(1691512031.0), json!("1691512031")] {
            let MistEvent::Alarm(a) = parse_event("alarms", &obj(json!({"timestamp": v}))).unwrap() else {
                panic!()
            };
            assert_eq!(a.timestamp, Some(1691512031.0));
        }
    }

    #[test]
    fn nested_occupancy_alerts_tolerate_junk() {
        let ev = obj(json!({"alert_events": [{"current_occupancy": 5, "zone_name": "z"}, 3, "x"]}));
        let MistEvent::OccupancyAlerts(o) = parse_event("occupancy-alerts", &ev).unwrap() else { panic!() };
        let alerts = o.alert_events.unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].current_occupancy, Some(5.0));
    }

    #[test]
    fn unknown_topic() {
        assert_eq!(parse_event("brand-new", &Map::new()).unwrap(), MistEvent::Unknown);
    }
}
