//! Batches of log records and spans: queued per signal, flushed by count, bytes or age, and cut
//! into export requests under the byte limit.

use crate::exporter::Payload;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use std::time::Duration;
use tokio::time::Instant;

/// One signal's queued resource groups, waiting to be flushed.
pub(super) struct Pending<T> {
    /// Groups with their encoded sizes (measured once, here: the size is a walk of the whole
    /// group, and splitting into requests needs it again).
    items: Vec<(T, usize)>,
    count: usize,
    bytes: usize,
    since: Option<Instant>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self { items: Vec::new(), count: 0, bytes: 0, since: None }
    }
}

/// When a batch is due: the limits from `export.batch` and the signal's delay.
pub(super) struct Due {
    /// Flush whatever is queued (the final flush).
    pub(super) all: bool,
    /// `batch.max_items`.
    pub(super) max_items: usize,
    /// `batch.max_bytes`.
    pub(super) max_bytes: usize,
    /// How long the oldest item may wait.
    pub(super) delay: Duration,
    /// Now.
    pub(super) now: Instant,
}

/// A resource group (`ResourceLogs`, `ResourceSpans`): a resource, its scopes, and each scope's
/// records (log records, spans). Batching, chopping and merging treat both alike.
pub(super) trait Group: Message + Clone {
    type Scope: Clone;
    type Record: Message;
    fn scopes(&self) -> &[Self::Scope];
    fn scopes_mut(&mut self) -> &mut Vec<Self::Scope>;
    fn records_of(scope: &mut Self::Scope) -> &mut Vec<Self::Record>;
    fn record_count(scope: &Self::Scope) -> usize;
    /// Same resource and schema: the two groups may be one in a request.
    fn same_resource(&self, other: &Self) -> bool;
    /// Same instrumentation scope and schema.
    fn same_scope(a: &Self::Scope, b: &Self::Scope) -> bool;

    /// How many records the group carries.
    fn records(&self) -> usize {
        self.scopes().iter().map(Self::record_count).sum()
    }
}

/// Implements [`Group`] for a resource group type from its field names.
macro_rules! group {
    ($group:ty, $scope:ty, $record:ty, $scopes:ident, $records:ident) => {
        impl Group for $group {
            type Scope = $scope;
            type Record = $record;
            fn scopes(&self) -> &[$scope] {
                &self.$scopes
            }
            fn scopes_mut(&mut self) -> &mut Vec<$scope> {
                &mut self.$scopes
            }
            fn records_of(scope: &mut $scope) -> &mut Vec<$record> {
                &mut scope.$records
            }
            fn record_count(scope: &$scope) -> usize {
                scope.$records.len()
            }
            fn same_resource(&self, other: &Self) -> bool {
                self.resource == other.resource && self.schema_url == other.schema_url
            }
            fn same_scope(a: &$scope, b: &$scope) -> bool {
                a.scope == b.scope && a.schema_url == b.schema_url
            }
        }
    };
}

group!(ResourceLogs, ScopeLogs, LogRecord, scope_logs, log_records);
group!(ResourceSpans, ScopeSpans, Span, scope_spans, spans);
// Metrics are halved by metric (a metric's data points stay together).
group!(ResourceMetrics, ScopeMetrics, Metric, scope_metrics, metrics);

/// Cuts a request a backend refused as too large (HTTP 413) into two with half the records each
/// (log records, spans, metrics), each part keeping its resource and scope, in order. `None`
/// when it holds a single record: it cannot get smaller.
pub(super) fn halve(payload: Payload) -> Option<(Payload, Payload)> {
    Some(match payload {
        Payload::Logs(r) => {
            let (a, b) = halve_groups(r.resource_logs)?;
            let req = |resource_logs| Payload::Logs(ExportLogsServiceRequest { resource_logs });
            (req(a), req(b))
        }
        Payload::Traces(r) => {
            let (a, b) = halve_groups(r.resource_spans)?;
            let req = |resource_spans| Payload::Traces(ExportTraceServiceRequest { resource_spans });
            (req(a), req(b))
        }
        Payload::Metrics(r) => {
            let (a, b) = halve_groups(r.resource_metrics)?;
            let req = |resource_metrics| Payload::Metrics(ExportMetricsServiceRequest { resource_metrics });
            (req(a), req(b))
        }
    })
}

/// Splits groups into two lists holding half the records each (the first gets the smaller half),
/// cutting through a group's scopes and a scope's records where the half falls.
fn halve_groups<G: Group>(groups: Vec<G>) -> Option<(Vec<G>, Vec<G>)> {
    let total: usize = groups.iter().map(G::records).sum();
    if total < 2 {
        return None;
    }
    let mut quota = total / 2;
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for mut group in groups {
        let n = group.records();
        if quota == 0 || n == 0 {
            right.push(group);
        } else if n <= quota {
            quota -= n;
            left.push(group);
        } else {
            // With the scopes taken out, the clone copies only the resource.
            let scopes = std::mem::take(group.scopes_mut());
            let mut head = group.clone();
            for mut scope in scopes {
                let c = G::record_count(&scope);
                if quota == 0 {
                    group.scopes_mut().push(scope);
                } else if c <= quota {
                    quota -= c;
                    head.scopes_mut().push(scope);
                } else {
                    let tail = G::records_of(&mut scope).split_off(quota);
                    quota = 0;
                    let mut rest = scope.clone();
                    *G::records_of(&mut rest) = tail;
                    head.scopes_mut().push(scope);
                    group.scopes_mut().push(rest);
                }
            }
            left.push(head);
            right.push(group);
        }
    }
    Some((left, right))
}

