//! Optional Mist API poller: live device, radio and client gauges from the WebSocket stream
//! and org figures from REST.
//!
//! REST cost is O(1) per refresh per org, independent of scrapes and of the number of sites:
//! the site list (one page of 1,000 sites) every `site_refresh_interval`, and four org-level
//! count calls (alarms by type, tickets by status, devices and clients by site) every
//! `org_interval`. Scrapes and OTLP collections only read memory.

pub mod catalog;
pub mod config;
pub mod family;
pub mod gather;
pub mod otlp;
pub mod prometheus;
pub mod state;

use crate::clock::now_ns;
use crate::mist::api::{ApiClient, ApiError, ApiMetrics, ApiOptions, SiteRef};
use crate::mist::cloud;
use crate::mist::stream::{Stream, StreamEvent, StreamMetrics, StreamOptions};
use crate::pipeline::MetricsProducer;
use crate::signals::SignalsConfig;
use config::PollerConfig;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use state::{ChannelKind, State, channel, parse_channel};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why the poller could not start.
#[derive(Debug, thiserror::Error)]
pub enum PollerError {
    /// A permanent API problem (bad token, no or several orgs, unknown cloud).
    #[error("poller: {0}")]
    Api(#[from] ApiError),
}

/// The poller's own telemetry (besides the REST and stream metrics).
#[derive(Clone, Default)]
pub struct PollerTelemetry {
    /// Updates left out, by kind (`client` over the cap, `invalid` without a MAC).
    pub dropped: Family<Vec<(String, String)>, Counter>,
    /// Devices and clients tracked now.
    pub tracked: Family<Vec<(String, String)>, Gauge>,
    /// Per site and channel: 1 when the subscription is confirmed, 0 otherwise.
    pub site_state: Family<Vec<(String, String)>, Gauge>,
    /// Sites polled.
    pub sites: Gauge,
    /// REST refreshes that failed, by what (`sites`, `org`).
    pub refresh_errors: Family<Vec<(String, String)>, Counter>,
}

impl PollerTelemetry {
    fn register(registry: &mut Registry) -> Self {
        let t = Self::default();
        registry.register(
            "poller_series_dropped",
            "Poller updates left out (client cap, invalid)",
            t.dropped.clone(),
        );
        registry.register("poller_tracked", "Devices and clients tracked by the poller", t.tracked.clone());
        registry.register(
            "poller_site_subscribed",
            "Per site and channel, 1 when the WebSocket subscription is confirmed",
            t.site_state.clone(),
        );
        registry.register("poller_sites", "Sites the poller follows", t.sites.clone());
        registry.register("poller_refresh_errors", "Failed REST refreshes", t.refresh_errors.clone());
        t
    }

    fn site_label(site: &str, kind: ChannelKind) -> Vec<(String, String)> {
        vec![("site_id".into(), site.into()), ("channel".into(), kind.as_str().into())]
    }
}

struct Shared {
    state: Mutex<State>,
}

/// A running poller.
pub struct PollerHandle {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl PollerHandle {
    /// A source for the admin `/metrics`: the Go exporter's families as Prometheus text.
    pub fn metrics_source(&self) -> crate::admin::MetricsSource {
        let shared = self.shared.clone();
        Arc::new(move |out: &mut String| {
            let fams = {
                let st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                gather::gather(&st, Instant::now())
            };
            prometheus::render_prometheus(&fams, out);
        })
    }

    /// The same figures for the OTLP export pipeline, on the resources the webhook signals
    /// use (`signals.service_name`, `signals.resource_attributes`, org and site).
    pub fn producer(&self, signals: &SignalsConfig) -> Arc<dyn MetricsProducer> {
        Arc::new(Producer(self.shared.clone(), signals.clone()))
    }

