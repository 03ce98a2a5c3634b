//! Pure translation of Mist events into OpenTelemetry logs, metrics and spans (no I/O; the
//! clock is passed in).
//!
//! The API the pipeline and the poller use:
//! - [`Translator::translate`]: one delivery in → logs and spans out (deterministic: the same
//!   delivery always yields the same records and ids), metric points folded into the
//!   translator's aggregation state;
//! - [`Translator::collect_metrics`]: the aggregated metrics at a collection time.

pub mod config;

use crate::mist::Envelope;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use std::collections::BTreeMap;

pub use config::SignalsConfig;

/// One accepted delivery, as the translator sees it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// Name of the endpoint that received it (`default` or a configured name).
    pub endpoint: &'a str,
    /// The endpoint's static attributes, added to the resource.
    pub endpoint_attributes: &'a BTreeMap<String, String>,
    /// Receipt time (nanoseconds since the epoch): the logs' observed time.
    pub received_at_ns: u64,
    /// The parsed body.
    pub envelope: &'a Envelope,
}

/// What one delivery produced now (metrics are aggregated and come from
/// [`Translator::collect_metrics`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Translated {
    /// Log records, grouped by resource.
    pub logs: Vec<ResourceLogs>,
    /// Spans, grouped by resource.
    pub spans: Vec<ResourceSpans>,
}

/// Translates deliveries; holds the metric aggregation and the bounded correlation state.
pub struct Translator {
    cfg: SignalsConfig,
}

/// Instrumentation scope name on everything the translator emits.
pub const SCOPE: &str = "mist-otel";

impl Translator {
    /// Creates a translator.
    pub fn new(cfg: &SignalsConfig) -> Self {
        Self { cfg: cfg.clone() }
    }

    /// Translates one delivery.
    pub fn translate(&mut self, input: &Input<'_>) -> Translated {
        let _ = &self.cfg;
        let records = input
            .envelope
            .events
            .iter()
            .map(|ev| LogRecord {
                time_unix_nano: ev.get("timestamp").and_then(|t| t.as_f64()).map(secs_to_ns).unwrap_or(0),
                observed_time_unix_nano: input.received_at_ns,
                event_name: format!("mist.{}", input.envelope.topic),
                body: Some(string_value(serde_json::Value::Object(ev.clone()).to_string())),
                ..Default::default()
            })
            .collect();
        let mut attrs = vec![kv("service.name", "mist-otel"), kv("mist.webhook.endpoint", input.endpoint)];
        attrs.extend(input.endpoint_attributes.iter().map(|(k, v)| kv(k, v)));
        Translated {
            logs: vec![ResourceLogs {
                resource: Some(Resource { attributes: attrs, ..Default::default() }),
                scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
                ..Default::default()
            }],
            spans: Vec::new(),
        }
    }

    /// The aggregated metrics as of `now_ns`.
    pub fn collect_metrics(&mut self, _now_ns: u64) -> Vec<ResourceMetrics> {
        Vec::new()
    }
}

/// Float seconds → integer nanoseconds, in f64 (never f32), rounded to the microsecond Mist
/// sends so 1691512031.358188 becomes exactly 1691512031358188000.
pub fn secs_to_ns(secs: f64) -> u64 {
    if !secs.is_finite() || secs <= 0.0 {
        return 0;
    }
    ((secs * 1e6).round() as u64).saturating_mul(1000)
}

fn string_value(s: String) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(s)) }
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(string_value(v.into())), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_microseconds() {
        assert_eq!(secs_to_ns(1691512031.358188), 1_691_512_031_358_188_000);
        assert_eq!(secs_to_ns(-1.0), 0);
    }
}
