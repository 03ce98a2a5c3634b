//! Load note for the durable buffer: deliveries/s and answer latency of the webhook listener
//! with the buffer on disk (fsync group commit) vs in memory, against a bare axum handler
//! answering 200 to the same bodies, all in one run on the same machine.
//!
//! Run: `cargo run --release --example ingest_load -- [seconds-per-phase] [connections] [down]`
//!
//! With `down` the OTLP backend is unreachable, so the pipeline sits in its retry loop and the
//! figures isolate ingest + buffer (the cost of translation and export is then off the CPU).
//!
//! Every phase posts the same signed sample (`device-events.json`) from `connections` keep-alive
//! clients as fast as they get answers; the half-load phase paces requests at half the durable
//! throughput and reports its p99. Export runs too (debug exporter into /dev/null), so the
//! pipeline's reads and removals compete with ingest as in production.

use bytes::Bytes;
use std::path::Path;
use std::time::{Duration, Instant};

const SECRET: &str = "load-secret";

struct Phase {
    name: &'static str,
    n: usize,
    secs: f64,
    lat: Vec<Duration>,
}

impl Phase {
    fn report(&mut self) {
        self.lat.sort();
        let q = |p: f64| {
            self.lat.get(((self.lat.len() as f64 * p) as usize).min(self.lat.len().saturating_sub(1)))
        };
        println!(
            "{:<28} {:>8.0} deliveries/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
            self.name,
            self.n as f64 / self.secs,
            q(0.50).map_or(0.0, |d| d.as_secs_f64() * 1e3),
            q(0.99).map_or(0.0, |d| d.as_secs_f64() * 1e3),
            self.n
        );
    }
}

async fn hammer(
    name: &'static str,
    url: String,
    body: Bytes,
    conns: usize,
    secs: u64,
    rate: Option<f64>,
) -> Phase {
    let client = reqwest::Client::builder().pool_max_idle_per_host(conns).build().unwrap();
    let sig = mist_otel::ingest::signature::sign_v2(SECRET, &body);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut joins = Vec::new();
    for w in 0..conns {
        let (client, url, body, sig) = (client.clone(), url.clone(), body.clone(), sig.clone());
        // Paced mode: each connection sends at rate/conns per second on a fixed schedule.
        let period = rate.map(|r| Duration::from_secs_f64(conns as f64 / r));
        joins.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut next = start + period.map_or(Duration::ZERO, |p| p.mul_f64(w as f64 / conns as f64));
            while Instant::now() < end {
                if let Some(p) = period {
                    tokio::time::sleep_until(next.into()).await;
                    next += p;
                }
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("X-Mist-Signature-v2", &sig)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    Ok(r) => panic!("answer {}", r.status()),
                    Err(e) => panic!("request failed: {e}"),
                }
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for j in joins {
        lat.extend(j.await.unwrap());
    }
    Phase { name, n: lat.len(), secs: start.elapsed().as_secs_f64(), lat }
}

async fn start_server(dir: &Path, durable: bool, down: bool) -> mist_otel::app::Running {
    let exporter = if down { "otlp" } else { "debug" };
    let env: mist_otel::config::Env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9".to_owned()),
        ("MIST_WEBHOOK_SECRET", SECRET.to_owned()),
        ("MIST_OTEL_LISTEN", "127.0.0.1:0".to_owned()),
        ("MIST_OTEL_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ("MIST_OTEL_DATA_DIR", dir.display().to_string()),
        ("MIST_OTEL_EXPORTER", exporter.to_owned()),
        ("MIST_OTEL__EXPORT__DEBUG_PATH", "/dev/null".to_owned()),
        ("MIST_OTEL__BUFFER__DURABLE", durable.to_string()),
        ("MIST_OTEL__BUFFER__MAX_BYTES", (1u64 << 30).to_string()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let cfg = mist_otel::app::Config::load(None, &env).expect("config");
    mist_otel::app::start(cfg).await.expect("start")
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let conns: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let down = args.get(3).is_some_and(|s| s == "down");
    let sample =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/mist-samples/webhooks/device-events.json");
    let body = Bytes::from(std::fs::read(&sample).expect("sample body"));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        println!(
            "{} s per phase, {conns} connections, body {} bytes, export {}",
            secs,
            body.len(),
            if down { "backend down (ingest + buffer only)" } else { "debug exporter to /dev/null" }
        );
        // Bare axum: the ceiling.
        let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bare_url = format!("http://{}/mist/webhook", bare.local_addr().unwrap());
        let app = axum::Router::new().route("/mist/webhook", axum::routing::post(|_b: Bytes| async { "ok" }));
        tokio::spawn(async move { axum::serve(bare, app).await.unwrap() });
        let mut base = hammer("bare axum 200", bare_url, body.clone(), conns, secs, None).await;
        base.report();

        for durable in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let running = start_server(dir.path(), durable, down).await;
            let url = format!("http://{}/mist/webhook", running.webhook_addr);
            let name = if durable { "mist-otel durable buffer" } else { "mist-otel in-memory buffer" };
            let mut p = hammer(name, url.clone(), body.clone(), conns, secs, None).await;
            p.report();
            println!(
                "{:<28} {:>8.0} % of bare axum",
                "",
                100.0 * p.n as f64 / p.secs / (base.n as f64 / base.secs)
            );
            if durable {
                let durable_rate = p.n as f64 / p.secs;
                let mut half =
                    hammer("durable at half load", url, body.clone(), conns, secs, Some(durable_rate / 2.0))
                        .await;
                half.report();
            }
            running.shutdown().await;
        }
    });
}
