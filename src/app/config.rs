//! The complete configuration of a `mist-otel` process: every component's section, loaded from
//! one YAML file (optional) and the environment, then checked across sections.
//!
//! The generic loading (file, `${VAR}`, `MIST_OTEL__…` overrides, keyed errors) is
//! [`crate::config::load`]; here are the sections, the short aliases that name them, the
//! standard `OTEL_*` variables of the export and signals sections, and the rules that span
//! sections.

use crate::admin::AdminConfig;
use crate::buffer::config::BufferConfig;
use crate::config::{Alias, ConfigError, Env};
use crate::exporter::config::ExportConfig;
use crate::ingest::config::IngestConfig;
use crate::poller::config::PollerConfig;
use crate::signals::config::SignalsConfig;
use crate::telemetry::config::LogConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Short environment aliases: (variable, dotted key, is a comma-separated list).
pub const ALIASES: &[Alias] = &[
    ("MIST_WEBHOOK_SECRET", "ingest.secrets", true),
    ("MIST_OTEL_LISTEN", "ingest.listen", false),
    ("MIST_OTEL_ADMIN_LISTEN", "admin.listen", false),
    ("MIST_OTEL_DATA_DIR", "data_dir", false),
    ("MIST_API_TOKEN", "poller.token", false),
    ("MIST_ORG_ID", "poller.org_id", false),
    ("MIST_CLOUD", "poller.cloud", false),
    ("MIST_OTEL_EXPORTER", "export.exporter", false),
];

