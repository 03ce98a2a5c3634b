//! The index of kept deliveries and the byte accounting against `buffer.max_bytes`.
//!
//! Invariant: `bytes` is the sum of the index entries' sizes; `reserved` is what appends in
//! flight (accepted, not yet committed) will add. The cap is checked against both, so a burst
//! of concurrent appends cannot overshoot it.

use super::delivery::Delivery;
use super::record::{Loc, RECORD_OVERHEAD};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::sync::Arc;

/// Bytes a delivery counts against the cap.
pub(super) fn stored_size(endpoint: &str, body: &[u8]) -> u64 {
    (RECORD_OVERHEAD + endpoint.len().min(u16::MAX as usize) + body.len()) as u64
}

/// What the index knows of a kept delivery.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    /// Bytes counted against the cap (stored frame: body, endpoint and bookkeeping).
    pub size: u64,
    pub received_at_ns: u64,
    /// Where the frame is on disk (durable mode).
    pub loc: Loc,
}

/// The kept deliveries in sequence order. Appends come in increasing order and removals take
/// the oldest, so a deque does it all: removing 100,000 entries under buffer pressure is a run
/// of cheap pops (a B-tree took ~100 ms for that, holding the lock that every request needs).
#[derive(Default)]
pub(super) struct Index(VecDeque<(u64, Meta)>);

impl Index {
    pub fn push(&mut self, seq: u64, meta: Meta) {
        debug_assert!(self.0.back().is_none_or(|(last, _)| *last < seq), "sequence numbers increase");
        self.0.push_back((seq, meta));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn first(&self) -> Option<&(u64, Meta)> {
        self.0.front()
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.0.back().map(|(s, _)| *s)
    }

    /// Entries with sequence numbers ≥ `from`, with their positions.
    pub fn from(&self, from: u64) -> impl Iterator<Item = (usize, &(u64, Meta))> {
        let start = self.0.partition_point(|(s, _)| *s < from);
        self.0.range(start..).enumerate().map(move |(i, e)| (start + i, e))
    }

    /// Bytes of the entries with sequence numbers ≤ `through`, counted from the oldest (a
    /// commit must not walk the whole index).
    pub fn bytes_through(&self, through: u64) -> u64 {
        self.0.iter().take_while(|(s, _)| *s <= through).map(|(_, m)| m.size).sum()
    }

    pub fn pop_front(&mut self) -> Option<(u64, Meta)> {
        self.0.pop_front()
    }
}

/// Everything behind the buffer's one lock.
#[derive(Default)]
pub(super) struct State {
    pub next_seq: u64,
    /// Stored bytes (committed).
    pub bytes: u64,
    /// Bytes accepted for the next commit but not yet written.
    pub reserved: u64,
    pub index: Index,
    /// Bodies, in-memory mode only: the same deliveries as `index`, in the same order.
    pub mem: VecDeque<Delivery>,
    /// Open segment files by id, for readers (durable mode).
    pub files: BTreeMap<u64, Arc<File>>,
}

impl State {
    /// Bytes kept plus bytes reserved by appends in flight.
    pub fn held(&self) -> u64 {
        self.bytes + self.reserved
    }

    /// Removes the index entries with sequence numbers ≤ `through`; returns how many.
    pub fn remove_through(&mut self, through: u64) -> usize {
        let mut n = 0;
        while self.index.first().is_some_and(|(s, _)| *s <= through) {
            if let Some((_, m)) = self.index.pop_front() {
                self.bytes -= m.size;
                n += 1;
            }
        }
        n
    }
}
