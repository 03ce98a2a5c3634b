//! The readers of the state: the Prometheus text source behind the admin `/metrics` and the
//! OTLP producer the export pipeline collects from. Both gather under the state lock and
//! render after releasing it, so a scrape never holds up the stream.

use super::state::{SharedState, lock};
use super::{gather::gather, otlp::to_otlp, prometheus::render_prometheus};
use crate::pipeline::MetricsProducer;
use crate::signals::SignalsConfig;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The Go exporter's families as Prometheus text, appended to `/metrics`.
pub fn metrics_source(shared: SharedState) -> crate::telemetry::MetricsSource {
    Arc::new(move |out: &mut String| {
        let fams = gather(&lock(&shared), Instant::now());
        render_prometheus(&fams, out);
    })
}

/// The same figures for the OTLP export pipeline.
pub struct Producer {
    /// The poller's state.
    pub shared: SharedState,
    /// The resource settings the webhook signals use.
    pub signals: SignalsConfig,
}

impl MetricsProducer for Producer {
    fn collect(&self, now_ns: u64) -> Vec<ResourceMetrics> {
        let (fams, org, names) = {
            let st = lock(&self.shared);
            let names: HashMap<String, String> =
                st.sites.values().map(|s| (s.id.clone(), s.name.clone())).collect();
            (gather(&st, Instant::now()), st.org_id.clone(), names)
        };
        to_otlp(&fams, &org, &names, &self.signals, now_ns)
    }
}
