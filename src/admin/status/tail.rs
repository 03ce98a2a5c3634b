//! The live tail: accepted events summarised as one bounded line each.

use crate::mist::envelope::Envelope;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// How many recent events the live tail keeps (and shows on first load).
pub const RECENT_EVENTS: usize = 200;
/// Longest event summary kept, in characters.
const SUMMARY_CHARS: usize = 400;

/// One event in the live tail.
#[derive(Debug, Clone, Serialize)]
pub struct TailEvent {
    /// Receipt time, ms since the epoch.
    pub received_at_ms: u64,
    /// The event's own `timestamp` (seconds), when it has one.
    pub timestamp: Option<f64>,
    /// Endpoint name.
    pub endpoint: String,
    /// Topic.
    pub topic: String,
    /// A short `key=value` summary of the event's scalar fields.
    pub summary: String,
}

/// The tail events of one accepted body (which ingest has already validated).
pub(super) fn tail_events(endpoint: &str, body: &[u8], received_at_ns: u64) -> Vec<TailEvent> {
    let Ok(envelope) = Envelope::parse(body) else { return Vec::new() };
    let skip = envelope.events.len().saturating_sub(RECENT_EVENTS);
    envelope
        .events
        .iter()
        .skip(skip)
        .map(|ev| TailEvent {
            received_at_ms: received_at_ns / 1_000_000,
            timestamp: ev.get("timestamp").and_then(Value::as_f64),
            endpoint: endpoint.to_owned(),
            topic: envelope.topic.clone(),
            summary: summarize(ev),
        })
        .collect()
}

/// Fields that say most about an event, shown first in its summary.
const LEADING_FIELDS: &[&str] = &[
    "type",
    "severity",
    "text",
    "site_name",
    "ap_name",
    "device_name",
    "ap",
    "mac",
    "client_mac",
    "hostname",
    "ssid",
    "reason",
    "message",
];

/// `key=value` pairs of an event's scalar fields, leading fields first, cut to a bounded length.
fn summarize(ev: &Map<String, Value>) -> String {
    let mut out = String::new();
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let leading = LEADING_FIELDS.iter().filter_map(|k| ev.get_key_value(*k));
    let rest = ev.iter().filter(|(k, _)| !LEADING_FIELDS.contains(&k.as_str()) && k.as_str() != "timestamp");
    for (k, v) in leading.chain(rest) {
        let Some(v) = scalar(v) else { continue };
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{k}={v}");
        if out.chars().count() > SUMMARY_CHARS {
            out = out.chars().take(SUMMARY_CHARS).collect();
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_bounded_and_leads_with_type() {
        let mut m = Map::new();
        m.insert("zzz".into(), Value::String("x".repeat(2000)));
        m.insert("type".into(), Value::String("AP_DISCONNECTED".into()));
        let s = summarize(&m);
        assert!(s.starts_with("type=AP_DISCONNECTED"));
        assert!(s.chars().count() <= SUMMARY_CHARS + 1);
    }
}
