//! The store: a directory of letters, bounded by bytes, oldest deleted first.

use super::letter::{self, Letter};
use crate::exporter::Payload;
use crate::telemetry::deadletter::DeadLetterMetrics;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a running server re-lists the directory for its gauges (a replay by the CLI
/// changes it behind the server's back).
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// The dead-letter store of one data directory.
pub struct DeadLetters {
    dir: PathBuf,
    max_bytes: u64,
    metrics: DeadLetterMetrics,
    /// Tells apart letters written in the same nanosecond.
    seq: AtomicU64,
    last_refresh: Mutex<Option<Instant>>,
}

impl DeadLetters {
    /// Opens (creating) `<data_dir>/deadletter/`, capped at `max_bytes`, and sets the gauges.
    pub fn open(data_dir: &Path, max_bytes: u64, metrics: DeadLetterMetrics) -> io::Result<Self> {
        let dir = data_dir.join("deadletter");
        std::fs::create_dir_all(&dir)?;
        remove_partial_writes(&dir);
        let store = Self { dir, max_bytes, metrics, seq: AtomicU64::new(0), last_refresh: Mutex::new(None) };
        store.refresh()?;
        Ok(store)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps a refused request, then deletes the oldest letters past the cap (counted).
    pub fn put(&self, payload: &Payload, reason: &str) -> io::Result<()> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = letter::file_name(crate::clock::now_ns(), seq, payload.signal(), reason);
        let path = self.dir.join(&name);
        let tmp = path.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, payload.encode()).and_then(|()| std::fs::rename(&tmp, &path)) {
            // A partial file would take disk space the cap does not count (a full disk, say).
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let mut letters = self.letters()?;
        let mut total: u64 = letters.iter().map(|l| l.bytes).sum();
        let mut oldest = letters.iter();
        while total > self.max_bytes
            && let Some(old) = oldest.next()
        {
            match std::fs::remove_file(&old.path) {
                // Already gone: a `deadletter replay` delivered it meanwhile.
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            total -= old.bytes;
            self.metrics.dropped.inc();
            tracing::warn!(file = %old.path.display(), "dead-letter store full; oldest letter deleted");
        }
        letters.retain(|l| l.path.exists());
        self.metrics.held(letters.len() as u64, total);
        Ok(())
    }

    /// Every letter, oldest first.
    pub fn letters(&self) -> io::Result<Vec<Letter>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some((at_unix_ns, signal, reason)) = name.to_str().and_then(letter::parse) else {
                continue;
            };
            let bytes = entry.metadata()?.len();
            out.push(Letter { path: entry.path(), at_unix_ns, signal, reason, bytes });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Reads a letter's request.
    pub fn read(&self, letter: &Letter) -> io::Result<Payload> {
        let bytes = std::fs::read(&letter.path)?;
        Payload::decode(letter.signal, &bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Deletes a letter (delivered at last).
    pub fn remove(&self, letter: &Letter) -> io::Result<()> {
        std::fs::remove_file(&letter.path)?;
        self.refresh()
    }

    /// Re-lists the directory into the gauges.
    pub fn refresh(&self) -> io::Result<()> {
        let letters = self.letters()?;
        self.metrics.held(letters.len() as u64, letters.iter().map(|l| l.bytes).sum());
        *self.last_refresh.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        Ok(())
    }

    /// [`DeadLetters::refresh`], at most every few seconds (called from the pipeline's loop).
    pub fn refresh_now_and_then(&self) {
        let last = *self.last_refresh.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|t| t.elapsed() >= REFRESH_EVERY)
            && let Err(e) = self.refresh()
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot list the dead-letter store");
        }
    }
}

/// Deletes `.tmp` files a crash or a failed write left behind: they are not letters, and the
/// cap does not count them.
fn remove_partial_writes(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|e| e == "tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    fn request(n: usize) -> Payload {
        Payload::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord { severity_text: "x".repeat(100), ..Default::default() }; n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    #[test]
    fn letters_are_kept_read_back_and_bounded_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = DeadLetterMetrics::default();
        let size = request(10).encode().len() as u64;
        let store = DeadLetters::open(dir.path(), size * 3, metrics.clone()).unwrap();
        store.put(&request(10), "http_400").unwrap();
        let first = store.letters().unwrap();
        assert_eq!(first.len(), 1);
        assert!(first[0].path.extension().is_some_and(|e| e == letter::EXTENSION));
        assert_eq!(store.read(&first[0]).unwrap(), request(10));
        for _ in 0..3 {
            store.put(&request(10), "http_400").unwrap();
        }
        let now = store.letters().unwrap();
        assert_eq!(now.len(), 3, "the cap holds three");
        assert!(!now.contains(&first[0]), "the oldest went first");
        let h = metrics.health();
        assert_eq!((h.requests, h.bytes, h.dropped), (3, size * 3, 1));
        store.remove(&now[0]).unwrap();
        assert_eq!(metrics.health().requests, 2);
        // Reopened: the directory is the truth.
        let again = DeadLetters::open(dir.path(), size * 3, DeadLetterMetrics::default()).unwrap();
        assert_eq!(again.letters().unwrap().len(), 2);
    }
}
