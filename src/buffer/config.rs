//! Configuration of the buffer (YAML section `buffer:`).

use crate::config::{ConfigError, duration};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What happens to a new delivery when the buffer is at its size cap.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Refuse it: ingest answers 503 + Retry-After and Mist retries later (no loss).
    #[default]
    Reject,
    /// Accept it and delete the oldest undelivered deliveries (counted as dropped).
    DropOldest,
}

/// When the durable buffer forces its writes to the disk.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// Every 200 waits for an `fdatasync` (shared by concurrent requests): what was answered
    /// 200 survives a power loss or kernel crash too. Costs throughput at high request rates.
    Always,
    /// Every 200 waits for the write into the operating system (it survives a crash or
    /// `kill -9` of mist-otel); an `fdatasync` runs every `fsync_interval`, so a power loss or
    /// kernel crash can lose the deliveries of the last interval.
    #[default]
    Interval,
}

impl Fsync {
    /// The setting as written in the configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Interval => "interval",
        }
    }
}

/// The buffer between ingest and export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BufferConfig {
    /// Most bytes of undelivered bodies kept; when reached, ingest answers 503 (or drops the
    /// oldest, see `overflow`).
    pub max_bytes: u64,
    /// Keep deliveries on disk (`<data_dir>/buffer/`) before answering 200. `false` keeps
    /// them in memory only (lost on a crash or restart).
    pub durable: bool,
    /// `interval` (default) or `always`: see [`Fsync`].
    pub fsync: Fsync,
    /// How often `fsync: interval` forces written deliveries to the disk.
    #[serde(with = "duration")]
    pub fsync_interval: Duration,
    /// `reject` (503, default) or `drop_oldest`.
    pub overflow: Overflow,
    /// Most deliveries written by one commit (group commit, `fsync: always`).
    pub max_commit_batch: usize,
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024 * 1024,
            durable: true,
            fsync: Fsync::Interval,
            fsync_interval: Duration::from_millis(100),
            overflow: Overflow::Reject,
            max_commit_batch: 1024,
        }
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
        if self.fsync_interval.is_zero() || self.fsync_interval > Duration::from_secs(60) {
            return Err(ConfigError::Invalid {
                key: "buffer.fsync_interval".into(),
                message: format!(
                    "{} (expected more than 0 and at most 60s; use fsync: always to sync every write)",
                    duration::format(&self.fsync_interval)
                ),
            });
        }
        if self.max_commit_batch == 0 {
            return Err(ConfigError::Invalid {
                key: "buffer.max_commit_batch".into(),
                message: "0 (expected at least 1)".into(),
            });
        }
        Ok(())
    }
}
