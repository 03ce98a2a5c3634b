//! Self-metrics of the Mist API poller (`mist_otel_poller_*`): the REST client's calls and
//! budget, the WebSocket stream's connections and frames, the poller's own figures, and the
//! typed [`PollerHealth`] snapshot the status page reads instead of parsing rendered text.
//!
//! The health snapshot is kept beside the gauges it mirrors and updated by the same calls, so
//! the two never disagree: a site/channel is listed exactly when its
//! `poller_site_subscribed` series exists.

use super::register;
use crate::clock::now_ns;
use crate::telemetry::label_enum;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

label_enum! {
    /// A site's stats channel (`/sites/{id}/stats/<kind>`), also the `channel` label.
    pub enum ChannelKind {
        /// `/sites/{id}/stats/devices`.
        Devices => "devices",
        /// `/sites/{id}/stats/clients`.
        Clients => "clients",
    }
}

label_enum! {
    /// Why stream updates were left out.
    pub enum DropKind {
        /// A new client over the client cap.
        Client => "client",
        /// An object without a usable MAC, or a frame on an unknown channel.
        Invalid => "invalid",
    }
}

label_enum! {
    /// What the poller tracks.
    pub enum TrackedKind {
        /// Devices (APs, switches, gateways).
        Device => "device",
        /// Wireless clients.
        Client => "client",
    }
}

label_enum! {
    /// Which REST refresh failed.
    pub enum RefreshWhat {
        /// Organisation discovery from `/api/v1/self`.
        OrgDiscovery => "self",
        /// The site list.
        Sites => "sites",
        /// The org-level counts.
        Org => "org",
    }
}

label_enum! {
    /// Kinds of WebSocket frames received.
    pub enum FrameKind {
        /// A `data` frame.
        Data => "data",
        /// A `channel_subscribed` confirmation.
        Subscribed => "subscribed",
        /// A refused subscription.
        Refused => "refused",
        /// Any other event.
        Other => "other",
        /// Not JSON, not UTF-8, or `data` that does not decode.
        Invalid => "invalid",
    }
}

/// Closed label values appear in the JSON health snapshot as their label text.
macro_rules! serialize_as_label {
    ($($t:ty),+) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    )+};
}
serialize_as_label!(ChannelKind, RefreshWhat);

/// Labels of a REST call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// Fixed endpoint name (`self`, `org_sites`, `org_alarms_count`, …).
    pub endpoint: String,
    /// HTTP status code, or `error` when no answer came.
    pub status: String,
}

/// Labels of a WebSocket frame.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameLabels {
    /// Frame kind.
    pub kind: FrameKind,
}

/// Labels of left-out updates.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// Why.
    pub kind: DropKind,
}

/// Labels of the tracked counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrackedLabels {
    /// What.
    pub kind: TrackedKind,
}

/// Labels of a site's subscription state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabels {
    /// Site id.
    pub site_id: String,
    /// Channel.
    pub channel: ChannelKind,
}

/// Labels of a failed refresh.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefreshLabels {
    /// What failed.
    pub what: RefreshWhat,
}

/// Self-telemetry of the REST client.
#[derive(Clone, Default)]
pub struct ApiMetrics {
    /// Calls by endpoint and HTTP status (`error` for transport failures).
    pub calls: Family<CallLabels, Counter>,
    /// 429 answers received.
    pub rate_limited: Counter,
    /// Calls left in the budget's bucket right now.
    pub budget_remaining: Gauge<f64, AtomicU64>,
    /// Every call, whatever its endpoint and status (not exported; for the health snapshot).
    calls_total: Counter,
}

impl ApiMetrics {
    /// Registers the metrics and returns them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        register!(registry;
            "poller_api_calls", "Mist REST API calls by endpoint and status" => m.calls;
            "poller_api_rate_limited", "Mist REST answers with 429 Too Many Requests" => m.rate_limited;
            "poller_api_budget_remaining", "Mist REST calls left in the poller's token bucket" => m.budget_remaining;
        );
        m
    }

    /// Counts a call Mist answered, by its HTTP status code (`200`, `429`, …).
    pub fn answered(&self, endpoint: &str, status: &str) {
        self.count(endpoint, status);
    }

    /// Counts a call that got no answer (connection, TLS or timeout failure).
    pub fn failed(&self, endpoint: &str) {
        self.count(endpoint, "error");
    }

    fn count(&self, endpoint: &str, status: &str) {
        self.calls.get_or_create(&CallLabels { endpoint: endpoint.into(), status: status.into() }).inc();
        self.calls_total.inc();
    }
}