impl<T: Group> Pending<T> {
    /// Queues a group, counting its records and bytes; the batch delay runs from the first.
    pub(super) fn push(&mut self, item: T, now: Instant) {
        let size = item.encoded_len();
        self.count += item.records();
        self.bytes += size;
        self.since.get_or_insert(now);
        self.items.push((item, size));
    }

    /// Takes the batch and cuts it into requests of at most `max_bytes` each, in order, with
    /// adjacent groups of one resource merged.
    pub(super) fn requests(&mut self, max_bytes: usize) -> impl Iterator<Item = Vec<T>> + use<T> {
        split_by_bytes(chop(self.take(), max_bytes), max_bytes).into_iter().map(merge)
    }
}

impl<T> Pending<T> {
    fn take(&mut self) -> Vec<(T, usize)> {
        self.count = 0;
        self.bytes = 0;
        self.since = None;
        std::mem::take(&mut self.items)
    }

    /// Nothing queued.
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Records queued.
    pub(super) fn records(&self) -> usize {
        self.count
    }

    /// When the oldest queued item will have waited `delay`.
    pub(super) fn flush_at(&self, delay: Duration) -> Option<Instant> {
        self.since.map(|s| s + delay)
    }

    /// The batch should go now: anything queued and a flush of all, or a limit reached.
    pub(super) fn due(&self, d: &Due) -> bool {
        let count = self.count.max(self.items.len());
        count > 0
            && (d.all
                || count >= d.max_items
                || self.bytes >= d.max_bytes
                || self.flush_at(d.delay).is_some_and(|at| d.now >= at))
    }
}

/// Breaks each resource group larger than `max_bytes` into several with the same resource and
/// scope, a share of the records each, so one large delivery (up to `ingest.max_body_bytes`)
/// never becomes a request over the backend's message limit — which would be refused for good.
fn chop<G: Group>(items: Vec<(G, usize)>, max_bytes: usize) -> Vec<(G, usize)> {
    let mut out = Vec::with_capacity(items.len());
    for (mut group, size) in items {
        if size <= max_bytes {
            out.push((group, size));
            continue;
        }
        // With their records taken out, the clones below copy only the resource and scope.
        for mut scope in std::mem::take(group.scopes_mut()) {
            for chunk in split_by_bytes(sized(std::mem::take(G::records_of(&mut scope))), max_bytes * 3 / 4) {
                let mut part_scope = scope.clone();
                *G::records_of(&mut part_scope) = chunk;
                let mut part = group.clone();
                part.scopes_mut().push(part_scope);
                let size = part.encoded_len();
                out.push((part, size));
            }
        }
    }
    out
}

/// Pairs each item with its encoded size.
fn sized<T: Message>(items: Vec<T>) -> Vec<(T, usize)> {
    items
        .into_iter()
        .map(|i| {
            let n = i.encoded_len();
            (i, n)
        })
        .collect()
}

/// Splits a batch into requests of at most `max_bytes` encoded bytes each (a single group
/// larger than that goes alone), so one large delivery cannot push a request past the backend's
/// message limit together with others.
fn split_by_bytes<T>(items: Vec<(T, usize)>, max_bytes: usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut size = 0;
    for (item, n) in items {
        match out.last_mut() {
            Some(last) if size + n <= max_bytes => last.push(item),
            _ => {
                out.push(vec![item]);
                size = 0;
            }
        }
        size += n;
    }
    out
}

