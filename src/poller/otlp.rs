//! The OTLP conversion of the gathered families: gauges and monotonic cumulative sums, one
//! `ResourceMetrics` per site (and one for org-wide figures) on the resources the webhook
//! signals use.

use super::family::{Family, Kind};
use crate::signals::{self, SignalsConfig, attrs};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use std::collections::HashMap;
use std::sync::Arc;

/// The same families as OTLP: one `ResourceMetrics` per site (and one for org-wide figures),
/// whose resource is [`signals::resource`] with `mist.org.id`, `mist.site.id`, `mist.site.name`.
pub fn to_otlp(
    families: &[Family],
    st_org: &str,
    site_names: &HashMap<String, String>,
    signals_cfg: &SignalsConfig,
    now_ns: u64,
) -> Vec<ResourceMetrics> {
    // site (None = org) → its metrics, in the order sites first appear
    let mut by_site: Vec<(Option<Arc<str>>, Vec<Metric>)> = Vec::new();
    let mut idx: HashMap<Option<Arc<str>>, usize> = HashMap::new();
    for fam in families {
        for (site, data_points) in points_by_site(fam, now_ns) {
            let i = *idx.entry(site.clone()).or_insert_with(|| {
                by_site.push((site.clone(), Vec::new()));
                by_site.len() - 1
            });
            by_site[i].1.push(metric(fam, data_points));
        }
    }
    by_site
        .into_iter()
        .map(|(site, metrics)| {
            let mut extra = vec![(attrs::ORG_ID, st_org)];
            if let Some(s) = &site {
                extra.push((attrs::SITE_ID, s));
                if let Some(n) = site_names.get(&**s).filter(|n| !n.is_empty()) {
                    extra.push((attrs::SITE_NAME, n));
                }
            }
            ResourceMetrics {
                resource: Some(signals::resource(signals_cfg, &extra)),
                scope_metrics: vec![scope_metrics(metrics)],
                ..Default::default()
            }
        })
        .collect()
}

/// A family's points as OTLP data points, grouped by site.
fn points_by_site(fam: &Family, now_ns: u64) -> HashMap<Option<Arc<str>>, Vec<NumberDataPoint>> {
    let mut per_site: HashMap<Option<Arc<str>>, Vec<NumberDataPoint>> = HashMap::new();
    for p in &fam.points {
        let attributes = p
            .all_labels()
            .filter(|l| !l.otel.is_empty() && !l.value.is_empty())
            .map(|l| attrs::kv(l.otel, l.value.as_str()))
            .collect();
        let dp = NumberDataPoint {
            attributes,
            start_time_unix_nano: if fam.kind == Kind::Counter { p.start_ns } else { 0 },
            time_unix_nano: now_ns,
            value: Some(number_data_point::Value::AsDouble(p.value)),
            ..Default::default()
        };
        per_site.entry(p.site.clone()).or_default().push(dp);
    }
    per_site
}

/// One site's share of a family as an OTLP gauge or monotonic cumulative sum.
fn metric(fam: &Family, data_points: Vec<NumberDataPoint>) -> Metric {
    let data = match fam.kind {
        Kind::Gauge => metric::Data::Gauge(Gauge { data_points }),
        Kind::Counter => metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
    };
    Metric {
        name: fam.name.to_owned(),
        description: fam.help.to_owned(),
        data: Some(data),
        ..Default::default()
    }
}

fn scope_metrics(metrics: Vec<Metric>) -> ScopeMetrics {
    ScopeMetrics {
        scope: Some(InstrumentationScope {
            name: "mist-otel/poller".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        }),
        metrics,
        ..Default::default()
    }
}
