//! The shared port's backlog policy on a virtual clock: a queue that stays more than half
//! full for CoDel's interval is cut, one that drains is restored at once, and neither bursts
//! that drain in time nor a shallow queue behind full batches cut anything.

use std::time::{Duration, Instant};

use supernode_relay::backlog::{BacklogPolicy, SAMPLE_EVERY, SHED_FLOOR, STANDING_AFTER};

const MB: usize = 1 << 20;
/// The kernel's capacity for an 8 MB buffer: twice what was asked for.
const CAPACITY: usize = 16 * MB;

/// Full receives every 100 µs from `t0` for `span`, with the queue at `queued` whenever the
/// policy asks; the changes it asked for, with their times.
fn full_for(
    p: &mut BacklogPolicy,
    t0: Instant,
    span: Duration,
    queued: usize,
) -> Vec<(Duration, usize)> {
    let mut changes = Vec::new();
    let mut at = Duration::ZERO;
    while at <= span {
        let now = t0 + at;
        let change = if p.wants_measure(now) {
            p.measured(now, queued, CAPACITY)
        } else {
            None
        };
        if let Some(bytes) = change {
            changes.push((at, bytes));
        }
        at += Duration::from_micros(100);
    }
    changes
}

#[test]
fn a_queue_standing_more_than_half_full_is_cut_and_restored_when_it_drains() {
    let t0 = Instant::now();
    let mut p = BacklogPolicy::new(8 * MB);
    let deep = CAPACITY / 2 + 1;
    // More than half full for just under the interval: nothing yet.
    let early = full_for(&mut p, t0, STANDING_AFTER - SAMPLE_EVERY, deep);
    assert!(early.is_empty(), "cut too early: {early:?}");
    assert!(!p.is_cut());
    // The measurement that completes the interval cuts the buffer to an eighth, once.
    let at = t0 + STANDING_AFTER;
    assert!(p.wants_measure(at));
    assert_eq!(p.measured(at, deep, CAPACITY), Some(MB));
    assert!(p.is_cut());
    assert!(
        !p.wants_measure(at + Duration::from_secs(1)),
        "no measuring while cut"
    );
    let later = full_for(&mut p, at, Duration::from_secs(2), deep);
    assert!(later.is_empty(), "cut again while cut: {later:?}");
    // A receive that does not fill its batch: the queue drained, the buffer comes back.
    assert_eq!(p.drained(), Some(8 * MB));
    assert!(!p.is_cut());
    assert_eq!(p.drained(), None, "restored only once");
    assert_eq!(p.cuts(), 1);
    // Standing again: a second cut, counted, a whole interval after the first deep
    // measurement.
    let t1 = t0 + Duration::from_secs(5);
    let again = full_for(&mut p, t1, STANDING_AFTER, deep);
    assert_eq!(again, vec![(STANDING_AFTER, MB)]);
    assert_eq!(p.cuts(), 2);
}

#[test]
fn a_shallow_queue_behind_full_batches_is_never_cut() {
    // A worker near its capacity: every receive fills its batch, but the queue behind it is
    // short (exactly half of the buffer here, the most that still counts as shallow).
    let t0 = Instant::now();
    let mut p = BacklogPolicy::new(8 * MB);
    let changes = full_for(&mut p, t0, Duration::from_secs(3), CAPACITY / 2);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(p.cuts(), 0);
}

#[test]
fn deep_bursts_that_drain_within_the_interval_never_cut() {
    // A virtual machine's stall: the queue fills past half, the worker catches up within
    // 60 ms and the next stall comes later; each catch-up ends with a receive that does not
    // fill its batch, or at least a measurement of a shallow queue, which starts the
    // interval over.
    let t0 = Instant::now();
    let mut p = BacklogPolicy::new(8 * MB);
    let burst = Duration::from_millis(60);
    let mut at = t0;
    for k in 0..40 {
        let changes = full_for(&mut p, at, burst, CAPACITY - 1);
        assert!(changes.is_empty(), "a burst cut the buffer: {changes:?}");
        at += burst + SAMPLE_EVERY;
        if k % 2 == 0 {
            assert_eq!(p.drained(), None);
        } else {
            assert!(p.wants_measure(at));
            assert_eq!(p.measured(at, MB, CAPACITY), None);
        }
        at += SAMPLE_EVERY;
    }
    assert_eq!(p.cuts(), 0);
    assert!(!p.is_cut());
}

#[test]
fn measurements_are_spaced() {
    let t0 = Instant::now();
    let mut p = BacklogPolicy::new(8 * MB);
    assert!(p.wants_measure(t0));
    assert_eq!(p.measured(t0, 0, CAPACITY), None);
    assert!(!p.wants_measure(t0 + SAMPLE_EVERY / 2));
    assert!(p.wants_measure(t0 + SAMPLE_EVERY));
}

#[test]
fn the_cut_buffer_has_a_floor_and_never_grows_the_buffer() {
    assert_eq!(BacklogPolicy::new(8 * MB).cut_size(), MB);
    assert_eq!(BacklogPolicy::new(MB).cut_size(), SHED_FLOOR);
    assert_eq!(BacklogPolicy::new(SHED_FLOOR).cut_size(), SHED_FLOOR);
    assert_eq!(BacklogPolicy::new(100 << 10).cut_size(), 100 << 10);
}
