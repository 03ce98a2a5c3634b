//! The `debug` exporter: one OTLP JSON export request per line, on stdout or appended to a
//! file, so a newcomer can see the signals without any backend.

use super::request::{Accepted, BuildError, ExportError, Payload};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Writes OTLP JSON lines.
pub struct DebugExporter {
    out: Mutex<Box<dyn Write + Send>>,
}

impl DebugExporter {
    /// Stdout when `path` is `None`, else the file (created, appended to).
    pub fn open(path: Option<&Path>) -> Result<Self, BuildError> {
        let out: Box<dyn Write + Send> = match path {
            None => Box::new(std::io::stdout()),
            Some(p) => {
                Box::new(std::fs::OpenOptions::new().create(true).append(true).open(p).map_err(|e| {
                    BuildError {
                        key: "debug_path".into(),
                        message: format!("cannot open {} for writing: {e}", p.display()),
                    }
                })?)
            }
        };
        Ok(Self { out: Mutex::new(out) })
    }

    /// Writes one line `{"signal": "...", "request": {OTLP JSON}}`.
    pub fn export(&self, payload: &Payload) -> Result<Accepted, ExportError> {
        let line =
            format!("{{\"signal\":\"{}\",\"request\":{}}}\n", payload.signal().as_str(), payload.to_json());
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write_all(line.as_bytes()).and_then(|_| out.flush()).map_err(|e| ExportError::Retryable {
            reason: format!("write: {}", e.kind()),
            retry_after: None,
            message: e.to_string(),
        })?;
        Ok(Accepted::default())
    }
}
