//! Issue 14, item 3: the disk under the buffer fills up. A real small filesystem (a tmpfs of
//! 4 MiB, mounted for the test; the test needs root and fails loudly without it) holds the data
//! directory; the server runs in process and exports to a backend that is down at first.
//!
//! Posts fill the disk until they are refused with 503 (never a false 200: every delivery
//! answered 200 must arrive in the end), `/readyz` then says 503 with the storage error, and a
//! restart on the full disk succeeds. Then the backend comes up: the buffer drains, its
//! segment files are deleted, and new posts are answered 200 again within a bounded time, with
//! `/readyz` 200.

mod otlp_support;
mod support;

use mist_otel::app::{self, Config, Running};
use mist_otel::buffer::config::Fsync;
use mist_otel::exporter::config::{ExporterKind, Protocol};
use mist_otel::secret::Secret;
use otlp_support::{Receiver, assert_complete_and_identical, has_all, numbered_body, ts_ns};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{client, signed_post};

const SECRET: &str = "disk-full-secret";
/// Events per delivery (about 15 KiB of JSON).
const PER: u64 = 60;
const BASE: u64 = 1_714_000_000;

/// A tmpfs mounted on a fresh directory; unmounted when dropped, also when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test needs a real small filesystem: `mount -t tmpfs` failed ({}): {} \
             (run as root, or with CAP_SYS_ADMIN)",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a file the failed test still holds open must not keep the mount alive.
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn config(data: &Path, grpc: std::net::SocketAddr, fsync: Fsync) -> Config {
    let mut c = Config { data_dir: data.to_owned(), ..Config::default() };
    c.buffer.fsync = fsync;
    c.ingest.listen = "127.0.0.1:0".parse().unwrap();
    c.admin.listen = "127.0.0.1:0".parse().unwrap();
    c.ingest.secrets = vec![Secret::new(SECRET)];
    // The cap is above the disk's size: the disk fills first. Segments are 1 MiB.
    c.buffer.max_bytes = 8 * 1024 * 1024;
    c.export.exporter = ExporterKind::Otlp;
    c.export.protocol = Protocol::Grpc;
    c.export.endpoint = Some(format!("http://{grpc}"));
    c.export.timeout = Duration::from_secs(3);
    c.export.batch.logs_delay = Duration::from_millis(100);
    c.export.batch.spans_delay = Duration::from_millis(100);
    c.export.metric_interval = Duration::from_millis(300);
    c.export.retry.initial = Duration::from_millis(100);
    c.export.retry.max = Duration::from_millis(300);
    c.export.shutdown_timeout = Duration::from_secs(2);
    c
}

/// Posts delivery number `d`; returns the status and the event timestamps it carries.
async fn post(r: &Running, d: u64) -> (u16, Vec<u64>) {
    let url = format!("http://{}/mist/webhook", r.webhook_addr);
    let body = numbered_body("device-events", BASE, d * PER, PER);
    let status = signed_post(&client(), &url, SECRET, body).send().await.unwrap().status().as_u16();
    (status, (d * PER..(d + 1) * PER).map(|i| ts_ns(BASE, i)).collect())
}

async fn readyz(r: &Running) -> (u16, String) {
    let resp = client().get(format!("http://{}/readyz", r.admin_addr)).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Starts the server again on the same data directory. With `fsync: always` the buffer's
/// writer thread lets go of the directory's lock a moment after the last handle is dropped
/// (a new process has no such gap), so only that refusal is retried, for at most 2 s.
async fn restart(cfg: &Config) -> Running {
    let t0 = Instant::now();
    loop {
        match app::start(cfg.clone()).await {
            Ok(r) => return r,
            Err(e)
                if e.to_string().contains("another mist-otel process")
                    && t0.elapsed() < Duration::from_secs(2) =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("restart on a full disk: {e}"),
        }
    }
}

/// The buffer's storage error as `/status.json` reports it (`null` when writes succeed).
async fn storage_error(r: &Running) -> serde_json::Value {
    let url = format!("http://{}/status.json", r.admin_addr);
    let status: serde_json::Value = client().get(url).send().await.unwrap().json().await.unwrap();
    status["health"]["buffer"]["storage_error"]["error"].clone()
}

/// Bytes of the files in the buffer directory.
fn buffer_bytes(data: &Path) -> u64 {
    let dir: PathBuf = data.join("buffer");
    std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
}

/// `fsync: interval` (the default): requests write inline, the sync thread retries the storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_then_recovers_by_itself_once_its_data_is_delivered() {
    fill_refuse_restart_recover(Fsync::Interval).await;
}

