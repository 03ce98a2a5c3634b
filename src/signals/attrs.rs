//! Attribute naming, decided once for webhooks and the poller alike.
//!
//! OpenTelemetry semantic conventions where one exists (`service.name`, `client.address`,
//! `error.type`, `network.io.direction`); a `mist.*` namespace for everything Mist-specific.
//! Event fields that have no semantic name are kept under `mist.event.<field>` with their JSON
//! types (see [`EVENT_FIELD_PREFIX`]).

use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value};
use serde_json::Value;

// Resource attributes.
/// `service.name` (default `mist-otel`).
pub const SERVICE_NAME: &str = "service.name";
/// Mist organisation id.
pub const ORG_ID: &str = "mist.org.id";
/// Mist site id.
pub const SITE_ID: &str = "mist.site.id";
/// Mist site name (logs and spans only: it is not sent with every event, so metrics keep
/// their identity on the id alone).
pub const SITE_NAME: &str = "mist.site.name";
/// Name of the webhook endpoint that received the delivery.
pub const WEBHOOK_ENDPOINT: &str = "mist.webhook.endpoint";

// Record, span and metric attributes.
/// The (normalised) topic.
pub const TOPIC: &str = "mist.topic";
/// Device (AP, switch, gateway) MAC.
pub const DEVICE_MAC: &str = "mist.device.mac";
/// Device name.
pub const DEVICE_NAME: &str = "mist.device.name";
/// `ap`, `switch`, `gateway`, `mxedge`.
pub const DEVICE_TYPE: &str = "mist.device.type";
/// Hardware model.
pub const DEVICE_MODEL: &str = "mist.device.model";
/// AP MAC a client is on.
pub const AP_MAC: &str = "mist.ap.mac";
/// AP name a client is on.
pub const AP_NAME: &str = "mist.ap.name";
/// BSSID.
pub const BSSID: &str = "mist.bssid";
/// Client MAC.
pub const CLIENT_MAC: &str = "mist.client.mac";
/// Client host name.
pub const CLIENT_HOSTNAME: &str = "mist.client.hostname";
/// Client user name.
pub const CLIENT_USERNAME: &str = "mist.client.username";
/// Client OS.
pub const CLIENT_OS: &str = "mist.client.os";
/// Client IP (OpenTelemetry semantic convention).
pub const CLIENT_ADDRESS: &str = "client.address";
/// SSID.
pub const SSID: &str = "mist.ssid";
/// WLAN id.
pub const WLAN_ID: &str = "mist.wlan.id";
/// Radio band (`24`, `5`, `6`).
pub const BAND: &str = "mist.band";
/// Alarm type.
pub const ALARM_TYPE: &str = "mist.alarm.type";
/// Alarm group (`infrastructure`, `security`, `marvis`).
pub const ALARM_GROUP: &str = "mist.alarm.group";
/// Alarm severity (`info`, `warn`, `critical`).
pub const ALARM_SEVERITY: &str = "mist.alarm.severity";
/// The event's `type` (device, NAC, Mist Edge, occupancy events).
pub const EVENT_TYPE: &str = "mist.event.type";
/// NAC outcome: `permit`, `deny`, `failure`, `other`.
pub const NAC_RESULT: &str = "mist.nac.result";
/// Authentication type (`eap-tls`, `mab`, …).
pub const AUTH_TYPE: &str = "mist.auth.type";
/// 802.11 reason code that ended a session.
pub const TERMINATION_REASON: &str = "mist.session.termination_reason";
/// Whether a session ended by roaming to another AP.
pub const ROAMED: &str = "mist.session.roamed";
/// Latency phase of `client-latency` (`auth`, `dhcp`, `dns`).
pub const LATENCY_PHASE: &str = "mist.latency.phase";
/// Aggregate of a latency gauge (`avg`, `min`, `max`).
pub const STAT: &str = "mist.stat";
/// SLE name (`time-to-connect`, …).
pub const SLE_METRIC: &str = "mist.sle.metric";
/// Minis probe name.
pub const PROBE_NAME: &str = "mist.probe.name";
/// Minis probe type.
pub const PROBE_TYPE: &str = "mist.probe.type";
/// Minis test type.
pub const TEST_TYPE: &str = "mist.test.type";
/// Zone id.
pub const ZONE_ID: &str = "mist.zone.id";
/// Zone name.
pub const ZONE_NAME: &str = "mist.zone.name";
/// Map id.
pub const MAP_ID: &str = "mist.map.id";
/// Mist Edge id.
pub const MXEDGE_ID: &str = "mist.mxedge.id";
/// Mist Edge name.
pub const MXEDGE_NAME: &str = "mist.mxedge.name";
/// Guest authentication method.
pub const AUTH_METHOD: &str = "mist.guest.auth_method";
/// `error.type` (OpenTelemetry): why a span failed.
pub const ERROR_TYPE: &str = "error.type";
/// `network.io.direction` (OpenTelemetry): `receive` or `transmit`.
pub const IO_DIRECTION: &str = "network.io.direction";
/// Session length on the session span, s.
pub const SESSION_DURATION: &str = "mist.session.duration";
/// AP a session roamed to, on the session span.
pub const NEXT_AP: &str = "mist.session.next_ap";
/// Why a span links to another (`roamed_from`).
pub const LINK_TYPE: &str = "mist.link.type";
/// Prefix of event fields that have no semantic name.
pub const EVENT_FIELD_PREFIX: &str = "mist.event.";

