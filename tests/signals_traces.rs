//! The trace model on the authored roam scenario: one association = one trace, whatever the
//! delivery order; bounded correlation state.

use mist_otel::mist::Envelope;
use mist_otel::signals::traces::{Assoc, Correlator, association_trace_id, span_id};
use mist_otel::signals::{Input, SignalsConfig, Translated, Translator};
use opentelemetry_proto::tonic::trace::v1::Span;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ORG: &str = "6f1c8a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
const SITE: &str = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d";
const CLIENT: &str = "a4c3f0e1d2b7";
/// connect_float of the first association in fixtures/client-roam.
const FIRST_CONNECT_US: i64 = 1_717_000_000_250_123;
const T0: u64 = 1_717_000_000_000_000_000;

fn scenario(name: &str) -> Vec<Envelope> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| Envelope::parse(&std::fs::read(f).unwrap()).unwrap()).collect()
}

fn translate(t: &mut Translator, env: &Envelope, received_at_ns: u64) -> Translated {
    let attrs = BTreeMap::new();
    t.translate(&Input { endpoint: "default", endpoint_attributes: &attrs, received_at_ns, envelope: env })
}

fn spans(out: &Translated) -> impl Iterator<Item = &Span> {
    out.spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans)
}

/// (name, trace id, span id, parent span id).
type SpanIds = (String, Vec<u8>, Vec<u8>, Vec<u8>);

/// Every span of the deliveries in this order, links ignored.
fn span_ids(order: &[usize], envs: &[Envelope]) -> BTreeSet<SpanIds> {
    let mut t = Translator::new(&SignalsConfig::default());
    let mut out = BTreeSet::new();
    for (i, idx) in order.iter().enumerate() {
        let tr = translate(&mut t, &envs[*idx], T0 + i as u64 * 1_000_000_000);
        for s in spans(&tr) {
            out.insert((s.name.clone(), s.trace_id.clone(), s.span_id.clone(), s.parent_span_id.clone()));
        }
    }
    out
}

#[test]
fn first_association_is_one_trace_with_auth_join_and_session() {
    let envs = scenario("client-roam");
    let all = span_ids(&(0..envs.len()).collect::<Vec<_>>(), &envs);
    let trace = association_trace_id(ORG, SITE, CLIENT, FIRST_CONNECT_US).to_vec();
    let session = span_id(&association_trace_id(ORG, SITE, CLIENT, FIRST_CONNECT_US), "session", 0).to_vec();
    let first: Vec<_> = all.iter().filter(|s| s.1 == trace).collect();
    let names: BTreeSet<&str> = first.iter().map(|s| s.0.as_str()).collect();
    for want in ["mist.nac.auth", "mist.client.join", "mist.client.session", "mist.client.info"] {
        assert!(names.contains(want), "{want} missing from the first association's trace: {names:?}");
    }
    for (name, _, id, parent) in &first {
        if name == "mist.client.session" {
            assert_eq!(id, &session);
            assert!(parent.is_empty(), "the session span is the root");
        } else {
            assert_eq!(parent, &session, "{name} hangs under the session span");
        }
    }
    // The roam starts a second association: its own trace, linked to the first.
    let traces: BTreeSet<&Vec<u8>> = all.iter().map(|s| &s.1).collect();
    assert_eq!(traces.len(), 2, "two associations, two traces");
}

#[test]
fn roam_links_to_the_previous_association() {
    let envs = scenario("client-roam");
    let mut t = Translator::new(&SignalsConfig::default());
    let first = association_trace_id(ORG, SITE, CLIENT, FIRST_CONNECT_US);
    let mut linked = false;
    for (i, e) in envs.iter().enumerate() {
        for s in spans(&translate(&mut t, e, T0 + i as u64 * 1_000_000_000)) {
            if s.name == "mist.client.session" && s.trace_id != first.to_vec() {
                assert_eq!(s.links.len(), 1);
                assert_eq!(s.links[0].trace_id, first.to_vec());
                assert_eq!(s.links[0].span_id, span_id(&first, "session", 0).to_vec());
                linked = true;
            }
        }
    }
    assert!(linked, "the second session carries a link");
}

/// A small deterministic permutation generator (no randomness in tests).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    for i in (1..n).rev() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let j = (x >> 33) as usize % (i + 1);
        v.swap(i, j);
    }
    v
}

