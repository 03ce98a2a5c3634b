//! Log records: one per event, every topic.

use super::EventOut;
use super::attrs;
use crate::mist::events::Lenient;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use serde_json::{Map, Value};

/// Log severity: OpenTelemetry number and its short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Routine.
    Info,
    /// Something went wrong or is degraded (device down, NAC deny, warn alarm).
    Warn,
    /// Needs attention now (critical alarm, failed upgrade).
    Error,
}

impl Severity {
    /// The OTLP severity number.
    pub fn number(self) -> SeverityNumber {
        match self {
            Severity::Info => SeverityNumber::Info,
            Severity::Warn => SeverityNumber::Warn,
            Severity::Error => SeverityNumber::Error,
        }
    }

    /// The OTLP severity text (OpenTelemetry's short names, the same for every topic so
    /// queries need not know Mist's vocabularies; Mist's own word is kept in an attribute).
    pub fn text(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
        }
    }

    /// Mist's words (`info`, `notice`, `warn`, `warning`, `major`, `critical`, `error`).
    pub fn from_mist(word: &str) -> Option<Severity> {
        match word.trim().to_ascii_lowercase().as_str() {
            "info" | "informational" | "notice" | "debug" | "ok" => Some(Severity::Info),
            "warn" | "warning" | "minor" | "major" => Some(Severity::Warn),
            "critical" | "error" | "err" | "alert" | "emergency" | "fatal" => Some(Severity::Error),
            _ => None,
        }
    }
}

/// Fields that never become `mist.event.*` attributes: they are the resource or the record
/// time.
const RESOURCE_FIELDS: &[&str] = &["org_id", "site_id", "site_name", "timestamp"];

/// Builds the record of one event (taking the family's output: its attributes and body move
/// into the record rather than being copied).
pub fn record(
    topic: &str,
    ev: &Map<String, Value>,
    out: EventOut,
    time_ns: u64,
    received_ns: u64,
) -> LogRecord {
    let EventOut { severity, body, attrs: semantic, consumed, decoded, trace } = out;
    let mut attributes = Vec::with_capacity(semantic.len() + ev.len() + 1);
    attributes.push(attrs::kv(attrs::TOPIC, topic));
    attributes.extend(semantic);
    for (k, v) in ev {
        if RESOURCE_FIELDS.contains(&k.as_str()) || consumed.contains(&k.as_str()) {
            continue;
        }
        let value = match decoded.iter().find(|(name, _)| *name == k.as_str()) {
            Some((_, decoded)) => attrs::json_value(decoded),
            None => attrs::json_value(v),
        };
        if let Some(value) = value {
            attributes.push(KeyValue {
                // concat, not format!: this runs for every field of every event.
                key: [attrs::EVENT_FIELD_PREFIX, k].concat(),
                value: Some(value),
                ..Default::default()
            });
        }
    }
    let (trace_id, span_id) = match trace {
        Some((t, s)) => (t.to_vec(), s.to_vec()),
        None => (Vec::new(), Vec::new()),
    };
    LogRecord {
        time_unix_nano: time_ns,
        observed_time_unix_nano: received_ns,
        severity_number: severity.number() as i32,
        severity_text: severity.text().into(),
        body: Some(attrs::string(body)),
        attributes,
        event_name: ["mist.", topic].concat(),
        trace_id,
        span_id,
        ..Default::default()
    }
}

/// The generic time field of an event, raw (see [`super::time::read`]): its `timestamp`.
pub fn raw_timestamp(ev: &Map<String, Value>) -> Option<f64> {
    ev.get("timestamp").cloned().and_then(f64::from_json)
}
