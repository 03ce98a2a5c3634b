//! One commit: a batch of commands written to the log with one `write` (and, when the caller
//! asks, one `fdatasync`), then published to the index and answered. Used by the writer thread
//! (`fsync: always`) and by inline writers (`fsync: interval`).
//!
//! Drop-oldest eviction happens here too: an eviction is an acknowledgement through the
//! victim, written in the same commit as the appends that needed the room.
//!
//! A failed write (a full disk) fails the batch's appends, but its removals still apply in
//! memory and free the segments they finish ([`SegmentLog::ack_in_memory`]): otherwise the
//! buffer could never make room on a disk its own data filled. [`retry_storage`] tries again
//! while no request writes.

use super::command::Cmd;
use super::config::Overflow;
use super::errors::AppendError;
use super::index::{Meta, State, stored_size};
use super::inner::Inner;
use super::record::{self, Loc};
use super::segment_log::SegmentLog;
use crate::telemetry::buffer::DropReason;
use std::collections::VecDeque;

/// What a commit decided under the lock before writing.
struct Plan {
    /// The sequence number of the batch's first append.
    first_seq: u64,
    /// The acknowledgement watermark the commit writes, if any.
    through: Option<u64>,
    /// The highest removal the batch asked for (`through` without evictions).
    requested: Option<u64>,
    /// Kept deliveries evicted (drop-oldest).
    evicted: u64,
}

/// Writes one batch of commands with one write (and, with `sync`, one fsync). On success every
/// append's reply carries its sequence number; on failure every append gets the error (the
/// sequence numbers it would have used are skipped) and only the removals apply.
pub(super) fn commit(
    inner: &Inner,
    log: &mut SegmentLog,
    cmds: &mut Vec<Cmd>,
    buf: &mut Vec<u8>,
    sync: bool,
) -> std::io::Result<()> {
    // 1. Decide, under the lock, the sequence numbers and the new acknowledgement watermark.
    let plan = plan(inner, &inner.lock(), cmds);
    // 2. Encode and write, without the lock.
    let (locs, next_seq) = match write(inner, log, cmds, buf, &plan, sync) {
        Ok(w) => w,
        Err(e) => {
            inner.storage_failed(&e);
            return Err(fail(inner, log, cmds, &plan, e));
        }
    };
    inner.storage_ok();
    let deleted = log.take_acked();
    // 3. Publish.
    let mut st = inner.lock();
    forget_segments(inner, &mut st, deleted);
    let n_appends = publish(&mut st, cmds, &plan, locs, next_seq);
    drop(st);
    if plan.evicted > 0 {
        inner.metrics.drop_count(DropReason::Overflow, plan.evicted);
    }
    inner.metrics.commits.inc();
    if n_appends > 0 {
        inner.metrics.commit_batch.observe(n_appends as f64);
    }
    Ok(())
}

/// Starts a segment if needed and writes the batch into it; returns where each append's frame
/// went and the sequence number after the last.
fn write(
    inner: &Inner,
    log: &mut SegmentLog,
    cmds: &[Cmd],
    buf: &mut Vec<u8>,
    plan: &Plan,
    sync: bool,
) -> std::io::Result<(Vec<Loc>, u64)> {
    let (segment, base, new_file) = log.prepare()?;
    if let Some(f) = new_file {
        inner.lock().files.insert(segment, f);
    }
    let (locs, next_seq) = encode(cmds, buf, plan.first_seq, segment, base);
    let last_seq = next_seq.checked_sub(1).filter(|_| next_seq > plan.first_seq);
    if let Some(t) = plan.through {
        record::encode_ack(buf, t);
    }
    log.write(buf, last_seq, plan.through, sync)?;
    Ok((locs, next_seq))
}

/// Drops deleted segments from the readers' map and queues their files for deletion.
fn forget_segments(inner: &Inner, st: &mut State, deleted: Vec<(u64, std::path::PathBuf)>) {
    for (id, _) in &deleted {
        st.files.remove(id);
    }
    inner.unlink_later(deleted);
}

/// While writes fail, tries to start a new segment (called by the buffer's thread when no
/// request writes): once acknowledged segments are deleted and there is room again, this
/// clears the storage error, so readiness recovers without waiting for a delivery.
pub(super) fn retry_storage(inner: &Inner, log: &mut SegmentLog) {
    if inner.storage_error().is_none() {
        return;
    }
    match log.prepare() {
        Ok((segment, _, new_file)) => {
            if let Some(f) = new_file {
                inner.lock().files.insert(segment, f);
            }
            inner.storage_ok();
        }
        Err(e) => inner.storage_failed(&e),
    }
}

/// The batch's sequence numbers and watermark: the highest removal asked for, raised by
/// drop-oldest evictions (oldest first, so an eviction is an acknowledgement through the
/// victim).
fn plan(inner: &Inner, st: &State, cmds: &[Cmd]) -> Plan {
    let through: Option<u64> = cmds
        .iter()
        .filter_map(|c| match c {
            Cmd::Remove { through, .. } => Some(*through),
            Cmd::Append { .. } => None,
        })
        .max();
    let mut plan = Plan { first_seq: st.next_seq, through, requested: through, evicted: 0 };
    if inner.overflow == Overflow::DropOldest {
        plan_evictions(inner.max_bytes, st, cmds, &mut plan);
    }
    plan
}

