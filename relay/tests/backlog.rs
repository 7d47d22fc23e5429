//! The shared port's backlog policy on a virtual clock: a queue that stays full for CoDel's
//! interval is cut, one that drains is restored at once, and bursts that drain in time never
//! cut anything.

use std::time::{Duration, Instant};

use supernode_relay::backlog::{BacklogPolicy, SHED_FLOOR, STANDING_AFTER};

const MB: usize = 1 << 20;

/// Full receives every `every` from `t0` for `span`; the changes the policy asked for.
fn full_for(
    p: &mut BacklogPolicy,
    t0: Instant,
    span: Duration,
    every: Duration,
) -> Vec<(Duration, usize)> {
    let mut changes = Vec::new();
    let mut at = Duration::ZERO;
    while at <= span {
        if let Some(bytes) = p.after_receive(t0 + at, true) {
            changes.push((at, bytes));
        }
        at += every;
    }
    changes
}

#[test]
fn a_queue_full_for_the_interval_is_cut_and_restored_when_it_drains() {
    let t0 = Instant::now();
    let mut p = BacklogPolicy::new(8 * MB);
    let tick = Duration::from_micros(125);
    // Full receives for just under the interval: nothing yet.
    let early = full_for(&mut p, t0, STANDING_AFTER - tick, tick);
    assert!(early.is_empty(), "cut too early: {early:?}");
    assert!(!p.is_cut());
    // The receive that completes the interval cuts the buffer to an eighth, once.
    assert_eq!(p.after_receive(t0 + STANDING_AFTER, true), Some(MB));
    assert!(p.is_cut());
    let later = full_for(
        &mut p,
        t0 + STANDING_AFTER + tick,
        Duration::from_secs(2),
        tick,
    );
    assert!(later.is_empty(), "cut again while cut: {later:?}");
    // A receive that does not fill its batch: the queue drained, the buffer comes back.
    let t1 = t0 + Duration::from_secs(3);
    assert_eq!(p.after_receive(t1, false), Some(8 * MB));
    assert!(!p.is_cut());
    assert_eq!(
        p.after_receive(t1 + tick, false),
        None,
        "restored only once"
    );
    assert_eq!(p.cuts(), 1);
    // Standing again: a second cut, counted.
    let again = full_for(&mut p, t1 + 2 * tick, STANDING_AFTER, tick);
    assert_eq!(again, vec![(STANDING_AFTER, MB)]);
    assert_eq!(p.cuts(), 2);
}

#[test]
fn bursts_that_drain_within_the_interval_never_cut() {
    // A virtual machine's stall at normal load: the queue fills, the worker catches up in
    // 60 ms, and the next stall comes later. Each catch-up ends with a receive that does not
    // fill its batch, which starts the interval over.
    let t0 = Instant::now();
    let mut p = BacklogPolicy::new(8 * MB);
    let tick = Duration::from_micros(200);
    let mut at = t0;
    for _ in 0..50 {
        let changes = full_for(&mut p, at, Duration::from_millis(60), tick);
        assert!(changes.is_empty(), "a burst cut the buffer: {changes:?}");
        at += Duration::from_millis(60) + tick;
        assert_eq!(p.after_receive(at, false), None);
        at += tick;
    }
    assert_eq!(p.cuts(), 0);
    assert!(!p.is_cut());
}

#[test]
fn the_cut_buffer_has_a_floor_and_never_grows_the_buffer() {
    assert_eq!(BacklogPolicy::new(8 * MB).cut_size(), MB);
    assert_eq!(BacklogPolicy::new(MB).cut_size(), SHED_FLOOR);
    assert_eq!(BacklogPolicy::new(SHED_FLOOR).cut_size(), SHED_FLOOR);
    assert_eq!(BacklogPolicy::new(100 << 10).cut_size(), 100 << 10);
}