    /// Waits for the poller to stop (after its cancellation token fired).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

struct Producer(Arc<Shared>, SignalsConfig);

impl MetricsProducer for Producer {
    fn collect(&self, now_ns: u64) -> Vec<ResourceMetrics> {
        let (fams, org, names) = {
            let st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            let names: HashMap<String, String> =
                st.sites.values().map(|s| (s.id.clone(), s.name.clone())).collect();
            (gather::gather(&st, Instant::now()), st.org_id.clone(), names)
        };
        otlp::to_otlp(&fams, &org, &names, &self.1, now_ns)
    }
}

/// Starts the poller: registers its self-metrics, resolves the org (from `/self` when
/// `org_id` is empty; a token with zero or several orgs is an error naming the choices),
/// then runs site discovery, the stream and org figures until `cancel` fires.
pub async fn start(
    cfg: &PollerConfig,
    registry: &mut Registry,
    cancel: CancellationToken,
) -> Result<PollerHandle, PollerError> {
    let api_metrics = ApiMetrics::register(registry);
    let stream_metrics = StreamMetrics::register(registry);
    let tele = PollerTelemetry::register(registry);
    let opts = ApiOptions {
        timeout: cfg.request_timeout,
        calls_per_hour: cfg.calls_per_hour,
        ..ApiOptions::default()
    };
    let api = ApiClient::new(&cfg.cloud, cfg.token.clone(), opts, api_metrics)?;
    // A token that sees zero or several orgs, or is refused, fails the start with a clear
    // message. Mist being unreachable does not: the webhook path must come up regardless, so
    // discovery is retried in the background.
    let org_id = if cfg.org_id.trim().is_empty() {
        match api.discover_org().await {
            Ok(org) => {
                tracing::info!(org_id = %org, "Mist organisation discovered from /self");
                org
            }
            Err(e) if e.is_permanent() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "Mist organisation discovery failed; retrying in the background");
                String::new()
            }
        }
    } else {
        cfg.org_id.trim().to_owned()
    };
    let url = if cfg.stream.url.is_empty() { cloud::stream_url(api.base()) } else { cfg.stream.url.clone() };
    let shared = Arc::new(Shared { state: Mutex::new(State::new(org_id, cfg.max_clients, cfg.series_ttl)) });
    let sopts = StreamOptions {
        url,
        token: cfg.token.clone(),
        ping_interval: cfg.stream.ping_interval,
        read_timeout: cfg.stream.read_timeout,
        subscribe_timeout: cfg.stream.subscribe_timeout,
        refused_retry: cfg.stream.refused_retry,
        connect_timeout: cfg.request_timeout,
        backoff_min: cfg.stream.backoff_min,
        backoff_max: cfg.stream.backoff_max,
        channels_per_connection: cfg.stream.channels_per_connection,
    };
    let sink_shared = shared.clone();
    let sink_tele = tele.clone();
    let sink = Arc::new(move |ev: StreamEvent| on_event(&sink_shared, &sink_tele, ev));
    let stream = Stream::new(sopts, sink, stream_metrics, cancel.child_token());
    let task = tokio::spawn(run(cfg.clone(), api, shared.clone(), tele, stream, cancel));
    Ok(PollerHandle { shared, task })
}

fn on_event(shared: &Shared, tele: &PollerTelemetry, ev: StreamEvent) {
    match ev {
        StreamEvent::Data { channel, data } => {
            let applied = {
                let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                st.apply(&channel, data, Instant::now(), now_ns())
            };
            if applied.dropped > 0 {
                tele.dropped
                    .get_or_create(&vec![("kind".into(), "client".into())])
                    .inc_by(u64::from(applied.dropped));
            }
            if applied.invalid > 0 {
                tele.dropped
                    .get_or_create(&vec![("kind".into(), "invalid".into())])
                    .inc_by(u64::from(applied.invalid));
            }
        }
        StreamEvent::Subscribed { channel } => {
            if let Some((site, kind)) = parse_channel(&channel) {
                tele.site_state.get_or_create(&PollerTelemetry::site_label(site, kind)).set(1);
            }
        }
        StreamEvent::Refused { channel, .. } => {
            if let Some((site, kind)) = parse_channel(&channel) {
                tele.site_state.get_or_create(&PollerTelemetry::site_label(site, kind)).set(0);
            }
        }
        StreamEvent::Disconnected { channels, .. } => {
            for ch in channels {
                if let Some((site, kind)) = parse_channel(&ch) {
                    tele.site_state.get_or_create(&PollerTelemetry::site_label(site, kind)).set(0);
                }
            }
        }
        StreamEvent::Connected(_) => {}
    }
}

async fn run(
    cfg: PollerConfig,
    api: ApiClient,
    shared: Arc<Shared>,
    tele: PollerTelemetry,
    mut stream: Stream,
    cancel: CancellationToken,
) {
    let mut org_id = shared.state.lock().unwrap_or_else(|e| e.into_inner()).org_id.clone();
    let mut delay = cfg.stream.backoff_min;
    while org_id.is_empty() {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(300));
        match api.discover_org().await {
            Ok(org) => {
                tracing::info!(org_id = %org, "Mist organisation discovered from /self");
                shared.state.lock().unwrap_or_else(|e| e.into_inner()).org_id.clone_from(&org);
                org_id = org;
            }
            Err(e) => {
                tele.refresh_errors.get_or_create(&vec![("what".into(), "self".into())]).inc();
                tracing::warn!(error = %e, "Mist organisation discovery failed");
            }
        }
    }
    let mut sites_tick = tokio::time::interval(cfg.site_refresh_interval);
    let mut org_tick = tokio::time::interval(cfg.org_interval);
    let prune_every = (cfg.series_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let mut prune_tick = tokio::time::interval(prune_every);
    for t in [&mut sites_tick, &mut org_tick, &mut prune_tick] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    let mut known_sites: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = sites_tick.tick() => {
                match api.org_sites(&org_id).await {
                    Ok(all) => {
                        let sites: Vec<SiteRef> = all.into_iter().filter(|s| cfg.site_selected(&s.id, &s.name)).collect();
                        let ids: BTreeSet<String> = sites.iter().map(|s| s.id.clone()).collect();
                        let removed = shared.state.lock().unwrap_or_else(|e| e.into_inner()).set_sites(sites);
                        for site in &removed {
                            for kind in [ChannelKind::Devices, ChannelKind::Clients] {
                                tele.site_state.remove(&PollerTelemetry::site_label(site, kind));
                            }
                        }
                        if ids != known_sites {
                            tracing::info!(sites = ids.len(), removed = removed.len(), "Mist site list changed");
                        }
                        let channels: BTreeSet<String> = ids
                            .iter()
                            .flat_map(|id| [channel(id, ChannelKind::Devices), channel(id, ChannelKind::Clients)])
                            .collect();
                        stream.set_channels(&channels);
                        tele.sites.set(ids.len() as i64);
                        known_sites = ids;
                    }
                    Err(e) => {
                        tele.refresh_errors.get_or_create(&vec![("what".into(), "sites".into())]).inc();
                        tracing::warn!(error = %e, "Mist site refresh failed; keeping the current list");
                    }
                }
            }
            _ = org_tick.tick() => {
                refresh_org(&api, &org_id, &shared, &tele).await;
            }
            _ = prune_tick.tick() => {
                let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
                st.prune(Instant::now());
                tele.tracked.get_or_create(&vec![("kind".into(), "device".into())]).set(st.devices.len() as i64);
                tele.tracked.get_or_create(&vec![("kind".into(), "client".into())]).set(st.clients.len() as i64);
            }
        }
    }
    stream.shutdown().await;
}

