//! Untrusted input (issue 14, items 5 and 9): event times in any unit or none, and topic names
//! of any length or content. A sender's numbers and strings never become absurd times, frozen
//! device state or stored garbage.

mod support;

use mist_otel::app::{self, Config, Running};
use mist_otel::exporter::config::ExporterKind;
use mist_otel::mist::Envelope;
use mist_otel::secret::Secret;
use mist_otel::signals::{Input, SignalsConfig, Translated, Translator};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{client, sign};

/// 2026-11-14T22:13:20Z: receipt time of the translator tests.
const RX: u64 = 1_794_700_000_000_000_000;
const RX_SECS: f64 = 1_794_700_000.0;

fn translate(t: &mut Translator, topic: &str, events: Value, received_at_ns: u64) -> Translated {
    let body = json!({"topic": topic, "events": events}).to_string();
    let env = Envelope::parse(body.as_bytes()).unwrap();
    let attrs = BTreeMap::new();
    t.translate(&Input { endpoint: "default", endpoint_attributes: &attrs, received_at_ns, envelope: &env })
}

fn log_time(timestamp: Value) -> u64 {
    let mut t = Translator::new(&SignalsConfig::default());
    let out = translate(&mut t, "alarms", json!([{"type": "x", "timestamp": timestamp}]), RX);
    out.logs[0].scope_logs[0].log_records[0].time_unix_nano
}

#[test]
fn event_times_in_any_unit_or_out_of_window_never_saturate() {
    let secs = RX_SECS - 30.0;
    let want = RX - 30_000_000_000;
    assert_eq!(log_time(json!(secs)), want, "seconds");
    assert_eq!(log_time(json!(secs * 1e3)), want, "milliseconds");
    assert_eq!(log_time(json!(secs * 1e6)), want, "microseconds");
    assert_eq!(log_time(json!(secs * 1e9)), want, "nanoseconds");
    // 9999-12-31T23:59:59Z, absurd, negative and zero: receipt time.
    for raw in [json!(253402300799u64), json!(1e300), json!(-5), json!(0), json!(1.8e19)] {
        assert_eq!(log_time(raw.clone()), RX, "{raw}");
    }
}

fn device_up(t: &mut Translator) -> f64 {
    let rm = t.collect_metrics(RX + 120_000_000_000);
    let m = rm.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics);
    let up = m.into_iter().find(|m| m.name == "mist.device.up").expect("mist.device.up");
    let Some(metric::Data::Gauge(g)) = &up.data else { panic!("not a gauge") };
    match g.data_points[0].value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        ref v => panic!("{v:?}"),
    }
}

#[test]
fn millisecond_down_then_seconds_up_ends_up() {
    let mut t = Translator::new(&SignalsConfig::default());
    let ap = |kind: &str, ts: f64| json!([{"site_id": "s", "type": kind, "ap": "aa", "timestamp": ts}]);
    translate(&mut t, "device-updowns", ap("AP_DISCONNECTED", RX_SECS * 1e3), RX);
    translate(&mut t, "device-updowns", ap("AP_CONNECTED", RX_SECS + 60.0), RX + 60_000_000_000);
    assert_eq!(device_up(&mut t), 1.0, "the later UP must replace the millisecond DOWN");
}

const SECRET: &str = "s3cr3t-for-untrusted-input";

/// The server in process on ephemeral loopback ports, signals written to a file.
async fn start(data: &std::path::Path) -> Running {
    let loopback: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut c = Config { data_dir: data.to_owned(), ..Config::default() };
    (c.ingest.listen, c.admin.listen, c.ingest.secrets) = (loopback, loopback, vec![Secret::new(SECRET)]);
    (c.export.exporter, c.export.debug_path) = (ExporterKind::Debug, Some(data.join("signals.jsonl")));
    let _ = rustls::crypto::ring::default_provider().install_default();
    app::start(c).await.expect("server starts")
}

async fn post(r: &Running, body: &[u8]) -> reqwest::Response {
    client()
        .post(format!("http://{}/mist/webhook", r.webhook_addr))
        .header("content-type", "application/json")
        .header("x-mist-signature-v2", sign(SECRET, body))
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

fn metric_sum(text: &str, prefix: &str, needle: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn huge_or_control_character_topics_answer_400_and_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let r = start(dir.path()).await;
    let huge = "a".repeat(1 << 20);
    for topic in [huge.as_str(), "bad\u{1}topic", "dévice-events", "a/b"] {
        let body = json!({"topic": topic, "events": [{"timestamp": RX_SECS}]}).to_string();
        let resp = post(&r, body.as_bytes()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{:.80}", topic);
        let v: Value = resp.json().await.unwrap();
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains("topic") && msg.contains("64"), "{msg:.300}");
        assert!(msg.len() < 400, "the error must not echo the whole topic: {} bytes", msg.len());
        assert!(!msg.contains('\u{1}'), "control characters are escaped: {msg}");
    }
    // A millisecond time, counted as corrected.
    let ok = br#"{"topic":"My_Custom.topic-2","events":[{"timestamp":1700000000500}]}"#;
    assert_eq!(post(&r, ok).await.status(), StatusCode::OK, "an unknown well-formed topic is accepted");

    let metrics_url = format!("http://{}/metrics", r.admin_addr);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let m = loop {
        let m = client().get(&metrics_url).send().await.unwrap().text().await.unwrap();
        // The translator's gauges are mirrored once per pipeline pass, so they may lag a pass.
        if metric_sum(&m, "mist_otel_signal_timestamps_corrected ", "") >= 1.0 {
            break m;
        }
        assert!(std::time::Instant::now() < deadline, "the good delivery was not exported:\n{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(metric_sum(&m, "mist_otel_ingest_requests_total{", "outcome=\"accepted\""), 1.0, "{m}");
    assert_eq!(metric_sum(&m, "mist_otel_export_deliveries_total", ""), 1.0, "{m}");
    assert_eq!(metric_sum(&m, "mist_otel_signal_timestamps_corrected ", ""), 1.0, "{m}");
    r.shutdown().await;
    let exported = std::fs::read_to_string(dir.path().join("signals.jsonl")).unwrap_or_default();
    assert!(exported.contains("my-custom.topic-2"), "{exported:.500}");
    assert!(!exported.contains("aaaaaaaa"), "{exported:.500}");
}
