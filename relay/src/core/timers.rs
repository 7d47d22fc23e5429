//! The core's timers: one min-heap of `(due, transport slot, generation)`. Each transport has
//! one entry, due at the earlier of its next report and its idle deadline; a packet never
//! touches the heap (the idle deadline is checked, and the entry pushed again, when it comes
//! due). An entry whose slot has since been freed or reused (another generation) is skipped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// The heap of transport timers.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl Timers {
    /// Schedules transport `slot` (of `generation`) at `due`.
    pub fn schedule(&mut self, due: Instant, slot: u32, generation: u32) {
        self.heap.push(Reverse((due, slot, generation)));
    }

    /// The earliest due time.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// The next entry due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, u32, u32)> {
        match self.heap.peek() {
            Some(Reverse((t, _, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries (live or stale).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_due_order_and_only_when_due() {
        let t = Instant::now();
        let mut h = Timers::default();
        h.schedule(t + Duration::from_millis(30), 3, 0);
        h.schedule(t + Duration::from_millis(10), 1, 0);
        h.schedule(t + Duration::from_millis(20), 2, 7);
        assert_eq!(h.next(), Some(t + Duration::from_millis(10)));
        assert!(h.pop_due(t).is_none());
        let due: Vec<_> = std::iter::from_fn(|| h.pop_due(t + Duration::from_millis(25)))
            .map(|(_, s, g)| (s, g))
            .collect();
        assert_eq!(due, vec![(1, 0), (2, 7)]);
        assert_eq!(h.len(), 1);
    }
}
