//! One connection's subscription bookkeeping: which channels it should carry, which Mist
//! confirmed, which wait for confirmation and which were refused.
//!
//! Invariant: the `subscriptions` gauge moves exactly with `confirmed` (one up per channel
//! confirmed, one down per confirmed channel left, refused or closed), so summed over
//! connections it is the number of confirmed channels.

use crate::telemetry::poller::StreamMetrics;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;
use tokio::time::Instant;

/// Confirmation attempts after which a connection gives up and reconnects.
const MAX_ATTEMPTS: u32 = 3;

/// A subscription sent and not yet confirmed.
struct Pending {
    deadline: Instant,
    attempts: u32,
}

/// The channels of one connection and their state.
pub(super) struct Subscriptions<'a> {
    wanted: BTreeSet<String>,
    confirmed: HashSet<String>,
    pending: HashMap<String, Pending>,
    refused: HashMap<String, Instant>,
    metrics: &'a StreamMetrics,
}

impl<'a> Subscriptions<'a> {
    /// Nothing sent yet for `wanted`.
    pub(super) fn new(wanted: BTreeSet<String>, metrics: &'a StreamMetrics) -> Self {
        Self { wanted, confirmed: HashSet::new(), pending: HashMap::new(), refused: HashMap::new(), metrics }
    }

    /// The channels this connection should carry.
    pub(super) fn wanted(&self) -> &BTreeSet<String> {
        &self.wanted
    }

    /// Replaces the wanted channels (after [`Self::leave`] for those removed).
    pub(super) fn set_wanted(&mut self, wanted: BTreeSet<String>) {
        self.wanted = wanted;
    }

    /// Whether Mist confirmed at least one channel.
    pub(super) fn any_confirmed(&self) -> bool {
        !self.confirmed.is_empty()
    }

    /// A first subscription for `ch` was sent: expect its confirmation by `deadline`.
    pub(super) fn sent(&mut self, ch: &str, deadline: Instant) {
        self.pending.insert(ch.to_owned(), Pending { deadline, attempts: 1 });
    }

    /// Forgets a channel no longer wanted.
    pub(super) fn leave(&mut self, ch: &str) {
        self.pending.remove(ch);
        self.refused.remove(ch);
        if self.confirmed.remove(ch) {
            self.metrics.subscriptions.dec();
        }
    }

    /// Mist confirmed `ch`; true when it is wanted (and so worth reporting).
    pub(super) fn confirm(&mut self, ch: &str) -> bool {
        if !self.wanted.contains(ch) {
            return false;
        }
        self.pending.remove(ch);
        self.refused.remove(ch);
        if self.confirmed.insert(ch.to_owned()) {
            self.metrics.subscriptions.inc();
        }
        true
    }

    /// Mist refused `ch`: ask again after `retry`. True when it is wanted (worth reporting).
    pub(super) fn refuse(&mut self, ch: &str, retry: Duration) -> bool {
        if !self.wanted.contains(ch) {
            return false;
        }
        self.pending.remove(ch);
        if self.confirmed.remove(ch) {
            self.metrics.subscriptions.dec();
        }
        self.refused.insert(ch.to_owned(), Instant::now() + retry);
        true
    }

    /// Pending channels whose confirmation is overdue at `now`: each is counted as a timeout
    /// and waits longer next time (`timeout` × attempts). They are to be sent again.
    pub(super) fn overdue(&mut self, now: Instant, timeout: Duration) -> Vec<String> {
        let mut resend = Vec::new();
        for (ch, p) in self.pending.iter_mut() {
            if p.deadline <= now {
                self.metrics.subscribe_timeouts.inc();
                p.attempts += 1;
                p.deadline = now + timeout * p.attempts;
                resend.push(ch.clone());
            }
        }
        resend
    }

    /// Whether some channel went unconfirmed through every attempt.
    pub(super) fn gave_up(&self) -> bool {
        self.pending.values().any(|p| p.attempts > MAX_ATTEMPTS)
    }

    /// Refused channels whose wait is over at `now`, moved back to pending; to be sent again.
    pub(super) fn retry_refused(&mut self, now: Instant, timeout: Duration) -> Vec<String> {
        let due: Vec<String> =
            self.refused.iter().filter(|(_, t)| **t <= now).map(|(c, _)| c.clone()).collect();
        for ch in &due {
            self.refused.remove(ch);
            self.pending.insert(ch.clone(), Pending { deadline: now + timeout, attempts: 1 });
        }
        due
    }

    /// The connection is gone: its confirmations no longer count. Returns the channels it
    /// carried.
    pub(super) fn close(self) -> Vec<String> {
        self.metrics.subscriptions.dec_by(self.confirmed.len() as i64);
        self.wanted.into_iter().collect()
    }
}