/// Self-telemetry of the WebSocket stream.
#[derive(Clone, Default)]
pub struct StreamMetrics {
    /// Open WebSocket connections.
    pub connections_up: Gauge,
    /// Channels confirmed by `channel_subscribed`.
    pub subscriptions: Gauge,
    /// Reconnection attempts after a connection was lost or could not be opened.
    pub reconnects: Counter,
    /// Frames received by kind.
    pub frames: Family<FrameLabels, Counter>,
    /// Subscriptions refused by Mist.
    pub refused: Counter,
    /// Subscriptions not confirmed within the watchdog timeout.
    pub subscribe_timeouts: Counter,
}

impl StreamMetrics {
    /// Registers the metrics and returns them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        register!(registry;
            "poller_ws_connections_up", "Open Mist WebSocket connections" => m.connections_up;
            "poller_ws_subscriptions", "Mist WebSocket channels confirmed subscribed" => m.subscriptions;
            "poller_ws_reconnects", "Mist WebSocket reconnection attempts" => m.reconnects;
            "poller_ws_frames", "Mist WebSocket frames received by kind" => m.frames;
            "poller_ws_subscribe_refused", "Mist WebSocket subscriptions refused" => m.refused;
            "poller_ws_subscribe_timeouts", "Mist WebSocket subscriptions not confirmed in time" => m.subscribe_timeouts;
        );
        m
    }

    /// Counts a frame by kind.
    pub fn frame(&self, kind: FrameKind) {
        self.frames.get_or_create(&FrameLabels { kind }).inc();
    }
}

/// The poller's own telemetry (besides the REST and stream metrics), and the state behind
/// its health snapshot.
#[derive(Clone, Default)]
pub struct PollerTelemetry {
    /// Updates left out, by kind.
    pub dropped: Family<DropLabels, Counter>,
    /// Devices and clients tracked now.
    pub tracked: Family<TrackedLabels, Gauge>,
    /// Per site and channel: 1 when the subscription is confirmed, 0 otherwise.
    pub site_state: Family<SiteLabels, Gauge>,
    /// Sites polled.
    pub sites: Gauge,
    /// REST refreshes that failed, by what.
    pub refresh_errors: Family<RefreshLabels, Counter>,
    health: Arc<Mutex<HealthState>>,
}

/// What the health snapshot reports beyond the exported handles.
#[derive(Default)]
struct HealthState {
    /// Subscription state by site and channel, exactly the `site_state` series.
    subscriptions: HashMap<(String, ChannelKind), bool>,
    tracked_devices: i64,
    tracked_clients: i64,
    last_sites_refresh_unix_secs: Option<u64>,
    last_org_refresh_unix_secs: Option<u64>,
    last_error: Option<RefreshFailure>,
    refresh_errors: u64,
}

impl PollerTelemetry {
    /// Registers the metrics and returns them.
    pub fn register(registry: &mut Registry) -> Self {
        let t = Self::default();
        register!(registry;
            "poller_series_dropped", "Poller updates left out (client cap, invalid)" => t.dropped;
            "poller_tracked", "Devices and clients tracked by the poller" => t.tracked;
            "poller_site_subscribed", "Per site and channel, 1 when the WebSocket subscription is confirmed" => t.site_state;
            "poller_sites", "Sites the poller follows" => t.sites;
            "poller_refresh_errors", "Failed REST refreshes" => t.refresh_errors;
        );
        t
    }

    fn health_state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts `n` updates left out for `kind` (nothing when `n` is 0).
    pub fn dropped(&self, kind: DropKind, n: u32) {
        if n > 0 {
            self.dropped.get_or_create(&DropLabels { kind }).inc_by(u64::from(n));
        }
    }