#[test]
fn shuffled_delivery_order_gives_the_same_traces() {
    let envs = scenario("client-roam");
    let in_order = span_ids(&(0..envs.len()).collect::<Vec<_>>(), &envs);
    assert!(in_order.len() >= 8, "{in_order:?}");
    let mut orders: Vec<Vec<usize>> = (0..60).map(|s| shuffled(envs.len(), s)).collect();
    orders.push((0..envs.len()).rev().collect());
    for order in orders {
        assert_eq!(span_ids(&order, &envs), in_order, "order {order:?}");
    }
}

#[test]
fn redelivery_gives_the_same_ids() {
    let envs = scenario("client-roam");
    let mut a = Translator::new(&SignalsConfig::default());
    let mut b = Translator::new(&SignalsConfig::default());
    let first = translate(&mut a, &envs[1], T0);
    // Same webhook again, later, to the same and to another (fresh) translator: a replica or
    // a restarted process.
    let again = translate(&mut a, &envs[1], T0 + 5_000_000_000);
    let elsewhere = translate(&mut b, &envs[1], T0 + 9_000_000_000);
    let ids = |t: &Translated| spans(t).map(|s| (s.trace_id.clone(), s.span_id.clone())).collect::<Vec<_>>();
    assert_eq!(ids(&first), ids(&again));
    assert_eq!(ids(&first), ids(&elsewhere));
    let log_ids = |t: &Translated| t.logs[0].scope_logs[0].log_records[0].trace_id.clone();
    assert_eq!(log_ids(&first), log_ids(&elsewhere));
    assert!(!log_ids(&first).is_empty(), "the join's log carries its trace id");
}

#[test]
fn auth_without_join_becomes_its_own_trace_after_the_window() {
    let envs = scenario("client-roam");
    let mut t = Translator::new(&SignalsConfig::default());
    let out = translate(&mut t, &envs[0], T0);
    assert_eq!(spans(&out).count(), 0, "a wireless permit waits for its join");
    assert_eq!(t.stats().correlation_entries, 1);
    // Something else arrives well after the window (default 60 s, parts wait twice that).
    let later = translate(&mut t, &scenario("ap-down-up")[0], T0 + 200_000_000_000);
    let auth: Vec<_> = spans(&later).filter(|s| s.name == "mist.nac.auth").collect();
    assert_eq!(auth.len(), 1, "the parked auth is emitted on its own");
    assert!(auth[0].parent_span_id.is_empty());
}

#[test]
fn a_span_released_by_another_endpoint_keeps_its_own_endpoint_resource() {
    let translate_on = |t: &mut Translator, endpoint: &str, env: &Envelope, at: u64| {
        let attrs: BTreeMap<String, String> = [("tenant".to_string(), format!("tenant-{endpoint}"))].into();
        t.translate(&Input { endpoint, endpoint_attributes: &attrs, received_at_ns: at, envelope: env })
    };
    let attr = |r: &Option<opentelemetry_proto::tonic::resource::v1::Resource>, key: &str| {
        r.as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == key))
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| match &v.value {
                Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => {
                    Some(s.clone())
                }
                _ => None,
            })
    };
    // Every resource must carry the tenant of the endpoint it names.
    let consistent = |out: &Translated| {
        let resources = out.logs.iter().map(|r| &r.resource).chain(out.spans.iter().map(|r| &r.resource));
        for r in resources {
            let endpoint = attr(r, "mist.webhook.endpoint").expect("endpoint attribute");
            assert_eq!(attr(r, "tenant"), Some(format!("tenant-{endpoint}")), "{r:?}");
        }
    };
    let mut t = Translator::new(&SignalsConfig::default());
    // Endpoint `a` parks a permit; endpoint `b`'s delivery, after the window, releases it.
    let first = translate_on(&mut t, "a", &scenario("client-roam")[0], T0);
    consistent(&first);
    let later = translate_on(&mut t, "b", &scenario("ap-down-up")[0], T0 + 200_000_000_000);
    consistent(&later);
    let auth = later
        .spans
        .iter()
        .find(|r| r.scope_spans.iter().any(|s| s.spans.iter().any(|s| s.name == "mist.nac.auth")));
    assert_eq!(attr(&auth.expect("the released permit").resource, "tenant").as_deref(), Some("tenant-a"));
    // And `a`'s next delivery (same origin: a cached resource) still carries `a`'s tenant.
    consistent(&translate_on(&mut t, "a", &scenario("client-roam")[0], T0 + 201_000_000_000));
}

