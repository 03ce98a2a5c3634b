//! Metric definitions and their aggregation.
//!
//! Events fold into series keyed by (metric, site resource, attributes). Counters and
//! histograms are cumulative by default (start = first observation of the series) or delta
//! (changes since the previous collection; emitted series are then forgotten, which also frees
//! their cardinality). Gauges keep the latest value *at the event's own time*: in cumulative
//! mode every collection repeats the current state, in delta mode only values that changed
//! since the previous collection are sent. A cap bounds the number of live series; series
//! beyond it are dropped and counted.

use super::attrs;
use super::config::{SignalsConfig, Temporality};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, metric, number_data_point,
};
use std::collections::BTreeMap;

/// What kind of instrument a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic sum of integers.
    Counter,
    /// Latest value, at the event's time.
    Gauge,
    /// Explicit-bucket histogram with the given bounds.
    Histogram(Bounds),
}

/// Which bucket bounds a histogram uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounds {
    /// Signal strength, dBm.
    Rssi,
    /// Session length, from `signals.session_duration_buckets`.
    SessionDuration,
}

/// Bucket bounds of `mist.client.join.rssi` (dBm): the usual Wi-Fi design thresholds.
pub const RSSI_BOUNDS: &[f64] = &[-90.0, -80.0, -75.0, -70.0, -67.0, -60.0, -50.0, -40.0];

/// A metric the translator emits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// OTLP name.
    pub name: &'static str,
    /// UCUM unit.
    pub unit: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Instrument kind.
    pub kind: Kind,
    /// Topic(s) it comes from (for the documentation).
    pub topics: &'static str,
}

macro_rules! metrics {
    ($($id:ident = $name:literal, $unit:literal, $kind:expr, $topics:literal, $desc:literal;)*) => {
        $(
            #[doc = concat!("`", $name, "` (", $unit, "): ", $desc)]
            pub const $id: MetricDef =
                MetricDef { name: $name, unit: $unit, description: $desc, kind: $kind, topics: $topics };
        )*
        /// Every metric the translator can emit.
        pub const METRICS: &[MetricDef] = &[$($id),*];
    };
}

