//! `docs/signals.md` must mention every topic, metric, attribute key and span name the code
//! knows, so the document cannot fall behind the translator.

use mist_otel::signals::{METRICS, TOPICS, attrs, traces};
use std::path::Path;

fn doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/signals.md")).unwrap()
}

fn missing<'a>(doc: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names.into_iter().filter(|n| !doc.contains(&format!("`{n}`"))).collect()
}

#[test]
fn every_topic_is_documented() {
    let m = missing(&doc(), TOPICS.iter().copied());
    assert!(m.is_empty(), "topics missing from docs/signals.md: {m:?}");
}

#[test]
fn every_metric_is_documented_with_its_unit() {
    let doc = doc();
    let m = missing(&doc, METRICS.iter().map(|d| d.name));
    assert!(m.is_empty(), "metrics missing from docs/signals.md: {m:?}");
    for d in METRICS {
        let row = doc.lines().find(|l| l.starts_with(&format!("| `{}` |", d.name))).unwrap();
        assert!(row.contains(&format!("`{}`", d.unit)), "unit of {} not in its row: {row}", d.name);
    }
}

#[test]
fn every_attribute_and_span_name_is_documented() {
    let doc = doc();
    let names = attrs::ALL.iter().chain(attrs::POLLER).copied().chain(traces::SPAN_NAMES.iter().copied());
    let m = missing(&doc, names);
    assert!(m.is_empty(), "names missing from docs/signals.md: {m:?}");
}