/// Org figures: four org-level calls whatever the number of sites.
async fn refresh_org(api: &ApiClient, org: &str, shared: &Shared, tele: &PollerTelemetry) {
    let alarms = api.count_by("org_alarms_count", &format!("/api/v1/orgs/{org}/alarms/count"), "type").await;
    let tickets =
        api.count_by("org_tickets_count", &format!("/api/v1/orgs/{org}/tickets/count"), "status").await;
    let devices =
        api.count_by("org_devices_count", &format!("/api/v1/orgs/{org}/devices/count"), "site_id").await;
    let clients =
        api.count_by("org_clients_count", &format!("/api/v1/orgs/{org}/clients/count"), "site_id").await;
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let mut failed = false;
    match alarms {
        Ok(v) => st.org.alarms_by_type = v,
        Err(e) => {
            failed = true;
            tracing::warn!(error = %e, "Mist alarm counts failed");
        }
    }
    match tickets {
        Ok(v) => st.org.tickets_by_status = v,
        Err(e) => {
            failed = true;
            tracing::warn!(error = %e, "Mist ticket counts failed");
        }
    }
    match devices {
        Ok(v) => st.org.devices_by_site = v.into_iter().collect(),
        Err(e) => {
            failed = true;
            tracing::warn!(error = %e, "Mist device counts failed");
        }
    }
    match clients {
        Ok(v) => st.org.clients_by_site = v.into_iter().collect(),
        Err(e) => {
            failed = true;
            tracing::warn!(error = %e, "Mist client counts failed");
        }
    }
    st.org.fetched = true;
    if failed {
        tele.refresh_errors.get_or_create(&vec![("what".into(), "org".into())]).inc();
    }
}
