//! The standard OpenTelemetry environment variables of the exporters, applied on top of the
//! file: `OTEL_EXPORTER_OTLP_*` and their per-signal forms `OTEL_EXPORTER_OTLP_<SIGNAL>_*`,
//! `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_BSP_*` and `OTEL_BLRP_*`. Errors name the variable.

use super::config::{ClientTls, Compression, ExportConfig, Protocol, Signal, SignalOverride};
use crate::config::{ConfigError, Env, otel_list};
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The TLS variables (suffix after the prefix) and the field each sets.
type TlsSlot = fn(&mut ClientTls) -> &mut Option<PathBuf>;
const TLS_VARS: [(&str, TlsSlot); 3] = [
    ("CERTIFICATE", |t| &mut t.ca_file),
    ("CLIENT_CERTIFICATE", |t| &mut t.cert_file),
    ("CLIENT_KEY", |t| &mut t.key_file),
];

impl ExportConfig {
    /// Applies the standard `OTEL_EXPORTER_OTLP_*` variables and the batch/interval ones.
    pub fn apply_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        // The common variables read like a signal's, then become the defaults of all signals.
        let common = read_override(env, "OTEL_EXPORTER_OTLP_", &self.tls)?;
        self.protocol = common.protocol.unwrap_or(self.protocol);
        self.endpoint = common.endpoint.or(self.endpoint.take());
        self.headers.extend(common.headers);
        self.compression = common.compression.unwrap_or(self.compression);
        self.timeout = common.timeout.unwrap_or(self.timeout);
        self.tls = common.tls.unwrap_or(std::mem::take(&mut self.tls));
        for signal in Signal::ALL {
            let prefix = format!("OTEL_EXPORTER_OTLP_{}_", signal.as_str().to_ascii_uppercase());
            let own = self.override_for(signal);
            let tls = own.tls.clone().unwrap_or_else(|| self.tls.clone());
            let read = read_override(env, &prefix, &tls)?;
            let own = self.override_mut(signal);
            own.protocol = read.protocol.or(own.protocol);
            own.endpoint = read.endpoint.or(own.endpoint.take());
            own.headers.extend(read.headers);
            own.compression = read.compression.or(own.compression);
            own.timeout = read.timeout.or(own.timeout);
            own.tls = read.tls.or(own.tls.take());
        }
        self.apply_batch_env(env)
    }

    fn override_mut(&mut self, signal: Signal) -> &mut SignalOverride {
        match signal {
            Signal::Logs => &mut self.logs,
            Signal::Metrics => &mut self.metrics,
            Signal::Traces => &mut self.traces,
        }
    }

    /// The metric interval and the batch processors' variables.
    fn apply_batch_env(&mut self, env: &Env) -> Result<(), ConfigError> {
        if let Some(v) = get(env, "OTEL_METRIC_EXPORT_INTERVAL") {
            self.metric_interval = millis("OTEL_METRIC_EXPORT_INTERVAL", v)?;
        }
        if let Some(v) = get(env, "OTEL_BLRP_SCHEDULE_DELAY") {
            self.batch.logs_delay = millis("OTEL_BLRP_SCHEDULE_DELAY", v)?;
        }
        if let Some(v) = get(env, "OTEL_BSP_SCHEDULE_DELAY") {
            self.batch.spans_delay = millis("OTEL_BSP_SCHEDULE_DELAY", v)?;
        }
        for k in ["OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] {
            if let Some(v) = get(env, k) {
                let n: usize = v.parse().map_err(|_| ConfigError::Invalid {
                    key: k.into(),
                    message: format!("`{v}` (expected a positive whole number)"),
                })?;
                self.batch.max_items = self.batch.max_items.min(n.max(1));
            }
        }
        Ok(())
    }
}

