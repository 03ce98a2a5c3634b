//! A fixed amount of ingest work for profilers (deterministic under
//! `valgrind --tool=callgrind`, which counts instructions whatever the machine's load):
//! every webhook sample, `ROUNDS` times, through signature check → envelope → translation →
//! OTLP encoding, each stage separately so `callgrind_annotate` attributes the cost.
//!
//! `cargo build --release --example ingest_profile &&
//!  valgrind --tool=callgrind target/release/examples/ingest_profile [stage] [rounds]`
//! where stage is `all` (default), `verify`, `parse`, `validate`, `translate` or `encode`.

use mist_otel::ingest::signature::{self, sign_v2};
use mist_otel::mist::envelope::Envelope;
use mist_otel::secret::Secret;
use mist_otel::signals::{Input, SignalsConfig, Translator};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;
use std::collections::BTreeMap;
use std::hint::black_box;

#[path = "support/samples.rs"]
mod samples;
use samples::{json_files, samples_dir};

/// The binary's allocator, so instruction counts include what production pays for memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let stage = args.next().unwrap_or_else(|| "all".into());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(200);
    let root = samples_dir().join("webhooks");
    let mut bodies = Vec::new();
    for dir in [root.clone(), root.join("spec-2509.1.2"), root.join("variants")] {
        bodies.extend(json_files(&dir).iter().filter_map(|p| std::fs::read(p).ok()));
    }
    let secrets = vec![Secret::new("profile-secret")];
    let sigs: Vec<String> = bodies.iter().map(|b| sign_v2("profile-secret", b)).collect();
    let attrs = BTreeMap::new();
    let mut translator = Translator::new(&SignalsConfig::default());
    let run = |s: &str| stage == "all" || stage == s;
    for _ in 0..rounds {
        for (body, sig) in bodies.iter().zip(&sigs) {
            if run("verify") {
                black_box(signature::verify(&secrets, false, false, body, Some(sig.as_bytes()), None));
            }
            if run("validate") {
                black_box(Envelope::validate(body).ok());
            }
            if !(run("parse") || run("translate") || run("encode")) {
                continue;
            }
            let Ok(e) = Envelope::parse(body) else { continue };
            if run("translate") || run("encode") {
                let input = Input {
                    endpoint: "default",
                    endpoint_attributes: &attrs,
                    received_at_ns: 1,
                    envelope: &e,
                };
                let t = translator.translate(&input);
                if run("encode") {
                    black_box(ExportLogsServiceRequest { resource_logs: t.logs }.encode_to_vec());
                }
            }
        }
    }
}
