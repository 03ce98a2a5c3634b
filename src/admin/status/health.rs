//! Component health as the page shows it.

use serde::Serialize;

/// One self-metric sample, as read from the registry's text.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sample {
    /// Metric name (with the `mist_otel_` prefix).
    pub name: String,
    /// Labels as `k="v",…` (empty when none).
    pub labels: String,
    /// The value as printed.
    pub value: String,
}

/// Health of a component, as read from its self-metrics.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Whether the component registered any metric.
    pub enabled: bool,
    /// Its samples.
    pub samples: Vec<Sample>,
}

/// Picks the samples whose names start with `prefix` out of Prometheus/OpenMetrics text.
pub fn samples_with_prefix(text: &str, prefix: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').unwrap_or(rest)),
                None => (series, ""),
            };
            Some(Sample { name: name.to_owned(), labels: labels.to_owned(), value: value.to_owned() })
        })
        .collect()
}

/// Splits a Prometheus label string (`a="x",b="y\\"z"`) into pairs, unescaping values.
pub fn parse_labels(labels: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((key.trim_start_matches(',').trim().to_owned(), value));
        rest = &after[end..];
    }
    out
}

/// One site's stream subscription as the poller reports it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SiteState {
    /// Site id.
    pub site_id: String,
    /// Stream channel (`devices`, `clients`, …).
    pub channel: String,
    /// Whether the subscription is confirmed now.
    pub subscribed: bool,
}

/// Per-site connection state from the poller's `mist_otel_poller_site_subscribed` gauge.
pub fn poller_sites(samples: &[Sample]) -> Vec<SiteState> {
    samples
        .iter()
        .filter(|s| s.name == "mist_otel_poller_site_subscribed")
        .map(|s| {
            let labels = parse_labels(&s.labels);
            let get =
                |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
            SiteState {
                site_id: get("site_id"),
                channel: get("channel"),
                subscribed: s.value.parse::<f64>().is_ok_and(|v| v >= 1.0),
            }
        })
        .collect()
}

/// The components whose health the page shows: (title, metric prefix).
pub const COMPONENTS: &[(&str, &str)] =
    &[("export", "mist_otel_export_"), ("buffer", "mist_otel_buffer_"), ("poller", "mist_otel_poller_")];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::status::{Snapshot, render_page};
    use std::collections::BTreeMap;

    #[test]
    fn picks_samples_by_prefix() {
        let text = "# HELP mist_otel_buffer_bytes x\nmist_otel_buffer_bytes 12\n\
                    mist_otel_poller_site_connected{site=\"a b\"} 1\nmist_otel_ingest_x 3\n";
        let s = samples_with_prefix(text, "mist_otel_poller_");
        assert_eq!(
            s,
            vec![Sample {
                name: "mist_otel_poller_site_connected".into(),
                labels: "site=\"a b\"".into(),
                value: "1".into()
            }]
        );
        assert_eq!(samples_with_prefix(text, "mist_otel_buffer_").len(), 1);
        assert!(samples_with_prefix(text, "mist_otel_export_").is_empty());
    }

    #[test]
    fn poller_site_state_from_its_gauge() {
        let text = "mist_otel_poller_site_subscribed{site_id=\"s-1\",channel=\"devices\"} 1\n\
                    mist_otel_poller_site_subscribed{site_id=\"s\\\"2\",channel=\"clients\"} 0\n\
                    mist_otel_poller_sites 2\n";
        let sites = poller_sites(&samples_with_prefix(text, "mist_otel_poller_"));
        assert_eq!(sites.len(), 2);
        assert_eq!(
            sites[0],
            SiteState { site_id: "s-1".into(), channel: "devices".into(), subscribed: true }
        );
        assert_eq!(sites[1].site_id, "s\"2");
        assert!(!sites[1].subscribed);
        let page = render_page(&Snapshot {
            version: "t",
            uptime_secs: 0,
            topics: BTreeMap::new(),
            deliveries: vec![],
            events: vec![],
            health: BTreeMap::new(),
            live_viewers: 0,
            poller_sites: sites,
        });
        assert!(page.contains("<td>s-1</td><td>devices</td><td class=\"ok\">subscribed</td>"), "{page}");
        assert!(page.contains("s&quot;2"), "{page}");
    }
}