/// The variables `<prefix>PROTOCOL`, `…ENDPOINT`, `…HEADERS`, `…COMPRESSION`, `…TIMEOUT` and the
/// TLS ones; the TLS files are set on a copy of `tls`, returned only when one of them is set.
fn read_override(env: &Env, prefix: &str, tls: &ClientTls) -> Result<SignalOverride, ConfigError> {
    let var = |suffix: &str| format!("{prefix}{suffix}");
    let mut o = SignalOverride::default();
    if let Some(v) = get(env, &var("PROTOCOL")) {
        o.protocol = Some(protocol(&var("PROTOCOL"), v)?);
    }
    o.endpoint = get(env, &var("ENDPOINT")).map(str::to_owned);
    if let Some(v) = get(env, &var("HEADERS")) {
        o.headers = headers(&var("HEADERS"), v)?;
    }
    if let Some(v) = get(env, &var("COMPRESSION")) {
        o.compression = Some(compression(&var("COMPRESSION"), v)?);
    }
    if let Some(v) = get(env, &var("TIMEOUT")) {
        o.timeout = Some(millis(&var("TIMEOUT"), v)?);
    }
    for (suffix, slot) in TLS_VARS {
        if let Some(v) = get(env, &var(suffix)) {
            *slot(o.tls.get_or_insert_with(|| tls.clone())) = Some(v.into());
        }
    }
    Ok(o)
}

/// A variable's trimmed value; unset and blank are the same.
fn get<'a>(env: &'a Env, k: &str) -> Option<&'a str> {
    env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn protocol(var: &str, v: &str) -> Result<Protocol, ConfigError> {
    match v.trim() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" | "http" => Ok(Protocol::HttpProtobuf),
        "http/json" => Ok(Protocol::HttpJson),
        other => Err(ConfigError::Invalid {
            key: var.into(),
            message: format!("`{other}` (expected grpc, http/protobuf or http/json)"),
        }),
    }
}

fn compression(var: &str, v: &str) -> Result<Compression, ConfigError> {
    match v.trim() {
        "none" | "" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        other => Err(ConfigError::Invalid {
            key: var.into(),
            message: format!("`{other}` (expected none or gzip)"),
        }),
    }
}

/// `k1=v1,k2=v2`, percent-decoded (W3C Baggage style, as the OTLP spec says). Values are
/// secrets: errors never show them.
fn headers(var: &str, v: &str) -> Result<BTreeMap<String, Secret>, ConfigError> {
    let pairs = otel_list::parse(v)
        .map_err(|e| ConfigError::Invalid { key: var.into(), message: e.without_values() })?;
    Ok(pairs.into_iter().map(|(k, v)| (k, Secret::new(v))).collect())
}

fn millis(var: &str, v: &str) -> Result<Duration, ConfigError> {
    v.parse::<u64>().map(Duration::from_millis).map_err(|_| ConfigError::Invalid {
        key: var.into(),
        message: format!("`{v}` (expected a whole number of milliseconds)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::env::from_pairs as env;

    #[test]
    fn standard_env_and_per_signal_forms() {
        let mut c = ExportConfig::default();
        c.apply_env(&env(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example/otlp/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc,X-Scope-OrgID=tenant1"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "https://m.example/api/v1/otlp/v1/metrics"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://t.example:4317"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "300"),
        ]))
        .unwrap();
        c.validate().unwrap();
        let logs = c.target(Signal::Logs);
        assert_eq!(logs.url, "https://otlp.example/otlp/v1/logs");
        assert_eq!(logs.compression, Compression::Gzip);
        assert_eq!(logs.timeout, Duration::from_millis(2500));
        let h: BTreeMap<_, _> =
            logs.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_owned())).collect();
        assert_eq!(h["authorization"], "Bearer abc");
        assert_eq!(h["x-scope-orgid"], "tenant1");
        assert_eq!(c.target(Signal::Metrics).url, "https://m.example/api/v1/otlp/v1/metrics");
        let tr = c.target(Signal::Traces);
        assert_eq!((tr.protocol, tr.url.as_str()), (Protocol::Grpc, "https://t.example:4317"));
        assert_eq!(c.metric_interval, Duration::from_secs(15));
        assert_eq!(c.batch.spans_delay, Duration::from_millis(200));
        assert_eq!(c.batch.logs_delay, Duration::from_millis(300));
    }

    #[test]
    fn errors_name_key_and_value() {
        let mut c = ExportConfig::default();
        let e = c.apply_env(&env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")])).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && s.contains("carrier-pigeon"), "{s}");
        let mut c = ExportConfig { endpoint: Some("localhost:4317".into()), ..Default::default() };
        let s = c.validate().unwrap_err().to_string();
        assert!(s.contains("export.endpoint") && s.contains("localhost:4317"), "{s}");
        let e = c.apply_env(&env(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")])).unwrap_err().to_string();
        assert!(e.contains("OTEL_EXPORTER_OTLP_TIMEOUT") && e.contains("10s"), "{e}");
    }
}
