//! Memory mode (`buffer.durable: false`): the index holds the bodies too, nothing is written,
//! and an append is kept as soon as it is indexed. Lost on a crash or restart.

use super::config::Overflow;
use super::delivery::Delivery;
use super::index::{Meta, State};
use super::inner::Inner;
use super::record::Loc;
use crate::telemetry::buffer::DropReason;
use bytes::Bytes;
use std::sync::MutexGuard;

impl Inner {
    /// Keeps a delivery of `size` bytes (the cap was checked under `st`); returns its sequence
    /// number.
    pub(super) fn append_in_memory(
        &self,
        mut st: MutexGuard<'_, State>,
        endpoint: &str,
        received_at_ns: u64,
        body: Bytes,
        size: u64,
    ) -> u64 {
        self.make_room(&mut st, size);
        let seq = st.next_seq;
        st.next_seq += 1;
        st.bytes += size;
        st.index.push(seq, Meta { size, received_at_ns, loc: Loc::default() });
        st.mem.push_back(Delivery { seq, endpoint: endpoint.into(), received_at_ns, body });
        self.publish_depth(&st);
        drop(st);
        self.notify.notify_waiters();
        seq
    }

    /// Forgets every delivery with a sequence number ≤ `through`.
    pub(super) fn remove_in_memory(&self, through: u64) {
        let mut st = self.lock();
        let removed = st.remove_through(through);
        let bodies: Vec<Delivery> = st.mem.drain(..removed).collect();
        self.publish_depth(&st);
        drop(st);
        // The bodies are freed after the lock is let go.
        drop(bodies);
    }

    /// Drop-oldest mode: evicts the oldest deliveries until `size` more bytes fit.
    fn make_room(&self, st: &mut State, size: u64) {
        if self.overflow != Overflow::DropOldest {
            return;
        }
        while st.bytes + size > self.max_bytes {
            let Some((_, meta)) = st.index.pop_front() else { break };
            st.mem.pop_front();
            st.bytes -= meta.size;
            self.metrics.drop_count(DropReason::Overflow, 1);
        }
    }
}
