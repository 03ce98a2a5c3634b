//! Translation cost per event, for each topic family. Each delivery holds `N` events of one
//! topic (distinct client MACs where the topic has one), translated by a long-lived translator
//! as in the server; criterion reports time per delivery and events per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mist_otel::mist::Envelope;
use mist_otel::signals::{Input, SignalsConfig, Translator};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

const N: usize = 100;

fn event(path: &str) -> Value {
    let body = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    v["events"][0].clone()
}

/// `N` copies of `ev` with distinct MACs (when it has one) and times.
fn delivery(topic: &str, ev: &Value) -> Envelope {
    let events: Vec<Value> = (0..N)
        .map(|i| {
            let mut e = ev.clone();
            if let Some(o) = e.as_object_mut() {
                if o.contains_key("mac") {
                    o.insert("mac".into(), json!(format!("a4c3f0{i:06x}")));
                }
                if let Some(t) = o.get("timestamp").and_then(Value::as_f64) {
                    o.insert("timestamp".into(), json!(t + i as f64 * 0.001));
                }
            }
            e
        })
        .collect();
    Envelope::parse(json!({"topic": topic, "events": events}).to_string().as_bytes()).unwrap()
}

fn bench(c: &mut Criterion) {
    let samples = "../shared/mist-samples/webhooks";
    let families: Vec<(&str, &str, Value)> = vec![
        ("alarms", "alarms", event(&format!("{samples}/variants/alarms.juniper-docs.json"))),
        ("audits", "audits", event(&format!("{samples}/variants/audits.delivery-record.json"))),
        ("devices", "device-updowns", event("fixtures/ap-down-up/01-device-updowns.json")),
        ("device-events", "device-events", event("fixtures/ap-down-up/04-device-events.json")),
        ("client-join", "client-join", event("fixtures/client-roam/02-client-join.json")),
        ("client-sessions", "client-sessions", event("fixtures/client-roam/05-client-sessions.json")),
        ("nac", "nac-events", event("fixtures/client-roam/01-nac-events.json")),
        ("sle", "site-sle", event(&format!("{samples}/site-sle.json"))),
        ("minis", "minis-reachability", event(&format!("{samples}/minis-reachability.json"))),
        ("location", "location-client", event(&format!("{samples}/location-client.json"))),
        ("unknown", "brand-new-topic", event(&format!("{samples}/location-client.json"))),
    ];
    let attrs = BTreeMap::new();
    let mut group = c.benchmark_group("translate");
    group.throughput(Throughput::Elements(N as u64));
    for (name, topic, ev) in &families {
        let env = delivery(topic, ev);
        let mut t = Translator::new(&SignalsConfig::default());
        let mut now = 1_717_000_000_000_000_000u64;
        group.bench_function(*name, |b| {
            b.iter(|| {
                now += 1_000_000;
                let input = Input {
                    endpoint: "default",
                    endpoint_attributes: &attrs,
                    received_at_ns: now,
                    envelope: &env,
                };
                black_box(t.translate(black_box(&input)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