metrics! {
    DEVICE_UP = "mist.device.up", "1", Kind::Gauge, "device-updowns",
        "1 when the device last connected, 0 when it last disconnected, at the event's time.";
    ALARMS = "mist.alarms", "{alarm}", Kind::Counter, "alarms",
        "Alarm notifications, by type, group and severity.";
    DEVICE_EVENTS = "mist.device.events", "{event}", Kind::Counter, "device-events",
        "Device events, by event type and device type.";
    MXEDGE_EVENTS = "mist.mxedge.events", "{event}", Kind::Counter, "mxedge-events",
        "Mist Edge events, by event type and Mist Edge.";
    NAC_EVENTS = "mist.nac.events", "{event}", Kind::Counter, "nac-events",
        "NAC authentication results, by result, event type, auth type and SSID.";
    NAC_ACCOUNTING_PACKETS = "mist.nac.accounting.packets", "{packet}", Kind::Counter, "nac-accounting",
        "Packets of finished NAC sessions (accounting stop totals), by direction, auth type and SSID.";
    CLIENT_JOINS = "mist.client.joins", "{join}", Kind::Counter, "client-join",
        "Wireless client associations, by SSID and band.";
    CLIENT_JOIN_RSSI = "mist.client.join.rssi", "dBm", Kind::Histogram(Bounds::Rssi), "client-join",
        "Signal strength at association, by SSID and band.";
    SESSION_DURATION = "mist.client.session.duration", "s", Kind::Histogram(Bounds::SessionDuration),
        "client-sessions", "Length of ended sessions (disconnect or roam), by SSID, band and whether it roamed.";
    SESSION_TERMINATIONS = "mist.client.session.terminations", "{session}", Kind::Counter, "client-sessions",
        "Ended sessions, by 802.11 termination reason, SSID and whether it roamed.";
    CLIENT_ROAMS = "mist.client.roams", "{roam}", Kind::Counter, "client-sessions",
        "Sessions that ended by roaming to another AP, by SSID and band.";
    CLIENT_LATENCY = "mist.client.latency", "s", Kind::Gauge, "client-latency",
        "Site auth/DHCP/DNS latency, by phase and statistic (avg, min, max).";
    APP_LATENCY = "mist.minis.application.latency", "ms", Kind::Gauge, "minis-application",
        "Marvis Minis application probe latency, by probe and device.";
    APP_SUCCESS = "mist.minis.application.success", "1", Kind::Gauge, "minis-application",
        "1 when the Marvis Minis application probe succeeded, else 0.";
    REACH_LATENCY = "mist.minis.reachability.latency", "ms", Kind::Gauge, "minis-reachability",
        "Marvis Minis reachability latency, by probe, device and statistic (avg, min, max).";
    REACH_LOSS = "mist.minis.reachability.loss", "1", Kind::Gauge, "minis-reachability",
        "Marvis Minis reachability packet loss as a ratio (0..1).";
    SITE_SLE = "mist.site.sle", "1", Kind::Gauge, "site-sle",
        "Site service-level figures (0..1), by SLE metric.";
    ZONE_OCCUPANCY = "mist.zone.occupancy", "{person}", Kind::Gauge, "occupancy-alerts",
        "People in a zone when an occupancy alert fired, by zone.";
    ZONE_OCCUPANCY_LIMIT = "mist.zone.occupancy.limit", "{person}", Kind::Gauge, "occupancy-alerts",
        "Occupancy limit of a zone, by zone.";
    OCCUPANCY_ALERTS = "mist.occupancy.alerts", "{alert}", Kind::Counter, "occupancy-alerts",
        "Occupancy alerts, by alert type.";
    GUEST_AUTHORIZATIONS = "mist.guest.authorizations", "{authorization}", Kind::Counter,
        "guest-authorizations", "Guest portal authorisations, by SSID and method.";
}

/// Identity of a metric's resource: the site (its name is left out on purpose: not every
/// event carries it, and a resource that changes would split the series).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SiteKey {
    /// Webhook endpoint that received the events (its static attributes join the resource).
    pub endpoint: String,
    /// Organisation id.
    pub org: Option<String>,
    /// Site id.
    pub site: Option<String>,
}

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Clone)]
enum Point {
    Sum { start_ns: u64, value: i64 },
    Gauge { time_ns: u64, value: f64, fresh: bool },
    Hist { start_ns: u64, counts: Vec<u64>, sum: f64, count: u64, min: f64, max: f64 },
}

/// The aggregation state.
#[derive(Debug)]
pub struct Aggregator {
    temporality: Temporality,
    per_client: bool,
    max_series: usize,
    session_bounds: Vec<f64>,
    series: BTreeMap<(&'static str, SiteKey, Labels), Point>,
    dropped: u64,
    last_collect_ns: Option<u64>,
}

impl Aggregator {
    /// An empty aggregation configured by `cfg`.
    pub fn new(cfg: &SignalsConfig) -> Self {
        let mut session_bounds: Vec<f64> =
            cfg.session_duration_buckets.iter().copied().filter(|b| b.is_finite()).collect();
        // Tolerate an unvalidated config rather than emit an invalid histogram.
        session_bounds.sort_by(f64::total_cmp);
        session_bounds.dedup();
        Self {
            temporality: cfg.temporality,
            per_client: cfg.per_client_metrics,
            max_series: cfg.max_metric_series.max(1),
            session_bounds,
            series: BTreeMap::new(),
            dropped: 0,
            last_collect_ns: None,
        }
    }

    /// Whether client metrics carry the client MAC.
    pub fn per_client(&self) -> bool {
        self.per_client
    }

