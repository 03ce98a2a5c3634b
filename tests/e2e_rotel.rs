//! End to end against a real collector: rotel (a Rust OpenTelemetry collector, installed from
//! its PyPI wheel by `scripts/deps/rotel.sh`) listens on loopback and prints what it receives;
//! the real binary sends it the signed sample webhooks over OTLP/gRPC and OTLP/HTTP.

mod otlp_support;
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{ServerProcess, client, env, signed_post, webhook_samples};

const SECRET: &str = "e2e-rotel-secret";

/// The path a command prints (trimmed), when it runs and succeeds.
fn printed_path(program: &str, args: &[&str]) -> Option<PathBuf> {
    let out = Command::new(program).args(args).output().ok().filter(|o| o.status.success())?;
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// `ROTEL_AGENT`, else the agent inside the installed `rotel` Python package, else `PATH`.
fn rotel_agent() -> PathBuf {
    if let Some(p) = std::env::var_os("ROTEL_AGENT").map(PathBuf::from).filter(|p| p.is_file()) {
        return p;
    }
    let from_python = printed_path(
        "python3",
        &["-c", "import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), 'rotel-agent'))"],
    )
    .filter(|p| p.is_file());
    if let Some(p) = from_python {
        return p;
    }
    let on_path = printed_path("sh", &["-c", "command -v rotel-agent"]);
    on_path.unwrap_or_else(|| {
        panic!("rotel-agent not found: run scripts/deps/rotel.sh (pip installs the `rotel` wheel) or set ROTEL_AGENT")
    })
}

/// rotel-agent on two loopback ports, its stdout (the debug log of received logs) captured.
struct Rotel {
    child: Child,
    grpc: std::net::SocketAddr,
    http: std::net::SocketAddr,
    out: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Rotel {
    fn start() -> Rotel {
        let dir = tempfile::tempdir().unwrap();
        let grpc = otlp_support::free_port();
        let http = otlp_support::free_port();
        let mut child = Command::new(rotel_agent())
            .arg("start")
            .args(["--otlp-grpc-endpoint", &grpc.to_string()])
            .args(["--otlp-http-endpoint", &http.to_string()])
            .args(["--exporter", "blackhole", "--debug-log", "logs", "--debug-log-verbosity", "detailed"])
            .arg("--pid-file")
            .arg(dir.path().join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.path().join("rotel.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rotel-agent");
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(grpc).is_err() || std::net::TcpStream::connect(http).is_err() {
            assert!(Instant::now() < deadline, "rotel-agent did not listen");
            assert!(child.try_wait().unwrap().is_none(), "rotel-agent exited early");
            std::thread::sleep(Duration::from_millis(50));
        }
        Rotel { child, grpc, http, out, _dir: dir }
    }

    /// Event timestamps of the log records rotel printed, with their counts.
    fn timestamps(&self) -> BTreeMap<u64, usize> {
        let mut m = BTreeMap::new();
        for l in self.out.lock().unwrap().iter() {
            if let Some(t) = l.trim().strip_prefix("Timestamp: ").and_then(|t| t.trim().parse::<u64>().ok()) {
                *m.entry(t).or_default() += 1;
            }
        }
        m
    }

    fn event_names(&self) -> Vec<String> {
        let out = self.out.lock().unwrap();
        out.iter().filter_map(|l| l.trim().strip_prefix("EventName: ").map(str::to_owned)).collect()
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn run(protocol: &str) {
    let rotel = Rotel::start();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = match protocol {
        "grpc" => format!("http://{}", rotel.grpc),
        _ => format!("http://{}", rotel.http),
    };
    let server = ServerProcess::start(
        dir.path(),
        &env(&[
            ("MIST_WEBHOOK_SECRET", SECRET),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_BLRP_SCHEDULE_DELAY", "100"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
        ]),
        &[],
    );
    let c = client();
    let mut want: BTreeMap<u64, usize> = BTreeMap::new();
    let mut total_events = 0;
    for (path, body) in webhook_samples() {
        let r = signed_post(&c, server.url(), SECRET, body.clone()).send().await.unwrap();
        if r.status() != 200 {
            assert_eq!(r.status(), 400, "{}", path.display());
            continue;
        }
        let env = mist_otel::mist::Envelope::parse(&body).unwrap();
        if env.topic == "ping" {
            continue;
        }
        total_events += env.events.len();
        for ev in &env.events {
            // Placeholder samples carry `timestamp: 0` or `157.68` (1970) and get a fallback
            // time (docs/signals.md, Timestamps); compare real ones.
            let t = ev.get("timestamp").and_then(|t| t.as_f64()).map(mist_otel::signals::secs_to_ns);
            if let Some(t) = t.filter(|t| *t >= mist_otel::signals::time::EARLIEST_NS) {
                *want.entry(t).or_default() += 1;
            }
        }
    }
    assert!(want.values().sum::<usize>() >= 15, "{want:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = rotel.timestamps();
        let missing: Vec<_> = want.iter().filter(|(t, n)| got.get(t).copied().unwrap_or(0) < **n).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rotel never received {} timestamps, e.g. {:?}\nserver:\n{}",
            missing.len(),
            &missing[..missing.len().min(3)],
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rotel.event_names().len() < total_events {
        assert!(
            Instant::now() < deadline,
            "rotel got {} of {total_events} log records",
            rotel.event_names().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names = rotel.event_names();
    assert!(names.iter().any(|n| n == "mist.alarms"), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("mist.")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotel_receives_samples_over_grpc() {
    run("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotel_receives_samples_over_http() {
    run("http/protobuf").await;
}
