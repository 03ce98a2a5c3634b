//! The status page on the admin listener: what arrived recently, what was rejected and why, a
//! live tail of events, and the health of export, buffer and poller as read from the
//! self-metrics registry.
//!
//! Routes: `/` (server-rendered HTML, a few lines of vanilla JS), `/status.json` (the same data)
//! and `/status/events` (Server-Sent Events, one per accepted event).
//!
//! Everything kept here is bounded: fixed-size rings for deliveries and events, and a cap on the
//! number of distinct topics (further unknown topics are counted as `other`), so a sender cannot
//! grow the server's memory through this page.

mod board;
mod health;
mod page;
mod stream;
mod tail;

pub use board::{DeliveryRecord, StatusBoard, TopicStats, UNPARSED};
pub use health::{COMPONENTS, Health, Sample, SiteState, parse_labels, poller_sites, samples_with_prefix};
pub use page::{escape, render_page};
pub use tail::TailEvent;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything on the page, as `/status.json` serves it.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// Server version.
    pub version: &'static str,
    /// Seconds since the board was created.
    pub uptime_secs: u64,
    /// Totals per topic.
    pub topics: BTreeMap<String, TopicStats>,
    /// Recent deliveries, newest first.
    pub deliveries: Vec<DeliveryRecord>,
    /// Recent events, newest first.
    pub events: Vec<TailEvent>,
    /// Health per component (`export`, `buffer`, `poller`).
    pub health: BTreeMap<String, Health>,
    /// Open live-tail streams (pages watching right now).
    pub live_viewers: usize,
    /// The poller's per-site stream state (empty when the poller is off).
    pub poller_sites: Vec<SiteState>,
}

#[derive(Clone)]
struct StatusState {
    pub(super) board: Arc<StatusBoard>,
    registry: Arc<Registry>,
    pub(super) cancel: CancellationToken,
}

impl StatusState {
    fn snapshot(&self) -> Snapshot {
        let text = crate::telemetry::render(&self.registry);
        let health: BTreeMap<String, Health> = COMPONENTS
            .iter()
            .map(|(name, prefix)| {
                let samples = samples_with_prefix(&text, prefix);
                ((*name).to_owned(), Health { enabled: !samples.is_empty(), samples })
            })
            .collect();
        let poller_sites = health.get("poller").map(|h| poller_sites(&h.samples)).unwrap_or_default();
        Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            uptime_secs: self.board.started.elapsed().as_secs(),
            topics: self.board.topics(),
            deliveries: self.board.deliveries(),
            events: self.board.events(),
            health,
            live_viewers: self.board.tail.receiver_count(),
            poller_sites,
        }
    }
}

/// The status routes. `cancel` ends open event streams so graceful shutdown is not held up.
pub fn router(board: Arc<StatusBoard>, registry: Arc<Registry>, cancel: CancellationToken) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/status.json", get(json))
        .route("/status/events", get(stream::events))
        .with_state(StatusState { board, registry, cancel })
}

async fn json(State(st): State<StatusState>) -> impl IntoResponse {
    axum::Json(st.snapshot())
}

async fn page(State(st): State<StatusState>) -> impl IntoResponse {
    let html = render_page(&st.snapshot());
    ([(header::CACHE_CONTROL, "no-store")], Html(html))
}