#[test]
fn parked_auth_is_released_at_shutdown_with_the_same_trace_as_after_the_window() {
    let envs = scenario("client-roam");
    let mut t = Translator::new(&SignalsConfig::default());
    assert_eq!(spans(&translate(&mut t, &envs[0], T0)).count(), 0);
    let released = t.release_parked();
    let auth: Vec<&Span> =
        released.iter().flat_map(|rs| rs.scope_spans.iter().flat_map(|s| &s.spans)).collect();
    assert_eq!(auth.len(), 1, "the parked permit comes out at shutdown");
    assert_eq!(auth[0].name, "mist.nac.auth");
    assert_eq!(t.stats().correlation_parked, 0);
    assert!(t.release_parked().is_empty(), "released once");
    // The same trace id as when the window runs out in a process that keeps running.
    let mut t2 = Translator::new(&SignalsConfig::default());
    translate(&mut t2, &envs[0], T0);
    let later = translate(&mut t2, &scenario("ap-down-up")[0], T0 + 200_000_000_000);
    let expired: Vec<&Span> = spans(&later).filter(|s| s.name == "mist.nac.auth").collect();
    assert_eq!(expired[0].trace_id, auth[0].trace_id);
    assert_eq!(expired[0].span_id, auth[0].span_id);
    let res = released[0].resource.as_ref().unwrap();
    assert!(res.attributes.iter().any(|kv| kv.key == "mist.webhook.endpoint"), "{res:?}");
}

#[test]
fn correlation_state_stays_under_its_cap_with_a_million_clients() {
    const CAP: usize = 10_000;
    let mut c = Correlator::new(CAP, u64::MAX, 60_000_000);
    let mut evicted = Vec::new();
    for i in 0..1_000_000u64 {
        let mac = format!("{i:012x}");
        let key = Correlator::client_key(ORG, SITE, &mac);
        let connect_us = 1_717_000_000_000_000 + i as i64;
        let trace = association_trace_id(ORG, SITE, &mac, connect_us);
        c.associate(key, Assoc { connect_us, disconnect_us: None, roamed: false, trace }, i, &mut evicted);
        assert!(c.len() <= CAP);
    }
    assert_eq!(c.len(), CAP);
    assert_eq!(c.evictions(), 1_000_000 - CAP as u64);
}

fn batch(topic: &str, from: u64, n: u64, f: impl Fn(u64) -> serde_json::Value) -> Envelope {
    let events: Vec<_> = (from..from + n).map(f).collect();
    let body = serde_json::json!({"topic": topic, "events": events}).to_string();
    Envelope::parse(body.as_bytes()).unwrap()
}

#[test]
fn translator_correlation_is_bounded_and_reported() {
    let cfg = SignalsConfig { correlation_capacity: 500, ..Default::default() };
    let mut t = Translator::new(&cfg);
    for b in 0..20u64 {
        let env = batch("client-join", b * 500, 500, |n| {
            serde_json::json!({"org_id": ORG, "site_id": SITE, "mac": format!("{n:012x}"),
                "connect_float": 1_717_000_000.0 + n as f64})
        });
        translate(&mut t, &env, T0 + b);
        assert!(t.stats().correlation_entries <= 500);
    }
    assert_eq!(t.stats().correlation_entries, 500);
    assert_eq!(t.stats().correlation_evictions, 10_000 - 500);

    // Permits of clients whose join never comes: parked up to a bound, the rest given up
    // at once as their own traces; none is lost.
    let mut emitted = 0;
    for b in 0..10u64 {
        let env = batch("nac-events", 100_000 + b * 1000, 1000, |n| {
            serde_json::json!({"org_id": ORG, "site_id": SITE, "type": "NAC_CLIENT_PERMIT",
                "mac": format!("{n:012x}"), "client_type": "wireless", "timestamp": 1_717_000_000.0 + n as f64})
        });
        emitted +=
            spans(&translate(&mut t, &env, T0 + 100 + b)).filter(|s| s.name == "mist.nac.auth").count();
        let s = t.stats();
        assert!(s.correlation_entries <= 500 && s.correlation_parked <= 500, "{s:?}");
    }
    assert_eq!(emitted as u64 + t.stats().correlation_parked, 10_000, "every auth is parked or emitted");
}
