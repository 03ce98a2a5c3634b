//! Reads: kept deliveries in order, from memory or from the segment files.
//!
//! The frames to read are found from the index under the lock; the files are read without it.
//! Frames written by one commit lie back to back and are read with one call (a run).

use super::delivery::Delivery;
use super::errors::BufferError;
use super::index::State;
use super::inner::Inner;
use super::record;
use super::segment_log;
use crate::telemetry::buffer::DropReason;
use bytes::Bytes;
use std::fs::File;
use std::sync::Arc;

/// Reads up to this size are done on the calling thread.
const INLINE_READ_BYTES: u64 = 256 * 1024;

/// A piece of a durable read: consecutive frames of one segment. `entries`: each frame's
/// sequence number and length, from the index (not from the bytes on disk, so that one damaged
/// length cannot hide the frames after it).
struct Run {
    file: Arc<File>,
    segment: u64,
    offset: u64,
    len: u64,
    entries: Vec<(u64, u32)>,
}

/// What the index says to read.
enum Plan {
    /// Memory mode: the deliveries themselves.
    Memory(Vec<Delivery>),
    /// Durable mode: the runs of frames to read from disk.
    Disk(Vec<Run>),
}

/// Reads, in order, up to `max_items` deliveries (and about `max_bytes`; at least one) with
/// sequence numbers ≥ `from`.
pub(super) async fn read(
    inner: &Arc<Inner>,
    from: u64,
    max_items: usize,
    max_bytes: u64,
) -> Result<Vec<Delivery>, BufferError> {
    let runs = match plan(inner.durable, &inner.lock(), from, max_items, max_bytes) {
        Plan::Memory(deliveries) => return Ok(deliveries),
        Plan::Disk(runs) => runs,
    };
    // A small read is a few page-cache copies: cheaper on this thread than the hop to a
    // blocking thread and back. A large one (a backlog after an outage, perhaps no longer
    // cached) goes to a blocking thread.
    let total: u64 = runs.iter().map(|r| r.len).sum();
    if total <= INLINE_READ_BYTES {
        return read_runs(inner, runs);
    }
    let worker = inner.clone();
    tokio::task::spawn_blocking(move || read_runs(&worker, runs))
        .await
        .map_err(|e| BufferError::Store { path: inner.path.clone(), message: e.to_string() })?
}

/// Picks the deliveries to read, under the lock.
fn plan(durable: bool, st: &State, from: u64, max_items: usize, max_bytes: u64) -> Plan {
    let mut runs: Vec<Run> = Vec::new();
    let mut bytes = 0;
    let mut in_memory = Vec::new();
    for (n, (pos, &(seq, meta))) in st.index.from(from).enumerate() {
        if n >= max_items || (n > 0 && bytes + meta.size > max_bytes) {
            break;
        }
        bytes += meta.size;
        if !durable {
            in_memory.extend(st.mem.get(pos).cloned());
            continue;
        }
        let loc = meta.loc;
        // Frames written by one commit lie back to back: read them with one call.
        if let Some(run) = runs.last_mut()
            && run.segment == loc.segment
            && run.offset + run.len == loc.offset
        {
            run.len += u64::from(loc.len);
            run.entries.push((seq, loc.len));
            continue;
        }
        let Some(file) = st.files.get(&loc.segment) else { continue };
        runs.push(Run {
            file: file.clone(),
            segment: loc.segment,
            offset: loc.offset,
            len: u64::from(loc.len),
            entries: vec![(seq, loc.len)],
        });
    }
    if durable { Plan::Disk(runs) } else { Plan::Memory(in_memory) }
}

/// Reads and decodes frames from disk. Bodies are slices of the read buffer, not copies. A
/// frame damaged on disk since it was written comes back with an empty body (the pipeline
/// counts it as unparseable and moves past it) and is counted here as `corrupt`.
fn read_runs(inner: &Inner, runs: Vec<Run>) -> Result<Vec<Delivery>, BufferError> {
    let mut out = Vec::new();
    for run in runs {
        let Run { file, segment, offset, len, entries } = run;
        let bytes = segment_log::read_run(&file, offset, len as usize).map_err(|e| BufferError::Store {
            path: inner.path.clone(),
            message: format!("segment {segment} at {offset}: {e}"),
        })?;
        let mut at = 0usize;
        for (seq, frame_len) in entries {
            let end = at + frame_len as usize;
            let frame = bytes.slice(at.min(bytes.len())..end.min(bytes.len()));
            at = end;
            out.push(decode(inner, segment, seq, &frame));
        }
    }
    Ok(out)
}

/// Decodes the frame of delivery `seq`; a damaged one is logged, counted and comes back empty.
fn decode(inner: &Inner, segment: u64, seq: u64, frame: &Bytes) -> Delivery {
    match record::decode_delivery(frame) {
        Ok(f) if f.seq == seq => {
            Delivery { seq, endpoint: f.endpoint, received_at_ns: f.received_at_ns, body: f.body }
        }
        result => {
            let error = result.err().map_or_else(|| "sequence number mismatch".into(), |e| e.to_string());
            tracing::error!(segment, seq, error, "skipping a damaged buffer record");
            inner.metrics.drop_count(DropReason::Corrupt, 1);
            Delivery { seq, endpoint: String::new(), received_at_ns: 0, body: Bytes::new() }
        }
    }
}
