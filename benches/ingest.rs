//! Micro-benchmarks of the ingest path, on real Mist webhook bodies:
//! signature verification (one and two secrets), envelope parsing, translation, and OTLP
//! protobuf encoding of a translated delivery, and appending to the durable buffer.
//!
//! `cargo bench --bench ingest` (figures in BENCHMARKS.md). The bodies come from
//! `../shared/mist-samples/webhooks` (or `MIST_SAMPLES_DIR`); `fixtures/webhooks` is used too
//! when present.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mist_otel::buffer::Buffer;
use mist_otel::buffer::config::BufferConfig;
use mist_otel::buffer::config::Fsync;
use mist_otel::ingest::signature::{self, sign_v2};
use mist_otel::mist::envelope::Envelope;
use mist_otel::secret::Secret;
use mist_otel::signals::{Input, SignalsConfig, Translator};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prometheus_client::registry::Registry;
use prost::Message;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

#[path = "../examples/support/samples.rs"]
mod samples;
use samples::{json_files, samples_dir};

/// (name, body) of every sample that parses, plus the whole set concatenated logically.
fn bodies() -> Vec<(String, Vec<u8>)> {
    let root = samples_dir().join("webhooks");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/webhooks");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("variants"), fixtures] {
        for p in json_files(&dir) {
            let body = std::fs::read(&p).expect("readable sample");
            if Envelope::parse(&body).is_ok() {
                let name = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                out.push((name, body));
            }
        }
    }
    assert!(!out.is_empty(), "no webhook samples under {}", root.display());
    out
}

/// A few representative topics benchmarked one by one (the rest only in the "all" rows).
const TOPICS: &[&str] = &["alarms", "device-events", "client-sessions", "nac-events", "audits"];

