//! Translation edge cases: times, lenient fields, severities, determinism, metrics wiring,
//! and no panic on arbitrary event content.

use super::*;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use proptest::prelude::*;
use serde_json::json;

/// Receipt time: after every event time used here (a time more than a day after receipt is
/// replaced by receipt, see `time.rs`).
const RX: u64 = 1_717_050_000_000_000_000;

fn run(t: &mut Translator, topic: &str, events: Value) -> Translated {
    let body = json!({"topic": topic, "events": events}).to_string();
    let env = Envelope::parse(body.as_bytes()).unwrap();
    let attrs = BTreeMap::new();
    t.translate(&Input {
        endpoint: "default",
        endpoint_attributes: &attrs,
        received_at_ns: RX,
        envelope: &env,
    })
}

fn one(topic: &str, ev: Value) -> LogRecord {
    let out = run(&mut Translator::new(&SignalsConfig::default()), topic, json!([ev]));
    out.logs[0].scope_logs[0].log_records[0].clone()
}

fn attr<'a>(r: &'a LogRecord, key: &str) -> Option<&'a any_value::Value> {
    r.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

#[test]
fn timestamps_keep_microseconds() {
    assert_eq!(secs_to_ns(1691512031.358188), 1_691_512_031_358_188_000);
    assert_eq!(secs_to_ns(1763546876.209649), 1_763_546_876_209_649_000);
    assert_eq!(secs_to_ns(1547235620.89), 1_547_235_620_890_000_000);
    assert_eq!(secs_to_ns(-1.0), 0);
    assert_eq!(secs_to_ns(f64::NAN), 0);
    let r = one("nac-events", json!({"timestamp": 1691512031.358188, "type": "NAC_CLIENT_PERMIT"}));
    assert_eq!(r.time_unix_nano, 1_691_512_031_358_188_000);
    assert_eq!(r.observed_time_unix_nano, RX);
    assert_eq!(r.event_name, "mist.nac-events");
}

#[test]
fn time_falls_back_to_topic_field_then_receipt() {
    let r = one("client-sessions", json!({"disconnect_float": 1717001800.750001, "timestamp": 0}));
    assert_eq!(r.time_unix_nano, 1_717_001_800_750_001_000);
    let r = one("guest-authorizations", json!({"authorized_time": 1677076519}));
    assert_eq!(r.time_unix_nano, 1_677_076_519_000_000_000);
    let r = one("alarms", json!({"timestamp": "garbage"}));
    assert_eq!(r.time_unix_nano, RX);
}

#[test]
fn random_mac_is_a_boolean_either_way() {
    for v in [json!(true), json!("true")] {
        let r = one("nac-events", json!({"random_mac": v, "type": "NAC_CLIENT_PERMIT"}));
        assert_eq!(attr(&r, "mist.event.random_mac"), Some(&any_value::Value::BoolValue(true)));
    }
}

#[test]
fn json_encoded_before_after_become_kvlists() {
    let r = one("audits", json!({"before": "{\"a\": 1}", "after": {"a": 2}, "message": "m"}));
    for k in ["mist.event.before", "mist.event.after"] {
        assert!(matches!(attr(&r, k), Some(any_value::Value::KvlistValue(_))), "{k}: {:?}", attr(&r, k));
    }
    assert_eq!(attr(&r, "mist.event.message"), Some(&any_value::Value::StringValue("m".into())));
}

#[test]
fn fields_keep_their_types_and_resource_fields_move() {
    let r = one("brand-new", json!({"n": 3, "f": 1.5, "o": {"x": [1]}, "org_id": "o", "message": "hello"}));
    assert_eq!(attr(&r, "mist.event.n"), Some(&any_value::Value::IntValue(3)));
    assert_eq!(attr(&r, "mist.event.f"), Some(&any_value::Value::DoubleValue(1.5)));
    assert!(matches!(attr(&r, "mist.event.o"), Some(any_value::Value::KvlistValue(_))));
    assert!(attr(&r, "mist.event.org_id").is_none());
    assert_eq!(r.body, Some(AnyValue { value: Some(any_value::Value::StringValue("hello".into())) }));
}

