//! Configuration of the buffer and the exporters.

use crate::config::{ConfigError, Env};
use serde::{Deserialize, Serialize};

/// The buffer between ingest and export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Most bytes of undelivered bodies kept; when reached, ingest answers 503.
    pub max_bytes: u64,
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self { max_bytes: 256 * 1024 * 1024 }
    }
}

impl BufferConfig {
    /// Checks the buffer's rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_bytes < 1024 * 1024 {
            return Err(ConfigError::Invalid {
                key: "buffer.max_bytes".into(),
                message: format!("{} is too small (expected at least 1048576)", self.max_bytes),
            });
        }
        Ok(())
    }
}

/// OTLP export.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportConfig {}

impl ExportConfig {
    /// Applies the standard `OTEL_EXPORTER_OTLP_*` variables.
    pub fn apply_env(&mut self, _env: &Env) -> Result<(), ConfigError> {
        Ok(())
    }
    /// Checks the exporters' rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
