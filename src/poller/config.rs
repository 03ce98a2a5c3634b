//! Configuration of the Mist API poller.

use crate::config::{ConfigError, duration};
use crate::mist::api::MIST_HOURLY_LIMIT;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The poller; off unless `enabled`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// How often the site list is fetched (added sites start, removed ones stop).
    #[serde(with = "duration")]
    pub site_refresh_interval: Duration,
    /// How often org figures (alarms, tickets, device/client counts) are fetched. Never per scrape.
    #[serde(with = "duration")]
    pub org_interval: Duration,
    /// Only these sites (names or ids); empty means all.
    pub include_sites: Vec<String>,
    /// Never these sites (names or ids); applied after `include_sites`.
    pub exclude_sites: Vec<String>,
    /// A device or client with no update for this long is forgotten and its series vanish.
    #[serde(with = "duration")]
    pub series_ttl: Duration,
    /// Most clients with their own series; updates for more are counted
    /// (`mist_otel_poller_series_dropped_total{kind="client"}`) and left out. Each client costs
    /// 20 series (~8 KiB of Prometheus text), so the default 1,000 clients is 20,000
    /// series (~8 MiB per scrape); 0 turns per-client series off.
    pub max_clients: usize,
    /// REST calls per hour this poller may spend (Mist allows 5,000 per token, shared with
    /// every other user of the token).
    pub calls_per_hour: u32,
    /// REST request timeout.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// WebSocket settings.
    pub stream: StreamConfig,
}

/// WebSocket stream settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// Stream URL; derived from `cloud` when empty (`wss://api-ws.<cloud>/api-ws/v1/stream`).
    pub url: String,
    /// Ping interval.
    #[serde(with = "duration")]
    pub ping_interval: Duration,
    /// Longest silence before the socket is declared dead (must exceed `ping_interval`).
    #[serde(with = "duration")]
    pub read_timeout: Duration,
    /// Wait for `channel_subscribed` before re-sending a subscription.
    #[serde(with = "duration")]
    pub subscribe_timeout: Duration,
    /// Wait before asking again for a refused channel.
    #[serde(with = "duration")]
    pub refused_retry: Duration,
    /// First reconnect delay.
    #[serde(with = "duration")]
    pub backoff_min: Duration,
    /// Longest reconnect delay.
    #[serde(with = "duration")]
    pub backoff_max: Duration,
    /// Channels per connection (1..=2000; Mist allows 2,000).
    pub channels_per_connection: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            ping_interval: Duration::from_secs(30),
            read_timeout: Duration::from_secs(75),
            subscribe_timeout: Duration::from_secs(15),
            refused_retry: Duration::from_secs(300),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(120),
            channels_per_connection: 2_000,
        }
    }
}

impl Default for PollerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token: Secret::default(),
            org_id: String::new(),
            cloud: String::new(),
            site_refresh_interval: Duration::from_secs(300),
            org_interval: Duration::from_secs(300),
            include_sites: Vec::new(),
            exclude_sites: Vec::new(),
            series_ttl: Duration::from_secs(600),
            max_clients: 1_000,
            calls_per_hour: 2_000,
            request_timeout: Duration::from_secs(15),
            stream: StreamConfig::default(),
        }
    }
}

fn invalid(key: &str, message: String) -> ConfigError {
    ConfigError::Invalid { key: format!("poller.{key}"), message }
}

