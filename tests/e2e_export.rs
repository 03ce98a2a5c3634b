//! End to end: the real binary receives signed sample webhooks and exports them over OTLP
//! gRPC and OTLP/HTTP to an in-process receiver; the decoded requests carry every event with
//! its own timestamp, and the configured headers.

mod otlp_support;
mod support;

use otlp_support::{Receiver, Transport};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{ServerProcess, client, env, sign, signed_post, webhook_samples};

const SECRET: &str = "e2e-export-secret";

/// Expected event timestamps (ns) of every sample: events with a numeric `timestamp`.
fn sample_timestamps(samples: &[(std::path::PathBuf, Vec<u8>)]) -> Vec<u64> {
    let mut out = Vec::new();
    for (_, body) in samples {
        let Ok(env) = mist_otel::mist::Envelope::parse(body) else { continue };
        if env.topic == "ping" {
            continue;
        }
        for ev in &env.events {
            // Placeholder samples carry `timestamp: 0` or `157.68` (1970); the translator then
            // falls back to another time (docs/signals.md, Timestamps), so only real times are
            // compared.
            let t = ev.get("timestamp").and_then(|t| t.as_f64()).map(mist_otel::signals::secs_to_ns);
            if let Some(t) = t.filter(|t| *t >= mist_otel::signals::time::EARLIEST_NS) {
                out.push(t);
            }
        }
    }
    out
}