    /// Records whether a site's channel subscription is confirmed.
    pub fn subscription(&self, site_id: &str, channel: ChannelKind, subscribed: bool) {
        let labels = SiteLabels { site_id: site_id.into(), channel };
        self.site_state.get_or_create(&labels).set(i64::from(subscribed));
        self.health_state().subscriptions.insert((labels.site_id, channel), subscribed);
    }

    /// Forgets a removed site's subscription series.
    pub fn site_removed(&self, site_id: &str) {
        let mut h = self.health_state();
        for channel in [ChannelKind::Devices, ChannelKind::Clients] {
            let labels = SiteLabels { site_id: site_id.into(), channel };
            self.site_state.remove(&labels);
            h.subscriptions.remove(&(labels.site_id, channel));
        }
    }

    /// Records a successful site-list refresh and the number of sites followed.
    pub fn sites_refreshed(&self, sites: usize) {
        self.sites.set(sites as i64);
        self.health_state().last_sites_refresh_unix_secs = Some(now_ns() / 1_000_000_000);
    }

    /// Records an org-figures refresh in which every call succeeded.
    pub fn org_refreshed(&self) {
        self.health_state().last_org_refresh_unix_secs = Some(now_ns() / 1_000_000_000);
    }

    /// Counts a failed refresh and keeps its error for the health snapshot.
    pub fn refresh_failed(&self, what: RefreshWhat, error: String) {
        self.refresh_errors.get_or_create(&RefreshLabels { what }).inc();
        let mut h = self.health_state();
        h.refresh_errors += 1;
        h.last_error = Some(RefreshFailure { what, error, at_unix_secs: now_ns() / 1_000_000_000 });
    }

    /// Sets the numbers of devices and clients tracked.
    pub fn tracked(&self, devices: usize, clients: usize) {
        let (devices, clients) = (devices as i64, clients as i64);
        self.tracked.get_or_create(&TrackedLabels { kind: TrackedKind::Device }).set(devices);
        self.tracked.get_or_create(&TrackedLabels { kind: TrackedKind::Client }).set(clients);
        let mut h = self.health_state();
        h.tracked_devices = devices;
        h.tracked_clients = clients;
    }
}

/// Every self-metric of the poller, registered in the order `/metrics` lists them.
#[derive(Clone)]
pub struct PollerMetrics {
    /// The REST client's.
    pub api: ApiMetrics,
    /// The WebSocket stream's.
    pub stream: StreamMetrics,
    /// The poller's own.
    pub poller: PollerTelemetry,
}

impl PollerMetrics {
    /// Registers the REST, stream and poller metrics.
    pub fn register(registry: &mut Registry) -> Self {
        let api = ApiMetrics::register(registry);
        let stream = StreamMetrics::register(registry);
        let poller = PollerTelemetry::register(registry);
        Self { api, stream, poller }
    }

    /// A handle that reads the health snapshot; cheap to clone, for the status page.
    pub fn health_source(&self) -> PollerHealthSource {
        PollerHealthSource(self.clone())
    }
}

/// Reads the poller's [`PollerHealth`] from its self-metric handles. Cheap to clone.
#[derive(Clone)]
pub struct PollerHealthSource(PollerMetrics);

impl PollerHealthSource {
    /// The poller's health now.
    pub fn health(&self) -> PollerHealth {
        let PollerMetrics { api, stream, poller } = &self.0;
        let h = poller.health_state();
        let mut sites: Vec<SiteHealth> = h
            .subscriptions
            .iter()
            .map(|((site_id, channel), subscribed)| SiteHealth {
                site_id: site_id.clone(),
                channel: *channel,
                subscribed: *subscribed,
            })
            .collect();
        sites.sort_by(|a, b| (&a.site_id, a.channel.as_str()).cmp(&(&b.site_id, b.channel.as_str())));
        PollerHealth {
            sites,
            sites_followed: poller.sites.get(),
            tracked_devices: h.tracked_devices,
            tracked_clients: h.tracked_clients,
            last_sites_refresh_unix_secs: h.last_sites_refresh_unix_secs,
            last_org_refresh_unix_secs: h.last_org_refresh_unix_secs,
            last_error: h.last_error.clone(),
            refresh_errors: h.refresh_errors,
            api_calls: api.calls_total.get(),
            api_rate_limited: api.rate_limited.get(),
            api_budget_remaining: api.budget_remaining.get(),
            ws_connections_up: stream.connections_up.get(),
            ws_subscriptions: stream.subscriptions.get(),
        }
    }
}

