//! A cap on repeated log lines: at most [`LINES_PER_WINDOW`] lines per [`WINDOW`] for one kind
//! of event, and one summary of how many were left out, written with the first line of a later
//! window.
//!
//! Why: every bad signature used to write a WARN, so an unauthenticated sender could write
//! 162 MB of log in 20 s. The counters keep the exact numbers; the log only needs examples.
//! The hot path is two atomic operations and a clock read, no lock: a flood must not contend.

use super::signature::Rejection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Lines written per window for one kind of event.
pub const LINES_PER_WINDOW: u64 = 5;

/// The window length.
pub const WINDOW: Duration = Duration::from_secs(1);

/// What to do with one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Write the line; first write the summary of an earlier window, if it left lines out.
    Log(Option<Suppressed>),
    /// Leave the line out (it is counted for the summary).
    Suppress,
}

/// Lines left out in an earlier window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed {
    /// How many lines were left out.
    pub lines: u64,
    /// Seconds from the start of that window to now: every left-out line falls in them.
    pub seconds: u64,
}

/// The cap for one kind of event (e.g. one endpoint and rejection reason).
#[derive(Debug)]
pub struct LogLimit {
    epoch: Instant,
    /// The current window's number (seconds since `epoch` / window length).
    window: AtomicU64,
    /// Occurrences in the current window, written or not.
    count: AtomicU64,
}

impl Default for LogLimit {
    fn default() -> Self {
        Self::new(Instant::now())
    }
}

impl LogLimit {
    /// A cap whose windows are counted from `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Self { epoch, window: AtomicU64::new(0), count: AtomicU64::new(0) }
    }

    /// Records one occurrence at `now` and says whether to write it.
    pub fn admit(&self, now: Instant) -> Admit {
        let window = now.saturating_duration_since(self.epoch).as_secs() / WINDOW.as_secs();
        let current = self.window.load(Ordering::Acquire);
        if window > current
            && self.window.compare_exchange(current, window, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            // This occurrence opened the new window: it takes the old window's count. An
            // occurrence counted in between lands in one window or the other, never in both,
            // so the left-out lines add up exactly.
            let before = self.count.swap(1, Ordering::AcqRel);
            let lines = before.saturating_sub(LINES_PER_WINDOW);
            let seconds = (window - current + 1) * WINDOW.as_secs();
            return Admit::Log((lines > 0).then_some(Suppressed { lines, seconds }));
        }
        if self.count.fetch_add(1, Ordering::AcqRel) < LINES_PER_WINDOW {
            Admit::Log(None)
        } else {
            Admit::Suppress
        }
    }
}

/// One [`LogLimit`] per configured endpoint and signature rejection reason: a flood of one
/// kind does not hide the first lines of another.
#[derive(Debug)]
pub struct RejectionLogs {
    by_endpoint: HashMap<String, [LogLimit; 4]>,
}

impl RejectionLogs {
    /// Caps for these endpoints (the configured names: bounded, so is the map).
    pub fn new<'a>(endpoints: impl IntoIterator<Item = &'a str>) -> Self {
        let epoch = Instant::now();
        let by_endpoint = endpoints
            .into_iter()
            .map(|name| (name.to_owned(), std::array::from_fn(|_| LogLimit::new(epoch))))
            .collect();
        Self { by_endpoint }
    }

    /// Records one rejected signature and says whether to write its line. An endpoint that is
    /// not configured is never capped (it cannot be reached: unknown names are answered 404).
    pub fn admit(&self, endpoint: &str, reason: Rejection, now: Instant) -> Admit {
        let slot = match reason {
            Rejection::Missing => 0,
            Rejection::Malformed => 1,
            Rejection::Mismatch => 2,
            Rejection::Sha1Disabled => 3,
        };
        self.by_endpoint.get(endpoint).map_or(Admit::Log(None), |limits| limits[slot].admit(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_few_lines_per_window_and_sums_the_rest() {
        let t0 = Instant::now();
        let limit = LogLimit::new(t0);
        let verdicts: Vec<Admit> = (0..100).map(|_| limit.admit(t0)).collect();
        let written = verdicts.iter().filter(|v| matches!(v, Admit::Log(_))).count() as u64;
        assert_eq!(written, LINES_PER_WINDOW);
        // Three windows later, the first occurrence is written with the summary.
        let later = t0 + WINDOW * 3;
        let lines = 100 - LINES_PER_WINDOW;
        assert_eq!(limit.admit(later), Admit::Log(Some(Suppressed { lines, seconds: 4 })));
        // The summary is given once; the new window has its own allowance.
        for _ in 1..LINES_PER_WINDOW {
            assert_eq!(limit.admit(later), Admit::Log(None));
        }
        assert_eq!(limit.admit(later), Admit::Suppress);
    }

    #[test]
    fn a_quiet_window_has_no_summary() {
        let t0 = Instant::now();
        let limit = LogLimit::new(t0);
        assert_eq!(limit.admit(t0), Admit::Log(None));
        assert_eq!(limit.admit(t0 + WINDOW), Admit::Log(None));
    }

    #[test]
    fn counts_add_up_across_threads() {
        let t0 = Instant::now();
        let limit = std::sync::Arc::new(LogLimit::new(t0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limit = limit.clone();
                std::thread::spawn(move || {
                    (0..1_000).filter(|_| matches!(limit.admit(t0), Admit::Log(_))).count() as u64
                })
            })
            .collect();
        let written: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let Admit::Log(Some(s)) = limit.admit(t0 + WINDOW) else { panic!("no summary") };
        assert_eq!(written + s.lines, 4_000);
    }

    #[test]
    fn endpoints_and_reasons_are_capped_apart() {
        let logs = RejectionLogs::new(["default", "east"]);
        let now = Instant::now();
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(logs.admit("default", Rejection::Mismatch, now), Admit::Log(None));
        }
        assert_eq!(logs.admit("default", Rejection::Mismatch, now), Admit::Suppress);
        assert_eq!(logs.admit("default", Rejection::Missing, now), Admit::Log(None));
        assert_eq!(logs.admit("east", Rejection::Mismatch, now), Admit::Log(None));
    }
}