#[test]
fn severities() {
    let sev = |topic: &str, ev: Value| one(topic, ev).severity_text;
    assert_eq!(sev("alarms", json!({"type": "rogue_ap"})), "ERROR");
    assert_eq!(sev("alarms", json!({"type": "device_restarted"})), "INFO");
    assert_eq!(sev("alarms", json!({"type": "x", "severity": "warn"})), "WARN");
    assert_eq!(sev("device-updowns", json!({"type": "AP_DISCONNECTED", "ap": "m"})), "WARN");
    assert_eq!(sev("device-updowns", json!({"type": "AP_CONNECTED", "ap": "m"})), "INFO");
    assert_eq!(sev("device-events", json!({"type": "SW_PORT_DOWN", "ev_type": "notice"})), "WARN");
    assert_eq!(sev("device-events", json!({"type": "AP_CONFIGURED", "ev_type": "critical"})), "ERROR");
    assert_eq!(sev("nac-events", json!({"type": "NAC_CLIENT_DENY", "mac": "m"})), "WARN");
    assert_eq!(sev("client-sessions", json!({"termination_reason": 15})), "WARN");
    assert_eq!(sev("client-sessions", json!({"termination_reason": 15, "next_ap": "x"})), "INFO");
}

#[test]
fn malformed_known_topic_event_still_gives_a_record() {
    let r = one("client-join", json!({"mac": {"nested": true}, "connect_float": "soon", "rssi": [1]}));
    assert_eq!(r.event_name, "mist.client-join");
    // The MAC could not be read, so there is no trace, but the field is kept as sent.
    assert!(r.trace_id.is_empty());
    assert!(matches!(attr(&r, "mist.event.mac"), None | Some(any_value::Value::KvlistValue(_))));
}

#[test]
fn extreme_times_do_not_overflow() {
    let mut t = Translator::new(&SignalsConfig::default());
    let evs = json!([{"mac": "m", "connect_float": 1e300, "disconnect_float": 1e300, "timestamp": 1e300}]);
    run(&mut t, "client-sessions", evs);
    run(&mut t, "client-info", json!([{"mac": "m", "timestamp": 1e300}]));
    run(&mut t, "nac-accounting", json!([{"mac": "m", "type": "NAC_ACCOUNTING_STOP", "timestamp": 1e300}]));
    run(&mut t, "nac-events", json!([{"mac": "m", "type": "NAC_CLIENT_PERMIT", "timestamp": 1e-300}]));
}

#[test]
fn translator_is_send() {
    fn send<T: Send>() {}
    send::<Translator>();
}

#[test]
fn translation_is_deterministic() {
    let evs =
        json!([{"org_id": "o", "site_id": "s", "mac": "m1", "connect_float": 1717000000.25, "ssid": "x"}]);
    let a = run(&mut Translator::new(&SignalsConfig::default()), "client-join", evs.clone());
    let b = run(&mut Translator::new(&SignalsConfig::default()), "client-join", evs);
    assert_eq!(a, b);
    assert_eq!(a.spans[0].scope_spans[0].spans[0].trace_id, a.logs[0].scope_logs[0].log_records[0].trace_id);
}

#[test]
fn gauges_carry_event_time_and_per_client_is_opt_in() {
    let mut t = Translator::new(&SignalsConfig::default());
    run(
        &mut t,
        "device-updowns",
        json!([{"site_id": "s", "type": "AP_DISCONNECTED", "ap": "aa", "timestamp": 1717020000.5}]),
    );
    run(&mut t, "client-join", json!([{"site_id": "s", "mac": "c1", "ssid": "x", "band": "5"}]));
    let rm = t.collect_metrics(RX + 1);
    let metrics: Vec<_> = rm.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics).collect();
    let up = metrics.iter().find(|m| m.name == "mist.device.up").unwrap();
    let Some(metric::Data::Gauge(g)) = &up.data else { panic!() };
    assert_eq!(g.data_points[0].time_unix_nano, 1_717_020_000_500_000_000);
    assert_eq!(g.data_points[0].value, Some(number_data_point::Value::AsDouble(0.0)));
    let joins = metrics.iter().find(|m| m.name == "mist.client.joins").unwrap();
    let Some(metric::Data::Sum(s)) = &joins.data else { panic!() };
    assert!(s.data_points[0].attributes.iter().all(|kv| kv.key != attrs::CLIENT_MAC));

    let cfg = SignalsConfig { per_client_metrics: true, ..Default::default() };
    let mut t = Translator::new(&cfg);
    run(&mut t, "client-join", json!([{"site_id": "s", "mac": "C1", "ssid": "x"}]));
    let rm = t.collect_metrics(RX + 1);
    let m = &rm[0].scope_metrics[0].metrics;
    let joins = m.iter().find(|m| m.name == "mist.client.joins").unwrap();
    let Some(metric::Data::Sum(s)) = &joins.data else { panic!() };
    assert!(s.data_points[0].attributes.iter().any(|kv| kv.key == attrs::CLIENT_MAC));
    assert_eq!(t.stats().metric_series, 1, "one join series (no RSSI sent)");
}