    /// Live series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Series refused because of the cap, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn slot(
        &mut self,
        def: &MetricDef,
        site: &SiteKey,
        mut labels: Labels,
        init: Point,
    ) -> Option<&mut Point> {
        labels.sort_by(|a, b| a.0.cmp(b.0));
        let full = self.series.len() >= self.max_series;
        match self.series.entry((def.name, site.clone(), labels)) {
            std::collections::btree_map::Entry::Occupied(o) => Some(o.into_mut()),
            std::collections::btree_map::Entry::Vacant(_) if full => {
                self.dropped += 1;
                None
            }
            std::collections::btree_map::Entry::Vacant(v) => Some(v.insert(init)),
        }
    }

    fn start(&self, received_ns: u64) -> u64 {
        match self.temporality {
            Temporality::Delta => self.last_collect_ns.unwrap_or(received_ns),
            Temporality::Cumulative => received_ns,
        }
    }

    /// Adds `value` to a counter.
    pub fn add(&mut self, def: &MetricDef, site: &SiteKey, labels: Labels, value: i64, received_ns: u64) {
        let start_ns = self.start(received_ns);
        if let Some(Point::Sum { value: v, .. }) =
            self.slot(def, site, labels, Point::Sum { start_ns, value: 0 })
        {
            *v = v.saturating_add(value.max(0));
        }
    }

    /// Sets a gauge to `value` as of `time_ns`. An older value never overwrites a newer one
    /// (deliveries may arrive out of order).
    pub fn gauge(&mut self, def: &MetricDef, site: &SiteKey, labels: Labels, value: f64, time_ns: u64) {
        if !value.is_finite() {
            return;
        }
        let init = Point::Gauge { time_ns, value, fresh: true };
        if let Some(Point::Gauge { time_ns: t, value: v, fresh }) = self.slot(def, site, labels, init)
            && time_ns >= *t
        {
            *t = time_ns;
            *v = value;
            *fresh = true;
        }
    }

    /// Records `value` in a histogram.
    pub fn record(&mut self, def: &MetricDef, site: &SiteKey, labels: Labels, value: f64, received_ns: u64) {
        if !value.is_finite() {
            return;
        }
        let bounds_len = match def.kind {
            Kind::Histogram(Bounds::Rssi) => RSSI_BOUNDS.len(),
            Kind::Histogram(Bounds::SessionDuration) => self.session_bounds.len(),
            _ => return,
        };
        let idx = self.bounds(def).partition_point(|b| *b < value);
        let start_ns = self.start(received_ns);
        let init = Point::Hist {
            start_ns,
            counts: vec![0; bounds_len + 1],
            sum: 0.0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        };
        if let Some(Point::Hist { counts, sum, count, min, max, .. }) = self.slot(def, site, labels, init) {
            if let Some(c) = counts.get_mut(idx) {
                *c += 1;
            }
            *sum += value;
            *count += 1;
            *min = min.min(value);
            *max = max.max(value);
        }
    }

    fn bounds(&self, def: &MetricDef) -> &[f64] {
        match def.kind {
            Kind::Histogram(Bounds::Rssi) => RSSI_BOUNDS,
            Kind::Histogram(Bounds::SessionDuration) => &self.session_bounds,
            _ => &[],
        }
    }

