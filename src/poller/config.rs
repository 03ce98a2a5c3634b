//! Configuration of the Mist API poller.

use crate::config::ConfigError;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// The poller; off unless `enabled` (or a token is given).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollerConfig {
    /// Turn the poller on.
    pub enabled: bool,
    /// API token (`MIST_API_TOKEN`).
    pub token: Secret,
    /// Organisation id (`MIST_ORG_ID`); discovered from `/self` when empty.
    pub org_id: String,
    /// Cloud name (e.g. `global01`, `emea01`) or base URL (`MIST_CLOUD`).
    pub cloud: String,
}

impl PollerConfig {
    /// Checks the poller's rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
