//! Helpers shared by the integration tests: sample payloads, Mist-style signing, and the real
//! `mist-otel` binary started as a child process.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `../shared/mist-samples` beside the repository (or `MIST_SAMPLES_DIR`).
pub fn samples_dir() -> PathBuf {
    std::env::var_os("MIST_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/mist-samples"))
}

/// Every webhook sample body (both spec versions and the variants), sorted by path.
pub fn webhook_samples() -> Vec<(PathBuf, Vec<u8>)> {
    let root = samples_dir().join("webhooks");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("spec-2509.1.2"), root.join("variants")] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        for p in entries {
            let body = std::fs::read(&p).unwrap();
            out.push((p, body));
        }
    }
    assert!(out.len() >= 50, "expected the full sample set, found {}", out.len());
    out
}

/// The `X-Mist-Signature-v2` value Mist would send.
pub fn sign(secret: &str, body: &[u8]) -> String {
    mist_otel::ingest::signature::sign_v2(secret, body)
}

/// A POST of `body` to `url` carrying the `X-Mist-Signature-v2` Mist would send for `secret`.
pub fn signed_post<B: AsRef<[u8]> + Into<reqwest::Body>>(
    c: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    secret: &str,
    body: B,
) -> reqwest::RequestBuilder {
    let signature = sign(secret, body.as_ref());
    c.post(url).header("x-mist-signature-v2", signature).body(body)
}

/// A plain HTTP client for the tests (HTTP/1.1 and HTTP/2, rustls with ring).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap()
}

/// The real `mist-otel` binary running `serve`, killed on drop. Listens on ephemeral ports.
pub struct ServerProcess {
    child: Child,
    /// Webhook listener address.
    pub webhook: SocketAddr,
    /// Admin listener address.
    pub admin: SocketAddr,
    /// Everything the process wrote to stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// Data directory (kept by the caller's TempDir).
    pub data_dir: PathBuf,
}

impl ServerProcess {
    /// Starts `mist-otel serve` with these environment variables added to a clean environment
    /// (only PATH/HOME are inherited) and waits until it listens.
    pub fn start(data_dir: &Path, env: &BTreeMap<String, String>, args: &[&str]) -> ServerProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mist-otel"));
        cmd.env_clear();
        for k in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.env("MIST_OTEL_LISTEN", "127.0.0.1:0")
            .env("MIST_OTEL_ADMIN_LISTEN", "127.0.0.1:0")
            .env("MIST_OTEL_DATA_DIR", data_dir)
            .env("RUST_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args).arg("serve").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn mist-otel");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("mist-otel listening") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("mist-otel did not start; stderr:\n{}", lines.lock().unwrap().join("\n"));
            }
        };
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        let webhook = v["webhooks"].as_str().unwrap().parse().unwrap();
        let admin = v["admin"].as_str().unwrap().parse().unwrap();
        ServerProcess { child, webhook, admin, stderr: lines, data_dir: data_dir.to_owned() }
    }

    /// `http://addr/mist/webhook`.
    pub fn url(&self) -> String {
        format!("http://{}/mist/webhook", self.webhook)
    }

    /// `http://admin/path`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// The process id (to send it signals with the `kill` command).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status (at most `wait`).
    pub fn terminate(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY-free: use the kill command rather than libc.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let start = Instant::now();
        while start.elapsed() < wait {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILL, no chance to flush.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The captured stderr so far, joined.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Env map from pairs.
pub fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Reads until the server closes the connection or `limit` passes; returns what was read and
/// whether the connection was closed (EOF or reset) in time.
pub async fn read_until_closed(s: &mut tokio::net::TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tokio::io::AsyncReadExt::read(s, &mut buf)).await {
            Err(_) => return (got, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (got, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}
