//! The webhook body: `{"topic": "...", "events": [{...}, ...]}`.

use serde::Deserialize;
use serde_json::{Map, Value};

/// One webhook delivery's body, parsed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The topic, normalised (`_` → `-`, lowercase).
    pub topic: String,
    /// The events, each a JSON object (fields and types kept as sent).
    pub events: Vec<Map<String, Value>>,
}

/// Why a body is not a Mist webhook envelope. Shown to the sender in a 400 answer.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    /// Not JSON at all.
    #[error("body is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("body must be a JSON object with `topic` and `events`")]
    NotObject,
    /// `topic` missing or not a non-empty string.
    #[error("`topic` must be a non-empty string")]
    Topic,
    /// `events` missing or not an array.
    #[error("`events` must be an array of objects")]
    Events,
    /// An element of `events` is not an object.
    #[error("`events[{0}]` must be an object")]
    Event(usize),
}

#[derive(Deserialize)]
struct Raw {
    topic: Option<Value>,
    events: Option<Value>,
}

impl Envelope {
    /// Parses and validates a body. Never panics, whatever the bytes.
    pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
        let v: Value = serde_json::from_slice(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        let Value::Object(_) = v else { return Err(EnvelopeError::NotObject) };
        let raw: Raw = serde_json::from_value(v).map_err(|_| EnvelopeError::NotObject)?;
        let topic = match raw.topic {
            Some(Value::String(t)) if !t.trim().is_empty() => normalize_topic(&t),
            _ => return Err(EnvelopeError::Topic),
        };
        let events = match raw.events {
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, e)| match e {
                    Value::Object(m) => Ok(m),
                    _ => Err(EnvelopeError::Event(i)),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => return Err(EnvelopeError::Events),
        };
        Ok(Envelope { topic, events })
    }
}

/// Normalises a topic name: trims, lowercases, and treats `_` as `-` (Mist's spec versions
/// disagree on the separator).
pub fn normalize_topic(t: &str) -> String {
    t.trim().to_ascii_lowercase().replace('_', "-")
}

/// Topics Mist documents. Others are accepted and forwarded as logs; this list bounds metric
/// label values (anything else is labelled `other`).
pub const KNOWN_TOPICS: &[&str] = &[
    "alarms",
    "asset-raw-rssi",
    "audits",
    "client-info",
    "client-join",
    "client-latency",
    "client-sessions",
    "device-events",
    "device-updowns",
    "discovered-raw-rssi",
    "guest-authorizations",
    "location",
    "location-asset",
    "location-centrak",
    "location-client",
    "location-sdk",
    "location-unclient",
    "minis-application",
    "minis-reachability",
    "mxedge-events",
    "nac-accounting",
    "nac-events",
    "occupancy-alerts",
    "ping",
    "rssizone",
    "sdkclient-scan-data",
    "site-sle",
    "wifi-conn-raw",
    "wifi-unconn-raw",
    "zone",
];

/// The topic as a bounded metric label: itself if known, else `other`.
pub fn topic_label(topic: &str) -> &str {
    if KNOWN_TOPICS.binary_search(&topic).is_ok() { topic } else { "other" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let e = Envelope::parse(br#"{"topic":"Device_Events","events":[{"a":1}]}"#).unwrap();
        assert_eq!(e.topic, "device-events");
        assert_eq!(e.events.len(), 1);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(matches!(Envelope::parse(b"nope"), Err(EnvelopeError::Json(_))));
        assert_eq!(Envelope::parse(b"[1]"), Err(EnvelopeError::NotObject));
        assert_eq!(Envelope::parse(br#"{"events":[]}"#), Err(EnvelopeError::Topic));
        assert_eq!(Envelope::parse(br#"{"topic":"x","events":{}}"#), Err(EnvelopeError::Events));
        assert_eq!(Envelope::parse(br#"{"topic":"x","events":[{},2]}"#), Err(EnvelopeError::Event(1)));
    }

    #[test]
    fn known_topics_sorted() {
        let mut sorted = KNOWN_TOPICS.to_vec();
        sorted.sort();
        assert_eq!(sorted, KNOWN_TOPICS);
        assert_eq!(topic_label("zone"), "zone");
        assert_eq!(topic_label("evil"), "other");
    }
}
