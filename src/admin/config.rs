//! Configuration of the admin listener (YAML section `admin:`).

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Admin listener settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address (`MIST_OTEL_ADMIN_LISTEN`); loopback by default so metrics and status stay private.
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: "127.0.0.1:4321".parse().expect("valid default address") }
    }
}

impl AdminConfig {
    /// Checks the admin rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}