    /// The metrics as of `now_ns`, one `ResourceMetrics` per site, built with `resource`.
    pub fn collect(
        &mut self,
        now_ns: u64,
        resource: impl Fn(&SiteKey) -> opentelemetry_proto::tonic::resource::v1::Resource,
    ) -> Vec<ResourceMetrics> {
        let delta = self.temporality == Temporality::Delta;
        let temporality =
            if delta { AggregationTemporality::Delta } else { AggregationTemporality::Cumulative };
        // site → metric name → points
        type Points<'p> = Vec<(&'p Labels, &'p Point)>;
        let mut by_site: BTreeMap<&SiteKey, BTreeMap<&'static str, Points<'_>>> = BTreeMap::new();
        for ((name, site, labels), point) in &self.series {
            if delta && matches!(point, Point::Gauge { fresh: false, .. }) {
                continue;
            }
            by_site.entry(site).or_default().entry(name).or_default().push((labels, point));
        }
        let out = by_site
            .into_iter()
            .map(|(site, metrics)| ResourceMetrics {
                resource: Some(resource(site)),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope { name: super::SCOPE.into(), ..Default::default() }),
                    metrics: metrics
                        .into_iter()
                        .filter_map(|(name, points)| {
                            let def = METRICS.iter().find(|d| d.name == name)?;
                            Some(self.metric(def, &points, now_ns, temporality))
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        if delta {
            // Emitted deltas are forgotten: the next window starts now, and idle series stop
            // holding cardinality.
            self.series.clear();
        } else {
            for p in self.series.values_mut() {
                if let Point::Gauge { fresh, .. } = p {
                    *fresh = false;
                }
            }
        }
        self.last_collect_ns = Some(now_ns);
        out
    }

    /// One metric of one site: its points in the OTLP shape of the metric's kind.
    fn metric(
        &self,
        def: &MetricDef,
        points: &[(&Labels, &Point)],
        now_ns: u64,
        temporality: AggregationTemporality,
    ) -> Metric {
        let data = match def.kind {
            Kind::Counter => metric::Data::Sum(Sum {
                data_points: points.iter().filter_map(|(l, p)| sum_point(l, p, now_ns)).collect(),
                aggregation_temporality: temporality as i32,
                is_monotonic: true,
            }),
            Kind::Gauge => metric::Data::Gauge(Gauge {
                data_points: points.iter().filter_map(|(l, p)| gauge_point(l, p)).collect(),
            }),
            Kind::Histogram(_) => metric::Data::Histogram(Histogram {
                data_points: points
                    .iter()
                    .filter_map(|(l, p)| histogram_point(l, p, self.bounds(def), now_ns))
                    .collect(),
                aggregation_temporality: temporality as i32,
            }),
        };
        Metric {
            name: def.name.into(),
            unit: def.unit.into(),
            description: def.description.into(),
            data: Some(data),
            ..Default::default()
        }
    }
}

/// A series' labels as OTLP attributes.
fn label_attrs(l: &Labels) -> Vec<KeyValue> {
    l.iter().map(|(k, v)| attrs::kv(k, v.as_str())).collect()
}

/// A counter's point (`None` for a point of another kind); the start never lies after `now_ns`.
fn sum_point(l: &Labels, p: &Point, now_ns: u64) -> Option<NumberDataPoint> {
    match p {
        Point::Sum { start_ns, value } => Some(NumberDataPoint {
            attributes: label_attrs(l),
            start_time_unix_nano: (*start_ns).min(now_ns),
            time_unix_nano: now_ns,
            value: Some(number_data_point::Value::AsInt(*value)),
            ..Default::default()
        }),
        _ => None,
    }
}

/// A gauge's point at the time it was set (`None` for a point of another kind).
fn gauge_point(l: &Labels, p: &Point) -> Option<NumberDataPoint> {
    match p {
        Point::Gauge { time_ns, value, .. } => Some(NumberDataPoint {
            attributes: label_attrs(l),
            time_unix_nano: *time_ns,
            value: Some(number_data_point::Value::AsDouble(*value)),
            ..Default::default()
        }),
        _ => None,
    }
}

/// A histogram's point over `bounds` (`None` for a point of another kind); min and max only
/// once something was recorded.
fn histogram_point(l: &Labels, p: &Point, bounds: &[f64], now_ns: u64) -> Option<HistogramDataPoint> {
    match p {
        Point::Hist { start_ns, counts, sum, count, min, max } => Some(HistogramDataPoint {
            attributes: label_attrs(l),
            start_time_unix_nano: (*start_ns).min(now_ns),
            time_unix_nano: now_ns,
            count: *count,
            sum: Some(*sum),
            bucket_counts: counts.clone(),
            explicit_bounds: bounds.to_vec(),
            min: (*count > 0).then_some(*min),
            max: (*count > 0).then_some(*max),
            ..Default::default()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteKey {
        SiteKey { endpoint: "default".into(), org: Some("o".into()), site: Some("s".into()) }
    }

    fn res(_: &SiteKey) -> opentelemetry_proto::tonic::resource::v1::Resource {
        Default::default()
    }

    fn sum_values(rm: &[ResourceMetrics]) -> Vec<i64> {
        rm.iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .filter_map(|m| match &m.data {
                Some(metric::Data::Sum(s)) => Some(s.data_points.iter().filter_map(|p| match p.value {
                    Some(number_data_point::Value::AsInt(i)) => Some(i),
                    _ => None,
                })),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn cumulative_keeps_totals_delta_resets() {
        let mut cfg = SignalsConfig::default();
        let mut a = Aggregator::new(&cfg);
        a.add(&ALARMS, &site(), vec![(attrs::ALARM_TYPE, "x".into())], 1, 10);
        a.add(&ALARMS, &site(), vec![(attrs::ALARM_TYPE, "x".into())], 2, 11);
        assert_eq!(sum_values(&a.collect(100, res)), [3]);
        a.add(&ALARMS, &site(), vec![(attrs::ALARM_TYPE, "x".into())], 1, 12);
        assert_eq!(sum_values(&a.collect(200, res)), [4]);

        cfg.temporality = Temporality::Delta;
        let mut d = Aggregator::new(&cfg);
        d.add(&ALARMS, &site(), vec![(attrs::ALARM_TYPE, "x".into())], 3, 10);
        assert_eq!(sum_values(&d.collect(100, res)), [3]);
        assert!(sum_values(&d.collect(200, res)).is_empty());
        d.add(&ALARMS, &site(), vec![(attrs::ALARM_TYPE, "x".into())], 1, 210);
        let out = d.collect(300, res);
        assert_eq!(sum_values(&out), [1]);
        let Some(metric::Data::Sum(s)) = &out[0].scope_metrics[0].metrics[0].data else { panic!() };
        assert_eq!(
            s.data_points[0].start_time_unix_nano, 200,
            "delta window starts at the previous collection"
        );
    }

    #[test]
    fn cap_drops_and_counts() {
        let cfg = SignalsConfig { max_metric_series: 2, ..Default::default() };
        let mut a = Aggregator::new(&cfg);
        for i in 0..5 {
            a.add(&ALARMS, &site(), vec![(attrs::ALARM_TYPE, i.to_string())], 1, 1);
        }
        assert_eq!(a.series_count(), 2);
        assert_eq!(a.dropped(), 3);
    }

    #[test]
    fn gauge_keeps_newest_event_time_and_histogram_buckets() {
        let mut a = Aggregator::new(&SignalsConfig::default());
        a.gauge(&DEVICE_UP, &site(), vec![], 0.0, 2_000);
        a.gauge(&DEVICE_UP, &site(), vec![], 1.0, 1_000);
        a.record(&CLIENT_JOIN_RSSI, &site(), vec![], -72.0, 1);
        a.record(&CLIENT_JOIN_RSSI, &site(), vec![], -30.0, 1);
        let out = a.collect(5_000, res);
        for m in &out[0].scope_metrics[0].metrics {
            match &m.data {
                Some(metric::Data::Gauge(g)) => {
                    assert_eq!(g.data_points[0].time_unix_nano, 2_000);
                    assert_eq!(g.data_points[0].value, Some(number_data_point::Value::AsDouble(0.0)));
                }
                Some(metric::Data::Histogram(h)) => {
                    let p = &h.data_points[0];
                    assert_eq!(p.count, 2);
                    // -72 falls in (-75, -70], -30 above the last bound.
                    assert_eq!(p.bucket_counts, [0, 0, 0, 1, 0, 0, 0, 0, 1]);
                    assert_eq!((p.min, p.max), (Some(-72.0), Some(-30.0)));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