// Attributes only the poller sets (API figures the webhooks do not carry).
/// Mist device id.
pub const DEVICE_ID: &str = "mist.device.id";
/// Device hardware revision.
pub const DEVICE_HW_REV: &str = "mist.device.hw_rev";
/// Load average period (`1`, `5`, `15` minutes).
pub const LOAD_PERIOD: &str = "mist.load.period";
/// Switch/gateway port id.
pub const PORT_ID: &str = "mist.port.id";
/// Client manufacturer.
pub const CLIENT_MANUFACTURE: &str = "mist.client.manufacture";
/// Client device family.
pub const CLIENT_FAMILY: &str = "mist.client.family";
/// Client device model.
pub const CLIENT_MODEL: &str = "mist.client.model";
/// Client Wi-Fi protocol (`a`, `ac`, `ax`, …).
pub const CLIENT_PROTO: &str = "mist.client.proto";
/// Ticket status.
pub const TICKET_STATUS: &str = "mist.ticket.status";
/// Site country code.
pub const SITE_COUNTRY_CODE: &str = "mist.site.country_code";
/// Site time zone.
pub const SITE_TIMEZONE: &str = "mist.site.timezone";

/// The poller-only keys above (for the documentation check).
pub const POLLER: &[&str] = &[
    DEVICE_ID,
    DEVICE_HW_REV,
    LOAD_PERIOD,
    PORT_ID,
    CLIENT_MANUFACTURE,
    CLIENT_FAMILY,
    CLIENT_MODEL,
    CLIENT_PROTO,
    TICKET_STATUS,
    SITE_COUNTRY_CODE,
    SITE_TIMEZONE,
];

/// Every attribute key above but the poller-only ones (for the documentation check).
pub const ALL: &[&str] = &[
    SERVICE_NAME,
    ORG_ID,
    SITE_ID,
    SITE_NAME,
    WEBHOOK_ENDPOINT,
    TOPIC,
    DEVICE_MAC,
    DEVICE_NAME,
    DEVICE_TYPE,
    DEVICE_MODEL,
    AP_MAC,
    AP_NAME,
    BSSID,
    CLIENT_MAC,
    CLIENT_HOSTNAME,
    CLIENT_USERNAME,
    CLIENT_OS,
    CLIENT_ADDRESS,
    SSID,
    WLAN_ID,
    BAND,
    ALARM_TYPE,
    ALARM_GROUP,
    ALARM_SEVERITY,
    EVENT_TYPE,
    NAC_RESULT,
    AUTH_TYPE,
    TERMINATION_REASON,
    ROAMED,
    LATENCY_PHASE,
    STAT,
    SLE_METRIC,
    PROBE_NAME,
    PROBE_TYPE,
    TEST_TYPE,
    ZONE_ID,
    ZONE_NAME,
    MAP_ID,
    MXEDGE_ID,
    MXEDGE_NAME,
    AUTH_METHOD,
    ERROR_TYPE,
    IO_DIRECTION,
    SESSION_DURATION,
    NEXT_AP,
    LINK_TYPE,
];

/// A string attribute.
pub fn kv(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue { key: key.into(), value: Some(string(value)), ..Default::default() }
}

/// An integer attribute.
pub fn kv_i64(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(value)) }),
        ..Default::default()
    }
}

/// A boolean attribute.
pub fn kv_bool(key: &str, value: bool) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::BoolValue(value)) }),
        ..Default::default()
    }
}

/// A float attribute.
pub fn kv_f64(key: &str, value: f64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::DoubleValue(value)) }),
        ..Default::default()
    }
}

/// A string value.
pub fn string(s: impl Into<String>) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(s.into())) }
}

/// A JSON value as an OTLP value, keeping its type: integers stay integers, objects become
/// key-value lists, arrays arrays. `null` has no OTLP type and gives `None`.
pub fn json_value(v: &Value) -> Option<AnyValue> {
    use any_value::Value as V;
    let value = match v {
        Value::Null => return None,
        Value::Bool(b) => V::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => V::IntValue(i),
            None => V::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => V::StringValue(s.clone()),
        Value::Array(items) => V::ArrayValue(ArrayValue {
            values: items.iter().map(|i| json_value(i).unwrap_or_default()).collect(),
        }),
        Value::Object(m) => V::KvlistValue(KeyValueList {
            values: m
                .iter()
                .filter_map(|(k, v)| {
                    json_value(v).map(|value| KeyValue {
                        key: k.clone(),
                        value: Some(value),
                        ..Default::default()
                    })
                })
                .collect(),
        }),
    };
    Some(AnyValue { value: Some(value) })
}

/// The string if present and not empty (Mist sends `""` for unknown values).
pub fn non_empty(s: &Option<String>) -> Option<&String> {
    s.as_ref().filter(|s| !s.is_empty())
}

/// A non-empty string field as an attribute (empty strings say nothing).
pub fn opt(out: &mut Vec<KeyValue>, key: &str, value: Option<&String>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        out.push(kv(key, v.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_types_are_kept() {
        let v = json_value(&json!({"i": 3, "f": 1.5, "b": true, "a": [1, "x"], "n": null})).unwrap();
        let Some(any_value::Value::KvlistValue(list)) = v.value else { panic!("not a kvlist") };
        let get = |k: &str| list.values.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.clone());
        assert_eq!(list.values.len(), 4, "null is dropped");
        assert_eq!(get("i").unwrap().value, Some(any_value::Value::IntValue(3)));
        assert_eq!(get("f").unwrap().value, Some(any_value::Value::DoubleValue(1.5)));
        assert_eq!(get("b").unwrap().value, Some(any_value::Value::BoolValue(true)));
        assert!(json_value(&Value::Null).is_none());
    }
}
