//! The poller's figures as metric families: a neutral model that gathering fills and the
//! Prometheus and OTLP renderings read.

use std::collections::HashMap;
use std::sync::Arc;

/// Gauge or counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Goes up and down.
    Gauge,
    /// Cumulative total.
    Counter,
}

/// A family's definition: (name, help, kind). The names are the Go exporter's.
pub type Def = (&'static str, &'static str, Kind);

/// One label: its Prometheus name (empty = not on Prometheus, to keep the Go label set
/// exact) and its OTLP attribute key (empty = carried by the resource instead).
#[derive(Debug, Clone)]
pub struct Label {
    /// Prometheus label name.
    pub prom: &'static str,
    /// OTLP attribute key.
    pub otel: &'static str,
    /// Value.
    pub value: String,
}

/// A label from its Prometheus name, OTLP key and value.
pub fn lbl(prom: &'static str, otel: &'static str, value: impl Into<String>) -> Label {
    Label { prom, otel, value: value.into() }
}

/// One point.
#[derive(Debug, Clone)]
pub struct Point {
    /// Site of the point (`None` for org-wide figures); selects the OTLP resource.
    pub site: Option<Arc<str>>,
    /// Labels shared by every point of the same device, client or site (cloned by reference,
    /// so gathering 10,000 clients does not copy 200,000 label sets).
    pub labels: Arc<[Label]>,
    /// Labels of this point only (`radio`, `port`, `type`, …).
    pub extra: Vec<Label>,
    /// Value.
    pub value: f64,
    /// Series start (counters), nanoseconds since the epoch.
    pub start_ns: u64,
}

impl Point {
    /// Every label: shared ones, then this point's own.
    pub fn all_labels(&self) -> impl Iterator<Item = &Label> {
        self.labels.iter().chain(self.extra.iter())
    }
}

/// A metric family.
#[derive(Debug, Clone)]
pub struct Family {
    /// Name (the Go exporter's).
    pub name: &'static str,
    /// Help text.
    pub help: &'static str,
    /// Type.
    pub kind: Kind,
    /// Points.
    pub points: Vec<Point>,
}

/// Families gathered in a stable order (first point first).
#[derive(Default)]
pub struct Families {
    list: Vec<Family>,
    index: HashMap<&'static str, usize>,
}

impl Families {
    /// Adds a point to the family `def`, creating the family on its first point.
    pub fn push(&mut self, (name, help, kind): Def, p: Point) {
        let i = *self.index.entry(name).or_insert_with(|| {
            self.list.push(Family { name, help, kind, points: Vec::new() });
            self.list.len() - 1
        });
        self.list[i].points.push(p);
    }

    /// The families.
    pub fn into_vec(self) -> Vec<Family> {
        self.list
    }
}