#[test]
fn metric_resources_carry_endpoint_attributes_but_not_site_name() {
    let mut t = Translator::new(&SignalsConfig::default());
    let body = json!({"topic": "alarms", "events": [{"org_id": "o", "site_id": "s", "site_name": "HQ", "type": "rogue_ap"}]});
    let env = Envelope::parse(body.to_string().as_bytes()).unwrap();
    let attrs: BTreeMap<String, String> = [("tenant".to_string(), "a".to_string())].into();
    let out = t.translate(&Input {
        endpoint: "east",
        endpoint_attributes: &attrs,
        received_at_ns: RX,
        envelope: &env,
    });
    let keys = |r: &Resource| r.attributes.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>();
    let log_res = keys(out.logs[0].resource.as_ref().unwrap());
    assert!(log_res.contains(&"mist.site.name".to_string()) && log_res.contains(&"tenant".to_string()));
    let rm = t.collect_metrics(RX);
    let met_res = keys(rm[0].resource.as_ref().unwrap());
    assert!(!met_res.contains(&"mist.site.name".to_string()));
    assert!(
        met_res.contains(&"tenant".to_string()) && met_res.contains(&"mist.webhook.endpoint".to_string())
    );
}

#[test]
fn resources_follow_endpoint_attributes_and_site_names() {
    let mut t = Translator::new(&SignalsConfig::default());
    let translate = |t: &mut Translator, site_name: &str, tenant: &str| {
        let body =
            json!({"topic": "alarms", "events": [{"org_id": "o", "site_id": "s", "site_name": site_name}]});
        let env = Envelope::parse(body.to_string().as_bytes()).unwrap();
        let attrs: BTreeMap<String, String> = [("tenant".to_string(), tenant.to_string())].into();
        let input =
            Input { endpoint: "east", endpoint_attributes: &attrs, received_at_ns: RX, envelope: &env };
        let out = t.translate(&input);
        let res = out.logs[0].resource.clone().unwrap();
        let get = |k: &str| res.attributes.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.clone());
        let s = |v: &str| Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) });
        assert_eq!(get("tenant"), s(tenant), "tenant after {site_name}/{tenant}");
        assert_eq!(get("mist.site.name"), s(site_name), "site name after {site_name}/{tenant}");
    };
    // The same origin twice (built, then reused), another site name, then the endpoint's
    // attributes change under the same origin: each answer must be the current one.
    translate(&mut t, "HQ", "a");
    translate(&mut t, "HQ", "a");
    translate(&mut t, "Annex", "a");
    translate(&mut t, "HQ", "b");
}

#[test]
fn location_bodies_name_rssi_zones_and_sdk_clients() {
    let body = |r: &LogRecord| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        other => panic!("body {other:?}"),
    };
    let r = one("rssizone", json!({"mac": "aa", "trigger": "enter", "rssizone_id": "rz-1"}));
    assert_eq!(body(&r), "rssizone: aa enter zone rz-1");
    let r = one("sdkclient-scan-data", json!({"client_id": "c-9", "rssi": -61}));
    assert_eq!(body(&r), "sdkclient-scan-data: c-9 heard at -61 dBm");
    // Fields the typed event does not name still reach the record.
    let r = one("zone", json!({"mac": "aa", "trigger": "exit", "zone_id": "z", "new_field": [1]}));
    assert!(matches!(attr(&r, "mist.event.new_field"), Some(any_value::Value::ArrayValue(_))));
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        "[a-z0-9:{}\"]{0,12}".prop_map(Value::from),
        Just(json!("true")),
        Just(json!("{\"a\": [1, {\"b\": null}]}")),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "mac",
    "timestamp",
    "connect_float",
    "disconnect_float",
    "connect",
    "type",
    "ssid",
    "band",
    "rssi",
    "sle",
    "alert_events",
    "before",
    "after",
    "random_mac",
    "termination_reason",
    "next_ap",
    "duration",
    "org_id",
    "site_id",
    "site_name",
    "ap",
    "count",
    "severity",
    "rx_pkts",
    "loss_percentage",
    "success",
    "client_type",
];

fn arb_event() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS), arb_value()), 0..10)
        .prop_map(|kvs| Value::Object(kvs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Untrusted content never panics, and every event still becomes one record.
    #[test]
    fn arbitrary_events_never_panic(topic in prop::sample::select(TOPICS), evs in prop::collection::vec(arb_event(), 1..4)) {
        let mut t = Translator::new(&SignalsConfig::default());
        let n = evs.len();
        let out = run(&mut t, topic, Value::Array(evs));
        let records: usize = out.logs.iter().map(|r| r.scope_logs[0].log_records.len()).sum();
        prop_assert_eq!(records, n);
        t.collect_metrics(RX);
    }
}
