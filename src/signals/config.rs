//! Configuration of the translation: resource attributes, temporality, cardinality, trace
//! correlation.

use crate::config::{ConfigError, Env, otel_list};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Aggregation temporality of the counters and histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Temporality {
    /// Running totals since the series started (Prometheus-style; the default).
    #[default]
    Cumulative,
    /// Changes since the previous collection (what some hosted backends prefer).
    Delta,
}

/// Translation settings (`signals:` in the YAML file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalsConfig {
    /// `service.name` on every resource. `OTEL_SERVICE_NAME` overrides it.
    pub service_name: String,
    /// Static resource attributes added to every resource. `OTEL_RESOURCE_ATTRIBUTES` adds to
    /// (and overrides) them.
    pub resource_attributes: BTreeMap<String, String>,
    /// `cumulative` (default) or `delta`. `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`
    /// overrides it (`lowmemory` means delta here: every instrument is a counter, histogram or
    /// gauge).
    pub temporality: Temporality,
    /// Adds `mist.client.mac` to client metrics (joins, sessions, roams, NAC). Off by default:
    /// one series per client is unbounded cardinality.
    pub per_client_metrics: bool,
    /// Most metric series kept at once; new series beyond it are dropped and counted.
    pub max_metric_series: usize,
    /// How long correlation entries (recent associations, auths waiting for their join) live
    /// without being touched.
    #[serde(with = "crate::config::duration")]
    pub correlation_ttl: Duration,
    /// Most correlation entries kept; the oldest are evicted first.
    pub correlation_capacity: usize,
    /// How far apart a NAC auth and the join's connect time may be to belong together.
    #[serde(with = "crate::config::duration")]
    pub nac_join_window: Duration,
    /// Bucket bounds (seconds) of `mist.client.session.duration`.
    pub session_duration_buckets: Vec<f64>,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        Self {
            service_name: "mist-otel".into(),
            resource_attributes: BTreeMap::new(),
            temporality: Temporality::Cumulative,
            per_client_metrics: false,
            max_metric_series: 10_000,
            correlation_ttl: Duration::from_secs(3600),
            correlation_capacity: 50_000,
            nac_join_window: Duration::from_secs(60),
            session_duration_buckets: vec![
                1.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
            ],
        }
    }
}

impl SignalsConfig {
    /// Applies `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`. Environment wins over the file.
    /// A `service.name` inside `OTEL_RESOURCE_ATTRIBUTES` is used when `OTEL_SERVICE_NAME` is
    /// unset (the OpenTelemetry precedence).
    pub fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        if let Some(raw) = env.get("OTEL_RESOURCE_ATTRIBUTES").filter(|v| !v.trim().is_empty()) {
            let attrs = otel_list::parse(raw).map_err(|e| ConfigError::Env {
                var: "OTEL_RESOURCE_ATTRIBUTES".into(),
                message: e.to_string(),
            })?;
            for (k, v) in attrs {
                if k == "service.name" {
                    self.service_name = v;
                } else {
                    self.resource_attributes.insert(k, v);
                }
            }
        }
        if let Some(name) = env.get("OTEL_SERVICE_NAME").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            self.service_name = name.to_owned();
        }
        const TEMP: &str = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        if let Some(t) = env.get(TEMP).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            self.temporality = match t.to_ascii_lowercase().as_str() {
                "cumulative" => Temporality::Cumulative,
                "delta" | "lowmemory" => Temporality::Delta,
                other => {
                    return Err(ConfigError::Env {
                        var: TEMP.into(),
                        message: format!("`{other}` is not cumulative, delta or lowmemory"),
                    });
                }
            };
        }
        Ok(())
    }

    /// Checks the rules the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |key: &str, message: String| ConfigError::Invalid { key: format!("signals.{key}"), message };
        if self.service_name.trim().is_empty() {
            return Err(bad("service_name", "must not be empty".into()));
        }
        if self.max_metric_series == 0 {
            return Err(bad("max_metric_series", "must be at least 1".into()));
        }
        if self.correlation_capacity == 0 {
            return Err(bad("correlation_capacity", "must be at least 1".into()));
        }
        let b = &self.session_duration_buckets;
        if b.is_empty() || b.iter().any(|x| !x.is_finite()) || b.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("session_duration_buckets", format!("{b:?} must be finite and increasing")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::env::from_pairs as env;

    #[test]
    fn env_sets_service_and_attributes() {
        let mut c = SignalsConfig::default();
        c.resource_attributes.insert("team".into(), "net".into());
        c.apply_env(&env(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod, service.name=from-attrs,note=a%20b%2Cc",
        )]))
        .unwrap();
        assert_eq!(c.service_name, "from-attrs");
        assert_eq!(c.resource_attributes["note"], "a b,c");
        assert_eq!(c.resource_attributes["team"], "net");
        c.apply_env(&env(&[("OTEL_SERVICE_NAME", "svc"), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=x")]))
            .unwrap();
        assert_eq!(c.service_name, "svc");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let mut c = SignalsConfig::default();
        let e = c.apply_env(&env(&[("OTEL_RESOURCE_ATTRIBUTES", "novalue")])).unwrap_err().to_string();
        assert!(e.contains("OTEL_RESOURCE_ATTRIBUTES") && e.contains("novalue"), "{e}");
        let e = c.apply_env(&env(&[("OTEL_RESOURCE_ATTRIBUTES", "a=%zz")])).unwrap_err().to_string();
        assert!(e.contains("%zz"), "{e}");
        let var = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE";
        let e = c.apply_env(&env(&[(var, "sideways")])).unwrap_err().to_string();
        assert!(e.contains(var), "{e}");
        c.apply_env(&env(&[(var, "LowMemory")])).unwrap();
        assert_eq!(c.temporality, Temporality::Delta);
    }

    #[test]
    fn yaml_round_trip_and_unknown_keys() {
        let c: SignalsConfig =
            serde_norway::from_str("temporality: delta\ncorrelation_ttl: 10m\nper_client_metrics: true\n")
                .unwrap();
        assert_eq!(c.temporality, Temporality::Delta);
        assert_eq!(c.correlation_ttl, Duration::from_secs(600));
        assert!(c.per_client_metrics);
        assert!(serde_norway::from_str::<SignalsConfig>("colour: red\n").is_err());
        let bad = SignalsConfig { session_duration_buckets: vec![10.0, 1.0], ..Default::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("session_duration_buckets"));
    }
}