fn bench(c: &mut Criterion) {
    let all = bodies();
    let total_bytes: usize = all.iter().map(|(_, b)| b.len()).sum();
    let picked: Vec<&(String, Vec<u8>)> = all.iter().filter(|(n, _)| TOPICS.contains(&n.as_str())).collect();

    // Signature: the MAC over the whole body dominates; with two secrets (rotation) every
    // secret is checked so the time taken does not reveal which matched.
    let mut g = c.benchmark_group("verify_v2");
    g.throughput(Throughput::Bytes(total_bytes as u64));
    for n_secrets in [1usize, 2] {
        let secrets: Vec<Secret> = (0..n_secrets).map(|i| Secret::new(format!("secret-{i}"))).collect();
        let sigs: Vec<String> =
            all.iter().map(|(_, b)| sign_v2(&format!("secret-{}", n_secrets - 1), b)).collect();
        g.bench_with_input(BenchmarkId::new("all_samples", n_secrets), &n_secrets, |bch, _| {
            bch.iter(|| {
                for ((_, body), sig) in all.iter().zip(&sigs) {
                    let v = signature::verify(&secrets, false, false, body, Some(sig.as_bytes()), None);
                    black_box(v);
                }
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("envelope_parse");
    g.throughput(Throughput::Bytes(total_bytes as u64));
    g.bench_function("all_samples", |bch| {
        bch.iter(|| {
            for (_, body) in &all {
                black_box(Envelope::parse(black_box(body)).ok());
            }
        })
    });
    for (name, body) in &picked {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("topic", name), body, |bch, body| {
            bch.iter(|| black_box(Envelope::parse(black_box(body)).ok()))
        });
    }
    g.finish();

    // What the handler runs instead of the full parse (same verdict, no events built).
    let mut g = c.benchmark_group("envelope_validate");
    g.throughput(Throughput::Bytes(total_bytes as u64));
    g.bench_function("all_samples", |bch| {
        bch.iter(|| {
            for (_, body) in &all {
                black_box(Envelope::validate(black_box(body)).ok());
            }
        })
    });
    g.finish();

    let envelopes: Vec<(String, Envelope)> =
        all.iter().map(|(n, b)| (n.clone(), Envelope::parse(b).expect("parsed above"))).collect();
    let attrs = BTreeMap::new();
    let mut translator = Translator::new(&SignalsConfig::default());

    let mut g = c.benchmark_group("translate");
    g.bench_function("all_samples", |bch| {
        bch.iter(|| {
            for (_, e) in &envelopes {
                black_box(translator.translate(&input(&attrs, e)));
            }
        })
    });
    for (name, e) in envelopes.iter().filter(|(n, _)| TOPICS.contains(&n.as_str())) {
        g.bench_with_input(BenchmarkId::new("topic", name), e, |bch, e| {
            bch.iter(|| black_box(translator.translate(&input(&attrs, e))))
        });
    }
    g.finish();

    // OTLP encoding of what one delivery becomes (the bytes the exporter sends).
    let requests: Vec<ExportLogsServiceRequest> = envelopes
        .iter()
        .map(|(_, e)| ExportLogsServiceRequest {
            resource_logs: translator.translate(&input(&attrs, e)).logs,
        })
        .collect();
    let encoded: usize = requests.iter().map(|r| r.encoded_len()).sum();
    let mut g = c.benchmark_group("otlp_encode_logs");
    g.throughput(Throughput::Bytes(encoded as u64));
    g.bench_function("all_samples", |bch| {
        bch.iter(|| {
            for r in &requests {
                black_box(r.encode_to_vec());
            }
        })
    });
    g.finish();

    // The whole in-process ingest cost of one delivery, minus HTTP: verify → parse → translate
    // → encode.
    let secrets = vec![Secret::new("secret-0")];
    let sigs: Vec<String> = all.iter().map(|(_, b)| sign_v2("secret-0", b)).collect();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(total_bytes as u64));
    g.bench_function("verify_parse_translate_encode_all_samples", |bch| {
        bch.iter(|| {
            for ((_, body), sig) in all.iter().zip(&sigs) {
                let v = signature::verify(&secrets, false, false, body, Some(sig.as_bytes()), None);
                black_box(v);
                let e = Envelope::parse(body).expect("valid sample");
                let t = translator.translate(&input(&attrs, &e));
                black_box(ExportLogsServiceRequest { resource_logs: t.logs }.encode_to_vec());
            }
        })
    });
    g.finish();
}

/// Appending every sample to the durable buffer, as the handler does before its 200, then
/// acknowledging them (so the log does not grow across iterations). `interval` is one `write`
/// per append; `always` adds an `fdatasync` per append here (no concurrent requests to share it).
fn bench_buffer(c: &mut Criterion) {
    let all = bodies();
    let total_bytes: usize = all.iter().map(|(_, b)| b.len()).sum();
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let mut g = c.benchmark_group("buffer_append");
    g.throughput(Throughput::Bytes(total_bytes as u64));
    for fsync in [Fsync::Interval, Fsync::Always] {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = BufferConfig { fsync, ..BufferConfig::default() };
        let buffer = Buffer::open(&cfg, dir.path(), &mut Registry::default()).expect("buffer");
        let bodies: Vec<Bytes> = all.iter().map(|(_, b)| Bytes::copy_from_slice(b)).collect();
        g.bench_function(BenchmarkId::new("all_samples", format!("{fsync:?}").to_lowercase()), |bch| {
            bch.iter(|| {
                rt.block_on(async {
                    let mut last = 0;
                    for body in &bodies {
                        last = buffer.append("default", 1, body.clone()).await.expect("append");
                    }
                    buffer.remove_through(last).await;
                })
            })
        });
    }
    g.finish();
}

fn input<'a>(attrs: &'a BTreeMap<String, String>, envelope: &'a Envelope) -> Input<'a> {
    Input {
        endpoint: "default",
        endpoint_attributes: attrs,
        received_at_ns: 1_700_000_000_000_000_000,
        envelope,
    }
}

criterion_group! {
    name = benches;
    // Short runs: the machine is shared; the figures are compared across commits, not absolute.
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench, bench_buffer
}
criterion_main!(benches);