/// `fsync: always`: the writer thread commits, and retries the storage while idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_with_fsync_always_recovers_too() {
    fill_refuse_restart_recover(Fsync::Always).await;
}

async fn fill_refuse_restart_recover(fsync: Fsync) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fs = Tmpfs::mount("4m");
    let rx = Receiver::stopped();
    let grpc: std::net::SocketAddr = rx.grpc_url().trim_start_matches("http://").parse().unwrap();
    let r = app::start(config(fs.path(), grpc, fsync)).await.expect("server starts");

    // 1. Fill the disk: every 200 is remembered, until posts are refused.
    let mut expected = Vec::new();
    let mut next = 0;
    let mut refused = 0;
    while refused < 5 {
        assert!(next < 1000, "8 MiB posted to a 4 MiB disk and still no refusal");
        let (status, ts) = post(&r, next).await;
        next += 1;
        match status {
            200 => expected.extend(ts),
            503 => refused += 1,
            other => panic!("post {next}: unexpected status {other}"),
        }
    }
    eprintln!(
        "{fsync:?}: disk full after {} accepted deliveries ({} bytes of buffer files)",
        expected.len() / PER as usize,
        buffer_bytes(fs.path())
    );
    let (status, why) = readyz(&r).await;
    assert_eq!(status, 503, "/readyz while appends fail on a full disk: {why}");
    assert!(why.contains("buffer storage failing"), "{why}");
    let error = storage_error(&r).await;
    assert!(error.as_str().is_some_and(|e| e.contains("No space left on device")), "storage_error: {error}");

    // 2. A restart on the full disk succeeds (and still refuses honestly).
    r.shutdown().await;
    let r = restart(&config(fs.path(), grpc, fsync)).await;
    let (status, _) = post(&r, next).await;
    next += 1;
    assert_eq!(status, 503, "a post on the full disk after the restart");
    assert_eq!(readyz(&r).await.0, 503, "/readyz after a restart on the full disk");

    // 3. The backend comes up: everything answered 200 arrives, the disk frees, and posts are
    // answered 200 again without any help.
    let up = Instant::now();
    let rx = tokio::task::spawn_blocking(move || {
        let mut rx = rx;
        rx.restart();
        rx
    })
    .await
    .unwrap();
    let deadline = up + Duration::from_secs(30);
    while !rx.with(|rec| has_all(rec, &expected)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rx.with(|rec| assert_complete_and_identical(rec, &expected));
    let drained = up.elapsed();
    let mut accepted = None;
    while accepted.is_none() && Instant::now() < deadline {
        let (status, ts) = post(&r, next).await;
        next += 1;
        if status == 200 {
            accepted = Some(ts);
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let ts = accepted.unwrap_or_else(|| {
        panic!(
            "no post accepted within 30 s of the backend coming up ({} buffer bytes on disk)",
            buffer_bytes(fs.path())
        )
    });
    let recovered = up.elapsed();
    let mut ready = readyz(&r).await;
    while ready.0 != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = readyz(&r).await;
    }
    assert_eq!(ready.0, 200, "/readyz after recovery: {}", ready.1);
    assert!(storage_error(&r).await.is_null(), "the storage error stays after recovery");
    assert!(
        rx.wait_until(Duration::from_secs(10), |rec| has_all(rec, &ts)),
        "the post after recovery never arrived"
    );
    let on_disk = buffer_bytes(fs.path());
    assert!(on_disk < 2 * 1024 * 1024, "the buffer still holds {on_disk} bytes of files after draining");
    eprintln!(
        "{fsync:?}: backend up -> all {} events exported in {drained:?}; first 200 again after {recovered:?}; {on_disk} buffer bytes on disk",
        expected.len()
    );
    r.shutdown().await;
    tokio::task::spawn_blocking(move || drop(rx)).await.unwrap();
}
