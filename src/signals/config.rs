//! Configuration of the translation: resource attributes, temporality, cardinality.

use crate::config::{ConfigError, Env};
use serde::{Deserialize, Serialize};

/// Translation settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignalsConfig {}

impl SignalsConfig {
    /// Applies `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn apply_env(&mut self, _env: &Env) -> Result<(), ConfigError> {
        Ok(())
    }
}