/// The poller's health, typed: what the status page shows about it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PollerHealth {
    /// Stream subscription state per site and channel, sorted by site id then channel.
    pub sites: Vec<SiteHealth>,
    /// Sites the poller follows (after filters).
    pub sites_followed: i64,
    /// Devices tracked now.
    pub tracked_devices: i64,
    /// Clients tracked now.
    pub tracked_clients: i64,
    /// When the site list was last fetched successfully (Unix seconds).
    pub last_sites_refresh_unix_secs: Option<u64>,
    /// When the org figures were last fetched without any failure (Unix seconds).
    pub last_org_refresh_unix_secs: Option<u64>,
    /// The most recent failed refresh, if any.
    pub last_error: Option<RefreshFailure>,
    /// Failed refreshes since start.
    pub refresh_errors: u64,
    /// REST calls made since start.
    pub api_calls: u64,
    /// 429 answers since start.
    pub api_rate_limited: u64,
    /// Calls left in the budget's bucket.
    pub api_budget_remaining: f64,
    /// Open WebSocket connections.
    pub ws_connections_up: i64,
    /// Channels confirmed subscribed.
    pub ws_subscriptions: i64,
}

/// One site channel's stream subscription.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SiteHealth {
    /// Site id.
    pub site_id: String,
    /// Channel (`devices`, `clients`).
    pub channel: ChannelKind,
    /// Whether Mist confirmed the subscription (false after a refusal or disconnect).
    pub subscribed: bool,
}

/// A failed REST refresh.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefreshFailure {
    /// What failed (`self`, `sites`, `org`).
    pub what: RefreshWhat,
    /// The error, as logged.
    pub error: String,
    /// When (Unix seconds).
    pub at_unix_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_mirrors_the_exported_series() {
        let mut registry = Registry::default();
        let m = PollerMetrics::register(&mut registry);
        let t = &m.poller;
        t.subscription("s2", ChannelKind::Clients, true);
        t.subscription("s1", ChannelKind::Devices, false);
        t.subscription("s1", ChannelKind::Devices, true);
        t.subscription("s3", ChannelKind::Devices, true);
        t.site_removed("s3");
        t.dropped(DropKind::Client, 0);
        t.dropped(DropKind::Invalid, 2);
        t.refresh_failed(RefreshWhat::Org, "boom".into());
        m.api.answered("self", "200");
        m.api.failed("self");
        m.stream.frame(FrameKind::Data);
        let text = crate::telemetry::render(&registry);
        for line in [
            r#"poller_site_subscribed{site_id="s1",channel="devices"} 1"#,
            r#"poller_site_subscribed{site_id="s2",channel="clients"} 1"#,
            r#"poller_series_dropped_total{kind="invalid"} 2"#,
            r#"poller_refresh_errors_total{what="org"} 1"#,
            r#"poller_api_calls_total{endpoint="self",status="error"} 1"#,
            r#"poller_ws_frames_total{kind="data"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("s3") && !text.contains(r#"kind="client""#), "{text}");

        let h = m.health_source().health();
        let sites: Vec<_> = h.sites.iter().map(|s| (s.site_id.as_str(), s.channel, s.subscribed)).collect();
        assert_eq!(sites, [("s1", ChannelKind::Devices, true), ("s2", ChannelKind::Clients, true)]);
        assert_eq!((h.api_calls, h.refresh_errors), (2, 1));
        let json = serde_json::to_value(&h).expect("serializes");
        assert_eq!(json["sites"][0]["channel"], "devices");
        assert_eq!(json["last_error"]["what"], "org");
        assert_eq!(json["last_error"]["error"], "boom");
    }
}