/// Merges adjacent resource groups with the same resource and scope, so a batch of deliveries
/// from one endpoint is one resource in the request.
fn merge<G: Group>(items: Vec<G>) -> Vec<G> {
    let mut out: Vec<G> = Vec::with_capacity(items.len());
    for mut group in items {
        match out.last_mut() {
            Some(last) if last.same_resource(&group) => {
                for mut scope in std::mem::take(group.scopes_mut()) {
                    match last.scopes_mut().iter_mut().find(|s| G::same_scope(s, &scope)) {
                        Some(s) => G::records_of(s).append(G::records_of(&mut scope)),
                        None => last.scopes_mut().push(scope),
                    }
                }
            }
            _ => out.push(group),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitting_respects_the_byte_limit_and_keeps_order() {
        use opentelemetry_proto::tonic::logs::v1::LogRecord;
        let rl = |n: usize| ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord { time_unix_nano: n as u64, ..Default::default() }; n],
                ..Default::default()
            }],
            ..Default::default()
        };
        let items: Vec<ResourceLogs> = (1..=30).map(rl).collect();
        let total: usize = items.iter().map(|i| i.encoded_len()).sum();
        let parts = split_by_bytes(sized(items.clone()), 1024);
        assert!(parts.len() > 1);
        for p in &parts {
            let size: usize = p.iter().map(|i| i.encoded_len()).sum();
            assert!(size <= 1024 || p.len() == 1, "{size}");
        }
        let flat: Vec<ResourceLogs> = parts.into_iter().flatten().collect();
        assert_eq!(flat, items);
        assert_eq!(split_by_bytes(sized(items), total).len(), 1);
    }

    #[test]
    fn one_oversized_delivery_is_chopped_into_requests_under_the_limit() {
        use opentelemetry_proto::tonic::logs::v1::LogRecord;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let record =
            |i: u64| LogRecord { time_unix_nano: i, severity_text: "x".repeat(1000), ..Default::default() };
        let big = ResourceLogs {
            resource: Some(Resource::default()),
            scope_logs: vec![ScopeLogs {
                log_records: (0..1000).map(record).collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let small = ResourceLogs { scope_logs: vec![ScopeLogs::default()], ..Default::default() };
        let max = 64 * 1024;
        let parts = split_by_bytes(chop(sized(vec![small.clone(), big]), max), max);
        for p in &parts {
            let size: usize = p.iter().map(|i| i.encoded_len()).sum();
            assert!(size <= max, "request of {size} bytes");
        }
        let times: Vec<u64> = parts
            .iter()
            .flatten()
            .flat_map(|rl| {
                rl.scope_logs.iter().flat_map(|sl| sl.log_records.iter().map(|r| r.time_unix_nano))
            })
            .collect();
        assert_eq!(times, (0..1000).collect::<Vec<_>>(), "every record once, in order");
        assert_eq!(parts[0][0], small, "groups under the limit are left alone");
    }

    #[test]
    fn a_request_refused_as_too_large_is_halved_by_records_in_order() {
        let rl = |times: std::ops::Range<u64>| ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: times.map(|t| LogRecord { time_unix_nano: t, ..Default::default() }).collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let times = |p: &Payload| match p {
            Payload::Logs(r) => r
                .resource_logs
                .iter()
                .flat_map(|g| &g.scope_logs)
                .flat_map(|s| s.log_records.iter().map(|r| r.time_unix_nano))
                .collect::<Vec<_>>(),
            _ => unreachable!(),
        };
        // One resource group of 7 records is cut inside its scope.
        let one = Payload::Logs(ExportLogsServiceRequest { resource_logs: vec![rl(0..7)] });
        let (a, b) = halve(one).unwrap();
        assert_eq!((times(&a), times(&b)), ((0..3).collect(), (3..7).collect()));
        assert_eq!(b.items(), 4);
        // Several groups: whole groups move, order kept.
        let many =
            Payload::Logs(ExportLogsServiceRequest { resource_logs: vec![rl(0..2), rl(2..4), rl(4..5)] });
        let (a, b) = halve(many).unwrap();
        assert_eq!((times(&a), times(&b)), ((0..2).collect(), (2..5).collect()));
        // A single record cannot get smaller.
        assert!(halve(Payload::Logs(ExportLogsServiceRequest { resource_logs: vec![rl(0..1)] })).is_none());
    }

    #[test]
    fn merging_keeps_every_record() {
        use opentelemetry_proto::tonic::logs::v1::LogRecord;
        let rl = |n: usize| ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![LogRecord::default(); n], ..Default::default() }],
            ..Default::default()
        };
        let merged = merge(vec![rl(2), rl(3)]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].scope_logs[0].log_records.len(), 5);
    }

    #[test]
    fn spans_are_chopped_and_merged_by_resource_and_scope() {
        use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
        use opentelemetry_proto::tonic::resource::v1::Resource;
        let group = |resource: &str, scope: &str, ids: std::ops::Range<u8>| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![crate::signals::attrs::kv("r", resource)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: scope.into(), ..Default::default() }),
                spans: ids
                    .map(|i| Span { span_id: vec![i; 8], name: "x".repeat(2000), ..Default::default() })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        // Over the limit: split into parts that each keep the resource and scope.
        let max = 16 * 1024;
        let parts = chop(sized(vec![group("a", "s", 0..40)]), max);
        assert!(parts.len() > 1);
        for (p, size) in &parts {
            assert!(*size <= max, "part of {size} bytes");
            assert_eq!(p.resource, group("a", "s", 0..0).resource);
            assert_eq!(p.scope_spans[0].scope, group("a", "s", 0..0).scope_spans[0].scope);
        }
        // Merged back: adjacent groups of one resource become one, scopes kept apart, another
        // resource left on its own; every span once, in order.
        let mut items: Vec<ResourceSpans> = parts.into_iter().map(|(p, _)| p).collect();
        items.push(group("a", "t", 40..42));
        items.push(group("b", "s", 42..44));
        let merged = merge(items);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].scope_spans.len(), 2);
        let ids: Vec<u8> = merged
            .iter()
            .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| ss.spans.iter().map(|s| s.span_id[0])))
            .collect();
        assert_eq!(ids, (0..44).collect::<Vec<_>>());
    }
}
