//! The relay host's books behind the `/metrics` traffic counters: [`Totals`] of one leg or
//! summed, and [`Books`], which keeps them from ever decreasing as legs come and go.
//!
//! Drive it: [`Books::observe`] every time a leg's statistics are read, [`Books::retire`]
//! when a leg is released or freed (after observing its final statistics), [`Books::totals`]
//! for the counters to expose.

use std::collections::HashMap;

use supernode_relay::LegId;
use supernode_relay::core::{DropReason, LegStats};

/// Traffic counters summed over legs (for `/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Accepted RTP and RTCP packets received from peers.
    pub packets_in: u64,
    /// Bytes of accepted datagrams.
    pub bytes_in: u64,
    /// Datagrams forwarded toward peers.
    pub packets_out: u64,
    /// Bytes forwarded toward peers.
    pub bytes_out: u64,
    /// Drops by reason (indexed like [`DropReason::ALL`]).
    pub drops: [u64; DropReason::COUNT],
    /// Simulcast layer switches toward receivers.
    pub layer_switches: u64,
}

impl Totals {
    /// One leg's counters.
    pub fn of(s: &LegStats) -> Self {
        let c = &s.counters;
        let mut drops = [0; DropReason::COUNT];
        for (t, d) in drops.iter_mut().zip(c.drops.iter()) {
            *t = *d;
        }
        Self {
            packets_in: c.rtp_in + c.rtcp_in,
            bytes_in: c.bytes_in,
            packets_out: c.packets_out,
            bytes_out: c.bytes_out,
            drops,
            layer_switches: c.layer_switches,
        }
    }

    /// Adds other counters to these.
    pub fn add(&mut self, o: &Totals) {
        self.packets_in += o.packets_in;
        self.bytes_in += o.bytes_in;
        self.packets_out += o.packets_out;
        self.bytes_out += o.bytes_out;
        self.layer_switches += o.layer_switches;
        for (t, d) in self.drops.iter_mut().zip(o.drops.iter()) {
            *t += d;
        }
    }
}

/// The books behind the `/metrics` counters, kept so that they never decrease.
///
/// Invariant: the totals reported are `retired + Σ seen`. A live leg's entry in `seen` only
/// grows (it is replaced by fresher counters of the same leg, which the relay only
/// increments); a leg that is released or freed by the idle timeout moves its entry from
/// `seen` into `retired`, which leaves the sum unchanged. A released leg is read just
/// before it is removed, and the relay reports an idle leg's final counters with its
/// `LegIdle` event, so nothing it carried is lost, and nothing counted is ever taken back.
#[derive(Debug, Default)]
pub(crate) struct Books {
    /// Legs released or freed, summed.
    retired: Totals,
    /// The last counters seen of each leg not yet retired.
    seen: HashMap<LegId, Totals>,
}

impl Books {
    pub(crate) fn observe(&mut self, leg: LegId, counters: Totals) {
        self.seen.insert(leg, counters);
    }

    pub(crate) fn retire(&mut self, leg: LegId) {
        if let Some(t) = self.seen.remove(&leg) {
            self.retired.add(&t);
        }
    }

    pub(crate) fn totals(&self) -> Totals {
        let mut t = self.retired.clone();
        for s in self.seen.values() {
            t.add(s);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn books_move_counts_from_live_to_retired_without_losing_or_doubling() {
        let t = |n: u64| Totals {
            packets_in: n,
            bytes_in: 100 * n,
            packets_out: 2 * n,
            bytes_out: 200 * n,
            drops: [n; DropReason::COUNT],
            layer_switches: n,
        };
        let (l1, l2) = (LegId(1), LegId(2));
        let mut b = Books::default();
        b.observe(l1, t(5));
        b.observe(l2, t(3));
        assert_eq!(b.totals(), t(8));
        b.observe(l1, t(7));
        assert_eq!(b.totals(), t(10));
        // Freed: its last counts stay, once.
        b.retire(l1);
        assert_eq!(b.totals(), t(10));
        b.retire(l1);
        assert_eq!(b.totals(), t(10));
        b.retire(LegId(99));
        assert_eq!(b.totals(), t(10));
        b.observe(l2, t(4));
        b.retire(l2);
        assert_eq!(b.totals(), t(11));
        assert_eq!(b.retired, t(11));
        assert!(b.seen.is_empty());
    }
}
