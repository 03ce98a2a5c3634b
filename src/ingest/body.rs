//! Reading a request body before it is authenticated, within four limits: its size
//! (`max_body_bytes`), its total time (`body_timeout`), its pace (`min_body_bytes_per_sec` over
//! every `body_rate_grace` window) and a memory budget shared by every request
//! (`max_pending_body_bytes`).
//!
//! The budget is a semaphore of KiB permits. A request takes its declared `Content-Length`
//! before reading a byte (or, without one, takes more as its body arrives) and never waits for
//! permits: when they are spent it is answered 503 at once, so unsigned senders cannot make the
//! server hold more than the budget. The permits travel with the body until the request is
//! answered.

use super::config::IngestConfig;
use super::outcome::Refusal;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

const KIB: usize = 1024;

/// The limits a body is read within, and the budget all bodies share.
#[derive(Debug, Clone)]
pub struct BodyLimits {
    max: usize,
    timeout: Duration,
    min_rate: u64,
    grace: Duration,
    budget: Arc<Semaphore>,
}

/// Budget permits held by one request's body; released when dropped.
#[derive(Debug)]
pub struct Reservation(Option<OwnedSemaphorePermit>);

impl Reservation {
    fn kib(&self) -> usize {
        self.0.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Makes the reservation cover at least `bytes`, or refuses without waiting.
    fn cover(&mut self, budget: &Arc<Semaphore>, bytes: usize) -> Result<(), Refusal> {
        let want = bytes.div_ceil(KIB).saturating_sub(self.kib());
        if want == 0 {
            return Ok(());
        }
        let more = u32::try_from(want)
            .ok()
            .and_then(|n| budget.clone().try_acquire_many_owned(n).ok())
            .ok_or(Refusal::Overloaded)?;
        match &mut self.0 {
            Some(held) => held.merge(more),
            None => self.0 = Some(more),
        }
        Ok(())
    }
}

impl BodyLimits {
    /// The limits of the listener's configuration, with a fresh budget.
    pub fn new(cfg: &IngestConfig) -> Self {
        Self {
            max: cfg.max_body_bytes,
            timeout: cfg.body_timeout,
            min_rate: cfg.min_body_bytes_per_sec,
            grace: cfg.body_rate_grace,
            // At least one body of the largest size, or such a body could never be read.
            budget: Arc::new(Semaphore::new(
                cfg.max_pending_body_bytes.max(cfg.max_body_bytes).div_ceil(KIB),
            )),
        }
    }

    /// Reads the body. A declared oversize body is refused before a byte of it is read, and a
    /// declared size the budget cannot hold is answered 503 the same way.
    pub async fn read(&self, headers: &HeaderMap, body: Body) -> Result<(Bytes, Reservation), Refusal> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max as u64) {
            return Err(Refusal::TooLarge(self.max));
        }
        let declared = declared.map_or(0, |n| n as usize);
        let mut held = Reservation(None);
        held.cover(&self.budget, declared)?;
        // Exactly the declared size: the body is kept as read (no copy), and a slice of hyper's
        // read buffer is never kept (it would keep the whole, much larger buffer alive).
        let mut out = Vec::with_capacity(declared);
        self.collect(body, &mut out, &mut held).await?;
        out.shrink_to_fit();
        Ok((Bytes::from(out), held))
    }

    async fn collect(
        &self,
        mut body: Body,
        out: &mut Vec<u8>,
        held: &mut Reservation,
    ) -> Result<(), Refusal> {
        let deadline = Instant::now() + self.timeout;
        let mut pace = Pace::new(self.min_rate, self.grace);
        loop {
            let wake = pace.check_at().map_or(deadline, |t| t.min(deadline));
            let frame = match tokio::time::timeout_at(wake, body.frame()).await {
                Ok(frame) => frame,
                Err(_) if Instant::now() >= deadline => return Err(Refusal::Timeout),
                Err(_) => {
                    pace.check(self.min_rate)?;
                    continue;
                }
            };
            let Some(frame) = frame else { return Ok(()) };
            let Ok(data) = frame.map_err(|_| Refusal::Unreadable)?.into_data() else { continue };
            let len = out.len() + data.len();
            if len > self.max {
                return Err(Refusal::TooLarge(self.max));
            }
            held.cover(&self.budget, len)?;
            out.extend_from_slice(&data);
            pace.add(data.len());
            pace.check(self.min_rate)?;
        }
    }
}

/// The minimum pace: every `grace` window must bring `min_rate × grace` bytes.
struct Pace {
    window_bytes: u64,
    window_end: Option<Instant>,
    grace: Duration,
}

impl Pace {
    fn new(min_rate: u64, grace: Duration) -> Self {
        let window_end = (min_rate > 0).then(|| Instant::now() + grace);
        Self { window_bytes: 0, window_end, grace }
    }

    fn check_at(&self) -> Option<Instant> {
        self.window_end
    }

    fn add(&mut self, n: usize) {
        self.window_bytes += n as u64;
    }

    /// At the end of a window: too slow, or a fresh window.
    fn check(&mut self, min_rate: u64) -> Result<(), Refusal> {
        let Some(end) = self.window_end else { return Ok(()) };
        let now = Instant::now();
        if now < end {
            return Ok(());
        }
        let wanted = (min_rate as f64 * self.grace.as_secs_f64()) as u64;
        if self.window_bytes < wanted {
            return Err(Refusal::TooSlow(min_rate));
        }
        self.window_bytes = 0;
        self.window_end = Some(now + self.grace);
        Ok(())
    }
}
