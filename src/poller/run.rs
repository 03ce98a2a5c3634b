//! The poller's loop: organisation discovery until it succeeds, then the site list, the org
//! figures and the pruning of stale entries, each on its own interval, until cancelled.
//!
//! Every REST step runs under the cancellation token: a `Retry-After` sleep, a budget paused by
//! a 429 (up to an hour) or a request in flight ends the moment the token fires, so stopping
//! never waits on Mist. Dropping a step mid-way is safe: state is only written after its answers.

use super::config::PollerConfig;
use super::state::{SharedState, channel, lock};
use crate::mist::api::{ApiClient, ApiError, SiteRef};
use crate::mist::stream::Stream;
use crate::telemetry::poller::{ChannelKind, PollerTelemetry, RefreshWhat};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Everything the loop works with.
pub struct Poller {
    /// Settings.
    pub cfg: PollerConfig,
    /// The REST client.
    pub api: ApiClient,
    /// What the poller knows.
    pub shared: SharedState,
    /// The poller's own telemetry.
    pub tele: PollerTelemetry,
    /// The WebSocket connections.
    pub stream: Stream,
}

impl Poller {
    /// Runs until `cancel` fires, then shuts the stream down.
    pub async fn run(mut self, cancel: CancellationToken) {
        let Some(org_id) = self.wait_for_org(&cancel).await else { return };
        let cfg = &self.cfg;
        let prune_every = (cfg.series_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let mut sites_tick = interval(cfg.site_refresh_interval);
        let mut org_tick = interval(cfg.org_interval);
        let mut prune_tick = interval(prune_every);
        let mut known_sites: BTreeSet<String> = BTreeSet::new();
        loop {
            let done = tokio::select! {
                _ = cancel.cancelled() => None,
                _ = sites_tick.tick() => {
                    cancel.run_until_cancelled(self.refresh_sites(&org_id, &mut known_sites)).await
                }
                _ = org_tick.tick() => cancel.run_until_cancelled(self.refresh_org(&org_id)).await,
                _ = prune_tick.tick() => {
                    self.prune();
                    Some(())
                }
            };
            if done.is_none() {
                break;
            }
        }
        self.stream.shutdown().await;
    }

    /// The org id: the configured or discovered one, else discovery retried with backoff.
    /// `None` when cancelled first (also mid-call).
    async fn wait_for_org(&self, cancel: &CancellationToken) -> Option<String> {
        let mut org_id = lock(&self.shared).org_id.clone();
        let mut delay = self.cfg.stream.backoff_min;
        while org_id.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(300));
            match cancel.run_until_cancelled(self.api.discover_org()).await? {
                Ok(org) => {
                    tracing::info!(org_id = %org, "Mist organisation discovered from /self");
                    lock(&self.shared).org_id.clone_from(&org);
                    org_id = org;
                }
                Err(e) if e.is_permanent() => {
                    // Mist answered and refused (bad token, no or several orgs): the start-up
                    // check did not see it because Mist was slow then. Loud, but keep retrying:
                    // a token can be re-enabled without restarting us.
                    self.tele.refresh_failed(RefreshWhat::OrgDiscovery, e.to_string());
                    tracing::error!(error = %e, "Mist organisation discovery refused; the poller collects nothing until this is fixed");
                }
                Err(e) => {
                    self.tele.refresh_failed(RefreshWhat::OrgDiscovery, e.to_string());
                    tracing::warn!(error = %e, "Mist organisation discovery failed");
                }
            }
        }
        Some(org_id)
    }

    /// Refreshes the site list (after filters) and subscribes exactly its channels; a failed
    /// refresh keeps the current list.
    async fn refresh_sites(&mut self, org_id: &str, known_sites: &mut BTreeSet<String>) {
        let all = match self.api.org_sites(org_id).await {
            Ok(all) => all,
            Err(e) => {
                self.tele.refresh_failed(RefreshWhat::Sites, e.to_string());
                tracing::warn!(error = %e, "Mist site refresh failed; keeping the current list");
                return;
            }
        };
        let sites: Vec<SiteRef> =
            all.into_iter().filter(|s| self.cfg.site_selected(&s.id, &s.name)).collect();
        let ids: BTreeSet<String> = sites.iter().map(|s| s.id.clone()).collect();
        let removed = lock(&self.shared).set_sites(sites);
        for site in &removed {
            self.tele.site_removed(site);
        }
        if ids != *known_sites {
            tracing::info!(sites = ids.len(), removed = removed.len(), "Mist site list changed");
        }
        let channels: BTreeSet<String> = ids
            .iter()
            .flat_map(|id| [channel(id, ChannelKind::Devices), channel(id, ChannelKind::Clients)])
            .collect();
        self.stream.set_channels(&channels);
        self.tele.sites_refreshed(ids.len());
        *known_sites = ids;
    }

    /// Org figures: four org-level calls whatever the number of sites. A failed call keeps
    /// that figure's previous values.
    async fn refresh_org(&self, org: &str) {
        let path = |what: &str| format!("/api/v1/orgs/{org}/{what}/count");
        let api = &self.api;
        let alarms = api.count_by("org_alarms_count", &path("alarms"), "type").await;
        let tickets = api.count_by("org_tickets_count", &path("tickets"), "status").await;
        let devices = api.count_by("org_devices_count", &path("devices"), "site_id").await;
        let clients = api.count_by("org_clients_count", &path("clients"), "site_id").await;
        let mut failure = None;
        let mut st = lock(&self.shared);
        if let Some(v) = keep(alarms, "Mist alarm counts failed", &mut failure) {
            st.org.alarms_by_type = v;
        }
        if let Some(v) = keep(tickets, "Mist ticket counts failed", &mut failure) {
            st.org.tickets_by_status = v;
        }
        if let Some(v) = keep(devices, "Mist device counts failed", &mut failure) {
            st.org.devices_by_site = v.into_iter().collect();
        }
        if let Some(v) = keep(clients, "Mist client counts failed", &mut failure) {
            st.org.clients_by_site = v.into_iter().collect();
        }
        st.org.fetched = true;
        drop(st);
        match failure {
            Some(error) => self.tele.refresh_failed(RefreshWhat::Org, error),
            None => self.tele.org_refreshed(),
        }
    }

    /// Forgets stale devices and clients, and reports how many are tracked.
    fn prune(&self) {
        let mut st = lock(&self.shared);
        st.prune(Instant::now());
        self.tele.tracked(st.devices.len(), st.clients.len());
    }
}

/// An interval whose missed ticks are delayed, not bunched.
fn interval(period: Duration) -> Interval {
    let mut t = tokio::time::interval(period);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// The answer of one org call, or `None` after logging its failure (the first failure is kept
/// for the health snapshot).
fn keep<T>(r: Result<T, ApiError>, message: &'static str, failure: &mut Option<String>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "{message}");
            failure.get_or_insert_with(|| e.to_string());
            None
        }
    }
}