/// The complete configuration of a `mist-otel` process.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the durable buffer and other state.
    pub data_dir: PathBuf,
    /// Webhook listener.
    pub ingest: IngestConfig,
    /// Admin listener (health, metrics, status).
    pub admin: AdminConfig,
    /// On-disk buffer between ingest and export.
    pub buffer: BufferConfig,
    /// OTLP export.
    pub export: ExportConfig,
    /// Translation of events into signals.
    pub signals: SignalsConfig,
    /// Optional Mist API poller.
    pub poller: PollerConfig,
    /// Process log output.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./mist-otel-data"),
            ingest: IngestConfig::default(),
            admin: AdminConfig::default(),
            buffer: BufferConfig::default(),
            export: ExportConfig::default(),
            signals: SignalsConfig::default(),
            poller: PollerConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Config {
    /// Loads the configuration: defaults, then `path` (if any), then the environment.
    pub fn load(path: Option<&Path>, env: &Env) -> Result<Config, ConfigError> {
        let mut cfg: Config = crate::config::load(path, env, ALIASES)?;
        cfg.export.apply_env(env)?;
        cfg.signals.apply_env(env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks cross-field rules the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        /// Largest body: a buffer record (256 MiB) less room for its bookkeeping.
        const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024 - 64 * 1024;
        self.ingest.validate()?;
        self.admin.validate()?;
        self.buffer.validate()?;
        self.export.validate()?;
        self.poller.validate()?;
        self.signals.validate()?;
        // A body the buffer can never hold would get 503 forever and Mist would retry it forever.
        if self.ingest.max_body_bytes as u64 + 64 * 1024 > self.buffer.max_bytes {
            return Err(ConfigError::Invalid {
                key: "ingest.max_body_bytes".into(),
                message: format!(
                    "{} does not fit in buffer.max_bytes {} (expected at most buffer.max_bytes - 65536)",
                    self.ingest.max_body_bytes, self.buffer.max_bytes
                ),
            });
        }
        // One delivery is one record of the buffer's log, whose records are at most 256 MiB.
        if self.ingest.max_body_bytes as u64 > MAX_BODY_BYTES {
            return Err(ConfigError::Invalid {
                key: "ingest.max_body_bytes".into(),
                message: format!(
                    "{} is too large (expected at most {MAX_BODY_BYTES})",
                    self.ingest.max_body_bytes
                ),
            });
        }
        Ok(())
    }

    /// The effective configuration as YAML, every secret shown as `<redacted>`.
    pub fn to_redacted_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::env::from_pairs as env;
    use crate::exporter::config::{ExporterKind, Signal};

    #[test]
    fn a_body_limit_beyond_one_buffer_record_is_refused() {
        let mut c = Config::default();
        c.ingest.secrets = vec![crate::secret::Secret::new("x-secret-for-tests")];
        c.buffer.max_bytes = 4 * 1024 * 1024 * 1024;
        c.ingest.max_body_bytes = 300 * 1024 * 1024;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("ingest.max_body_bytes") && e.contains("too large"), "{e}");
        c.ingest.max_body_bytes = 200 * 1024 * 1024;
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "ingest:\n  lisen: 1.2.3.4:5\n").unwrap();
        let err = Config::load(Some(&p), &Env::new()).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
        std::fs::write(
            &p,
            "ingest:\n  endpoints:\n    - name: a\n      secrets: [x]\n      allow_sha1: maybe\n",
        )
        .unwrap();
        let err = Config::load(Some(&p), &Env::new()).unwrap_err().to_string();
        assert!(err.contains("ingest.endpoints[0].allow_sha1") && err.contains("maybe"), "{err}");
    }

    #[test]
    fn env_aliases_and_generic_overrides() {
        let e = env(&[
            ("MIST_WEBHOOK_SECRET", "first-secret, second-secret"),
            ("MIST_OTEL_LISTEN", "127.0.0.1:9"),
            ("MIST_OTEL__INGEST__MAX_BODY_BYTES", "123456"),
        ]);
        let c = Config::load(None, &e).unwrap();
        assert_eq!(c.ingest.secrets.len(), 2);
        // Kept as given, as in YAML: the space after the comma is part of the second secret.
        assert_eq!(c.ingest.secrets[1].expose(), " second-secret");
        assert_eq!(c.ingest.listen.to_string(), "127.0.0.1:9");
        assert_eq!(c.ingest.max_body_bytes, 123456);
        assert!(!c.to_redacted_yaml().contains("first-secret"));
    }

    #[test]
    fn secrets_stay_text_and_are_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "ingest:\n  secrets: [\"${S}\"]\n").unwrap();
        let c = Config::load(Some(&p), &env(&[("S", "00700700")])).unwrap();
        assert_eq!(c.ingest.secrets[0].expose(), "00700700");
        let c = Config::load(None, &env(&[("MIST_OTEL__INGEST__SECRETS", "01234567,abcdefgh")])).unwrap();
        assert_eq!(c.ingest.secrets[0].expose(), "01234567");
        assert_eq!(c.ingest.secrets[1].expose(), "abcdefgh");
        let c = Config::load(None, &env(&[("MIST_OTEL__POLLER__TOKEN", "123456789")])).unwrap();
        assert_eq!(c.poller.token.expose(), "123456789");
        std::fs::write(&p, "ingest:\n  secrets: {a: supersecretvalue}\n").unwrap();
        let err = Config::load(Some(&p), &Env::new()).unwrap_err().to_string();
        assert!(err.contains("ingest.secrets") && !err.contains("supersecretvalue"), "{err}");
    }

    #[test]
    fn whole_reference_becomes_typed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "ingest:\n  max_body_bytes: ${MAXB:-99999}\n").unwrap();
        let c = Config::load(Some(&p), &Env::new()).unwrap();
        assert_eq!(c.ingest.max_body_bytes, 99999);
    }

    #[test]
    fn credentials_in_the_endpoint_are_refused_without_echo() {
        let env: Env =
            [("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), "https://alice:s3cret@h.example".to_string())]
                .into();
        let err = Config::load(None, &env).unwrap_err().to_string();
        assert!(err.contains("export.endpoint") && !err.contains("s3cret"), "{err}");
    }

    #[test]
    fn exporter_alias_and_yaml_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.yaml");
        std::fs::write(
            &p,
            "ingest:\n  secrets: [s-secret-value]\nexport:\n  protocol: http/protobuf\n  endpoint: https://x.example\n  \
             headers:\n    X-Scope-OrgID: t1\n  traces:\n    endpoint: https://t.example/v1/traces\n\
             buffer:\n  overflow: drop_oldest\n",
        )
        .unwrap();
        let c = Config::load(Some(&p), &env(&[("MIST_OTEL_EXPORTER", "debug")])).unwrap();
        assert_eq!(c.export.exporter, ExporterKind::Debug);
        assert_eq!(c.buffer.overflow, crate::buffer::config::Overflow::DropOldest);
        assert_eq!(c.export.target(Signal::Traces).url, "https://t.example/v1/traces");
        assert_eq!(c.export.target(Signal::Metrics).url, "https://x.example/v1/metrics");
        assert!(!c.to_redacted_yaml().contains("t1"), "header values never print");
        let e = Config::load(Some(&p), &env(&[("MIST_OTEL_EXPORTER", "kafka")])).unwrap_err().to_string();
        assert!(e.contains("export.exporter") && e.contains("kafka"), "{e}");
    }
}
