//! Golden tests: every Mist sample webhook (both spec versions and the variants) and every
//! authored scenario in `fixtures/` → OTLP JSON (logs, spans, and the metrics collected after
//! the deliveries), compared with the reviewed snapshots in `tests/snapshots/`.
//!
//! The JSON is the OTLP/JSON rendering of `opentelemetry-proto`, with default-valued
//! bookkeeping fields (`schemaUrl: ""`, `droppedAttributesCount: 0`, …) left out so the
//! snapshots stay readable.

mod support;

use mist_otel::mist::Envelope;
use mist_otel::signals::{Input, SignalsConfig, Translator};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// 2026-04-12T13:20:00Z: a fixed receipt time so snapshots are stable, after every event time
/// in the samples (an event time more than a day after receipt is replaced by receipt).
const RECEIVED_NS: u64 = 1_776_000_000_000_000_000;
/// Deliveries of a scenario are received one second apart.
const STEP_NS: u64 = 1_000_000_000;

fn config() -> SignalsConfig {
    let mut cfg = SignalsConfig::default();
    cfg.resource_attributes.insert("deployment.environment".into(), "test".into());
    cfg
}

/// Drops default-valued bookkeeping fields of the OTLP JSON rendering.
fn prune(v: &mut Value) {
    const DEFAULT_ZERO: &[&str] =
        &["droppedAttributesCount", "droppedEventsCount", "droppedLinksCount", "flags", "keyStrindex"];
    match v {
        Value::Object(m) => {
            m.retain(|k, v| {
                let empty = match v {
                    Value::Null => true,
                    Value::String(s) => s.is_empty() && k != "stringValue",
                    Value::Array(a) => a.is_empty(),
                    Value::Number(n) => DEFAULT_ZERO.contains(&k.as_str()) && n.as_u64() == Some(0),
                    _ => false,
                };
                !empty
            });
            m.values_mut().for_each(prune);
        }
        Value::Array(a) => a.iter_mut().for_each(prune),
        _ => {}
    }
}

/// Translates the deliveries in order with one translator; returns logs, spans and metrics.
fn translate_all(bodies: &[Vec<u8>]) -> Value {
    let cfg = config();
    let mut t = Translator::new(&cfg);
    let ep_attrs: BTreeMap<String, String> = [("mist.webhook.tenant".to_string(), "lab".to_string())].into();
    let mut deliveries = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let envelope = Envelope::parse(body).expect("sample parses as an envelope");
        let input = Input {
            endpoint: "default",
            endpoint_attributes: &ep_attrs,
            received_at_ns: RECEIVED_NS + i as u64 * STEP_NS,
            envelope: &envelope,
        };
        let out = t.translate(&input);
        deliveries.push(json!({"topic": envelope.topic, "logs": out.logs, "spans": out.spans}));
    }
    let metrics = t.collect_metrics(RECEIVED_NS + 60 * STEP_NS);
    let mut v = json!({"deliveries": deliveries, "metrics": metrics});
    prune(&mut v);
    v
}

/// JSON with every value that fits on one line written on one line: snapshots stay short
/// and diffs stay local.
fn render(v: &Value, depth: usize, column: usize, out: &mut String) {
    const WIDTH: usize = 110;
    let compact = v.to_string();
    if column + compact.len() <= WIDTH || !(v.is_object() || v.is_array()) {
        out.push_str(&compact);
        return;
    }
    let pad = "  ".repeat(depth + 1);
    let (open, close) = if v.is_object() { ('{', '}') } else { ('[', ']') };
    out.push(open);
    out.push('\n');
    let items: Vec<(Option<&String>, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (Some(k), v)).collect(),
        Value::Array(a) => a.iter().map(|v| (None, v)).collect(),
        _ => unreachable!(),
    };
    for (i, (k, item)) in items.iter().enumerate() {
        out.push_str(&pad);
        if let Some(k) = k {
            out.push_str(&Value::String((*k).clone()).to_string());
            out.push_str(": ");
        }
        render(item, depth + 1, pad.len() + k.map_or(0, |k| k.len() + 4), out);
        if i + 1 < items.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str(&"  ".repeat(depth));
    out.push(close);
}

fn rendered(v: &Value) -> String {
    let mut s = String::new();
    render(v, 0, 0, &mut s);
    s
}

fn snapshot_name(path: &Path) -> String {
    let root = support::samples_dir().join("webhooks");
    let rel = path.strip_prefix(&root).unwrap_or(path);
    let rel = rel.to_string_lossy().trim_end_matches(".json").replace(['/', '.'], "_");
    format!("sample_{rel}")
}

#[test]
fn every_sample_webhook() {
    let samples = support::webhook_samples();
    for (path, body) in &samples {
        let v = translate_all(std::slice::from_ref(body));
        // Every event becomes exactly one log record.
        let events = Envelope::parse(body).unwrap().events.len();
        let records: usize = v["deliveries"][0]["logs"]
            .as_array()
            .map(|rl| rl.iter().map(|r| r["scopeLogs"][0]["logRecords"].as_array().map_or(0, Vec::len)).sum())
            .unwrap_or(0);
        assert_eq!(records, events, "{}", path.display());
        insta::assert_snapshot!(snapshot_name(path), rendered(&v));
    }
}

/// Each scenario is a directory of webhook bodies delivered in file-name order.
pub fn fixture_scenarios() -> Vec<(String, Vec<Vec<u8>>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|d| {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            (name, files.iter().map(|f| std::fs::read(f).unwrap()).collect())
        })
        .collect()
}

#[test]
fn every_fixture_scenario() {
    let scenarios = fixture_scenarios();
    assert!(scenarios.len() >= 5, "expected the authored scenarios, found {}", scenarios.len());
    for (name, bodies) in &scenarios {
        let v = translate_all(bodies);
        insta::assert_snapshot!(format!("fixture_{}", name.replace('-', "_")), rendered(&v));
    }
}