/// Raises the watermark until the batch's appends fit under `max_bytes`.
fn plan_evictions(max_bytes: u64, st: &State, cmds: &[Cmd], plan: &mut Plan) {
    // Lazily, from the oldest: a commit must not walk (or copy) the whole index.
    let removed: u64 = plan.through.map_or(0, |t| st.index.bytes_through(t));
    let mut bytes = st.bytes - removed;
    let mut victims = st.index.from(plan.through.map_or(0, |t| t + 1)).map(|(_, (k, m))| (*k, m.size));
    let mut batch: VecDeque<(u64, u64)> = VecDeque::new();
    let mut seq = plan.first_seq;
    for c in cmds {
        let Cmd::Append { endpoint, body, .. } = c else { continue };
        let size = stored_size(endpoint, body);
        while bytes + size > max_bytes {
            // Kept deliveries go first; then this batch's own (answered "full", so not
            // counted as dropped: they were never accepted).
            let (victim, vsize, kept) = match victims.next() {
                Some((v, size)) => (v, size, true),
                None => match batch.pop_front() {
                    Some((v, size)) => (v, size, false),
                    None => break,
                },
            };
            plan.through = plan.through.max(Some(victim));
            bytes -= vsize;
            plan.evicted += u64::from(kept);
        }
        batch.push_back((seq, size));
        bytes += size;
        seq += 1;
    }
}

/// Encodes the batch's appends into `buf` from sequence number `first_seq`, at offset `base`
/// of `segment`; returns where each frame goes and the sequence number after the last.
fn encode(cmds: &[Cmd], buf: &mut Vec<u8>, first_seq: u64, segment: u64, base: u64) -> (Vec<Loc>, u64) {
    buf.clear();
    let mut locs = Vec::with_capacity(cmds.len());
    let mut seq = first_seq;
    for c in cmds {
        if let Cmd::Append { endpoint, received_at_ns, body, .. } = c {
            let start = buf.len();
            record::encode_delivery(buf, seq, *received_at_ns, endpoint, body);
            locs.push(Loc { segment, offset: base + start as u64, len: (buf.len() - start) as u32 });
            seq += 1;
        }
    }
    (locs, seq)
}

/// Applies a written batch to the index and answers its commands; returns the appends.
fn publish(st: &mut State, cmds: &mut Vec<Cmd>, plan: &Plan, locs: Vec<Loc>, next_seq: u64) -> u64 {
    if let Some(t) = plan.through {
        st.remove_through(t);
    }
    st.next_seq = next_seq;
    let mut n_appends = 0u64;
    let mut locs = locs.into_iter();
    let mut seq = plan.first_seq;
    for c in cmds.drain(..) {
        match c {
            Cmd::Remove { done, .. } => {
                let _ = done.send(());
            }
            Cmd::Append { endpoint, received_at_ns, body, reply } => {
                let loc = locs.next().unwrap_or_default();
                let size = stored_size(&endpoint, &body);
                st.reserved -= size;
                n_appends += 1;
                if plan.through.is_none_or(|t| seq > t) {
                    st.bytes += size;
                    st.index.push(seq, Meta { size, received_at_ns, loc });
                    let _ = reply.send(Ok(seq));
                } else {
                    // Evicted within its own commit (drop-oldest with a burst larger than the
                    // cap): it was never safely kept, so the sender must retry.
                    let _ = reply.send(Err(AppendError::Full));
                }
                seq += 1;
            }
        }
    }
    n_appends
}

/// Answers every command of a failed commit: appends get the error, and the sequence numbers
/// the batch would have used are skipped so that none is ever reused. Removals apply in memory
/// (evictions do not: their appends failed) and delete the segments they finish.
fn fail(
    inner: &Inner,
    log: &mut SegmentLog,
    cmds: &mut Vec<Cmd>,
    plan: &Plan,
    e: std::io::Error,
) -> std::io::Error {
    let deleted = plan.requested.map_or_else(Vec::new, |t| {
        log.ack_in_memory(t);
        log.take_acked()
    });
    let mut st = inner.lock();
    if let Some(t) = plan.requested {
        st.remove_through(t);
    }
    forget_segments(inner, &mut st, deleted);
    let mut n = 0;
    for c in cmds.drain(..) {
        match c {
            Cmd::Append { reply, body, endpoint, .. } => {
                st.reserved -= stored_size(&endpoint, &body);
                n += 1;
                let _ = reply.send(Err(AppendError::Io(e.to_string())));
            }
            Cmd::Remove { done, .. } => {
                let _ = done.send(());
            }
        }
    }
    st.next_seq = st.next_seq.max(plan.first_seq + n);
    e
}