impl PollerConfig {
    /// Checks the poller's rules; errors name the key and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        self.validate_access()?;
        self.validate_positive_durations()?;
        self.validate_budget()?;
        self.validate_stream()
    }

    /// The token is set and the cloud is one we can reach.
    fn validate_access(&self) -> Result<(), ConfigError> {
        if self.token.is_empty() {
            return Err(invalid(
                "token",
                "the poller is enabled but no API token is set (MIST_API_TOKEN)".into(),
            ));
        }
        if let Err(e) = crate::mist::cloud::rest_base(&self.cloud) {
            return Err(invalid("cloud", e.to_string()));
        }
        Ok(())
    }

    /// Intervals and timeouts that would spin or never fire at zero.
    fn validate_positive_durations(&self) -> Result<(), ConfigError> {
        let positive = [
            ("site_refresh_interval", self.site_refresh_interval),
            ("org_interval", self.org_interval),
            ("series_ttl", self.series_ttl),
            ("request_timeout", self.request_timeout),
            ("stream.ping_interval", self.stream.ping_interval),
            ("stream.read_timeout", self.stream.read_timeout),
            ("stream.subscribe_timeout", self.stream.subscribe_timeout),
            ("stream.backoff_min", self.stream.backoff_min),
        ];
        for (k, d) in positive {
            if d.is_zero() {
                return Err(invalid(k, "must be greater than 0".into()));
            }
        }
        Ok(())
    }

    /// The call budget stays below Mist's limit per token.
    fn validate_budget(&self) -> Result<(), ConfigError> {
        if self.calls_per_hour == 0 || self.calls_per_hour >= MIST_HOURLY_LIMIT {
            return Err(invalid(
                "calls_per_hour",
                format!(
                    "{} is out of range: use 1..{MIST_HOURLY_LIMIT} (Mist's limit per token)",
                    self.calls_per_hour
                ),
            ));
        }
        Ok(())
    }

    /// The WebSocket settings agree with each other and with Mist's channel limit.
    fn validate_stream(&self) -> Result<(), ConfigError> {
        if self.stream.read_timeout <= self.stream.ping_interval {
            return Err(invalid(
                "stream.read_timeout",
                format!(
                    "{} must exceed stream.ping_interval ({}) or a healthy socket would be dropped",
                    duration::format(&self.stream.read_timeout),
                    duration::format(&self.stream.ping_interval)
                ),
            ));
        }
        if self.stream.backoff_max < self.stream.backoff_min {
            return Err(invalid(
                "stream.backoff_max",
                format!("{} is below stream.backoff_min", duration::format(&self.stream.backoff_max)),
            ));
        }
        if !(1..=2_000).contains(&self.stream.channels_per_connection) {
            return Err(invalid(
                "stream.channels_per_connection",
                format!("{} is out of range 1..=2000", self.stream.channels_per_connection),
            ));
        }
        Ok(())
    }

    /// Whether a site passes the include/exclude filters (each entry matches a name or an id).
    pub fn site_selected(&self, id: &str, name: &str) -> bool {
        let hit = |list: &[String]| list.iter().any(|s| s == id || s.eq_ignore_ascii_case(name));
        (self.include_sites.is_empty() || hit(&self.include_sites)) && !hit(&self.exclude_sites)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> PollerConfig {
        PollerConfig { enabled: true, token: Secret::new("t"), ..Default::default() }
    }

    #[test]
    fn defaults_valid_and_errors_name_keys() {
        on().validate().unwrap();
        let e = PollerConfig { enabled: true, ..Default::default() }.validate().unwrap_err().to_string();
        assert!(e.contains("poller.token"), "{e}");
        let e = PollerConfig { calls_per_hour: 6000, ..on() }.validate().unwrap_err().to_string();
        assert!(e.contains("poller.calls_per_hour") && e.contains("6000"), "{e}");
        let mut c = on();
        c.stream.read_timeout = Duration::from_secs(5);
        c.stream.ping_interval = Duration::from_secs(10);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("poller.stream.read_timeout") && e.contains("5s"), "{e}");
        let e = PollerConfig { cloud: "mars01".into(), ..on() }.validate().unwrap_err().to_string();
        assert!(e.contains("poller.cloud") && e.contains("mars01"), "{e}");
    }

    #[test]
    fn site_filters() {
        let c = PollerConfig {
            include_sites: vec!["HQ".into(), "id-2".into()],
            exclude_sites: vec!["id-2".into()],
            ..on()
        };
        assert!(c.site_selected("id-1", "hq"));
        assert!(!c.site_selected("id-2", "Branch"));
        assert!(!c.site_selected("id-3", "Other"));
    }
}