async fn post_all(server: &ServerProcess, samples: &[(std::path::PathBuf, Vec<u8>)]) -> usize {
    let c = client();
    let mut accepted = 0;
    for (path, body) in samples {
        let r = c
            .post(server.url())
            .header("content-type", "application/json")
            .header("X-Mist-Signature-v2", sign(SECRET, body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(status == 200 || status == 400, "{}: {status}", path.display());
        if status == 200 {
            accepted += 1;
        }
    }
    accepted
}

/// Posts one signed delivery of `n` numbered `topic` events, asserts it is accepted, and returns
/// the events' timestamps (ns).
async fn post_numbered(server: &ServerProcess, topic: &str, base_secs: u64, n: u64) -> Vec<u64> {
    let body = otlp_support::numbered_body(topic, base_secs, 0, n);
    let r = signed_post(&client(), server.url(), SECRET, body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    (0..n).map(|i| otlp_support::ts_ns(base_secs, i)).collect()
}

fn fast_env(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut e = env(&[
        ("MIST_WEBHOOK_SECRET", SECRET),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
    ]);
    e.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    e
}

fn check_arrival(rx: &Receiver, samples: &[(std::path::PathBuf, Vec<u8>)], transport: Transport) {
    let expected = sample_timestamps(samples);
    assert!(expected.len() >= 15, "samples carry timestamps: {}", expected.len());
    // Samples share timestamps, so compare multisets: each timestamp at least as often as sent.
    let mut want: BTreeMap<u64, usize> = BTreeMap::new();
    for t in &expected {
        *want.entry(*t).or_default() += 1;
    }
    let complete = |r: &otlp_support::Recorded| {
        let mut got: BTreeMap<u64, usize> = BTreeMap::new();
        for rec in r.log_records() {
            *got.entry(rec.time_unix_nano).or_default() += 1;
        }
        want.iter().all(|(t, n)| got.get(t).copied().unwrap_or(0) >= *n)
    };
    let ok = rx.wait_until(Duration::from_secs(30), complete);
    rx.with(|r| {
        assert!(ok, "not every event arrived: {} records", r.log_records().len());
        for (t, headers, _) in &r.logs {
            assert_eq!(*t, transport);
            assert_eq!(headers.get("authorization").map(String::as_str), Some("Bearer t0ken"));
            assert_eq!(headers.get("x-scope-orgid").map(String::as_str), Some("tenant-a"));
        }
        // Observed time is the receipt time: after the event and close to now.
        for rec in r.log_records() {
            assert!(rec.observed_time_unix_nano > 0);
            assert!(rec.event_name.starts_with("mist."), "{}", rec.event_name);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_arrive_over_grpc_with_timestamps_and_headers() {
    let rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let url = rx.grpc_url();
    let server = ServerProcess::start(
        dir.path(),
        &fast_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20t0ken,X-Scope-OrgID=tenant-a"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ]),
        &[],
    );
    let samples = webhook_samples();
    let accepted = post_all(&server, &samples).await;
    assert!(accepted > 40);
    check_arrival(&rx, &samples, Transport::Grpc);
    // The buffer empties once everything (including a metric collection) is acknowledged.
    let c = client();
    let mut depth = String::new();
    for _ in 0..100 {
        let m = c.get(server.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
        depth = m.lines().find(|l| l.starts_with("mist_otel_buffer_deliveries ")).unwrap_or("").to_owned();
        if depth == "mist_otel_buffer_deliveries 0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(depth, "mist_otel_buffer_deliveries 0", "{}", server.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_arrive_over_http_protobuf_and_json() {
    for (protocol, transport) in
        [("http/protobuf", Transport::HttpProtobuf), ("http/json", Transport::HttpJson)]
    {
        let rx = Receiver::start();
        let dir = tempfile::tempdir().unwrap();
        let url = rx.http_url();
        let server = ServerProcess::start(
            dir.path(),
            &fast_env(&[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
                ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer t0ken,x-scope-orgid=tenant-a"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", if protocol == "http/json" { "none" } else { "gzip" }),
            ]),
            &[],
        );
        let samples = webhook_samples();
        post_all(&server, &samples).await;
        check_arrival(&rx, &samples, transport);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_signal_endpoints_split_the_signals() {
    // Logs over HTTP to one receiver, everything else over gRPC to another.
    let logs_rx = Receiver::start();
    let rest_rx = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let logs_url = format!("{}/v1/logs", logs_rx.http_url());
    let rest_url = rest_rx.grpc_url();
    let server = ServerProcess::start(
        dir.path(),
        &fast_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &rest_url),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", &logs_url),
        ]),
        &[],
    );
    let expected = post_numbered(&server, "device-events", 1_750_000_000, 5).await;
    assert!(logs_rx.wait_until(Duration::from_secs(20), |r| otlp_support::has_all(r, &expected)));
    assert!(rest_rx.with(|r| r.logs.is_empty()), "logs went to the per-signal endpoint only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_exporter_writes_otlp_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signals.jsonl");
    let out_s = out.display().to_string();
    let data = dir.path().join("data");
    let server = ServerProcess::start(
        &data,
        &fast_env(&[("MIST_OTEL_EXPORTER", "debug"), ("MIST_OTEL__EXPORT__DEBUG_PATH", &out_s)]),
        &[],
    );
    post_numbered(&server, "alarms", 1_760_000_000, 3).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let logs: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["signal"] == "logs")
            .collect();
        let n: usize = logs
            .iter()
            .map(|v| {
                let req: opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest =
                    serde_json::from_value(v["request"].clone()).expect("OTLP JSON");
                req.resource_logs
                    .iter()
                    .flat_map(|r| &r.scope_logs)
                    .map(|s| s.log_records.len())
                    .sum::<usize>()
            })
            .sum();
        if n >= 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "debug output: {text}\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_mutual_tls_with_a_custom_ca() {
    let pki = otlp_support::TestPki::generate();
    let rx = Receiver::start_tls(&pki);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p.display().to_string()
    };
    let ca = write("ca.pem", &pki.ca);
    let cert = write("client.pem", &pki.client_cert);
    let key = write("client-key.pem", &pki.client_key);
    let url = format!("https://localhost:{}", rx.grpc.port());
    let data = dir.path().join("data");
    let server = ServerProcess::start(
        &data,
        &fast_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &cert),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &key),
        ]),
        &[],
    );
    let expected = post_numbered(&server, "device-events", 1_770_000_000, 4).await;
    let ok = rx.wait_until(Duration::from_secs(20), |r| otlp_support::has_all(r, &expected));
    assert!(ok, "nothing arrived over mTLS:\n{}", server.logs());
}
