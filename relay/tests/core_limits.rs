//! Limits of the sans-IO core: idle legs freed at their exact timeout with their final
//! statistics in the event, and the per-leg rate cap. (Mirrors `loopback.rs`; on the virtual
//! clock the timeout and the token bucket are checked to the packet and the millisecond.)

mod harness;

use std::time::Duration;

use harness::*;

fn no_reports() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

#[test]
fn idle_legs_are_freed() {
    let mut h = Harness::new(CoreConfig {
        idle_timeout: Duration::from_millis(300),
        ..no_reports()
    });
    let [la, lb] = h.latching_pair();
    let session = la.session;
    assert_eq!(h.leg_count(), 2);
    let a = h.peer();
    h.send_rtp(a, la, 1, 1, 0, b"x");
    let _ = h.events(); // the latch
    // Not a millisecond early...
    h.advance(Duration::from_millis(299));
    assert_eq!(h.leg_count(), 2, "still live before the timeout");
    assert!(h.events().is_empty());
    // ...and freed at the first sweep once 300 ms have passed.
    h.advance(Duration::from_millis(21));
    assert_eq!(h.leg_count(), 0, "both legs freed");
    let mut idle = Vec::new();
    for ev in h.events() {
        let (leg, s, stats) = match ev {
            HarnessEvent::Freed {
                leg,
                session,
                stats,
            } => (leg, session, stats),
            other => panic!("unexpected event {other:?}"),
        };
        assert_eq!(s, session);
        // The final counters come with the event: A's packet was received on leg A and held
        // for leg B (which never latched).
        if leg == la.id {
            assert_eq!(stats.rtp_in, 1);
            assert_eq!(stats.peer, Some(a.addr));
        } else {
            assert_eq!(stats.early_held, 1);
        }
        idle.push(leg);
    }
    idle.sort();
    assert_eq!(idle, vec![la.id, lb.id]);
    assert!(!h.is_live(la) && !h.is_live(lb));
    // The freed ports no longer reach anything.
    h.send_rtp(a, la, 1, 2, 960, b"late");
    assert_eq!(h.unrouted, 1);
    // The ports went back to the pool: a new session gets them, and works.
    let [na, nb] = h.latching_pair();
    let mut again = vec![na.local, nb.local];
    again.sort();
    let mut before = vec![la.local, lb.local];
    before.sort();
    assert_eq!(again, before, "the same two ports, reused");
    let b = h.peer();
    h.send_rtp(b, nb, 2, 1, 0, b"latch");
    h.send_rtp(a, na, 1, 1, 0, b"works");
    assert_eq!(h.take_rtp(b)[0].payload, b"works");
}

#[test]
fn a_leg_that_keeps_receiving_is_not_freed() {
    let mut h = Harness::new(CoreConfig {
        idle_timeout: Duration::from_millis(300),
        ..no_reports()
    });
    let [la, lb] = h.latching_pair();
    let (a, b) = (h.peer(), h.peer());
    for i in 0..50u16 {
        h.send_rtp(a, la, 1, i, u32::from(i) * 960, b"x");
        h.send_rtp(b, lb, 2, i, u32::from(i) * 960, b"y");
        h.advance(Duration::from_millis(20));
    }
    assert_eq!(h.leg_count(), 2, "1 s of traffic, 300 ms timeout");
    // Only B goes quiet: only B's leg is freed.
    for i in 50..70u16 {
        h.send_rtp(a, la, 1, i, u32::from(i) * 960, b"x");
        h.advance(Duration::from_millis(20));
    }
    assert!(h.is_live(la) && !h.is_live(lb));
}

#[test]
fn rate_cap_is_enforced() {
    let mut h = Harness::new(no_reports());
    let cap = RateCap {
        packets_per_sec: 50,
        bytes_per_sec: 0,
        burst_ms: 100,
    };
    let legs = h.session_with([LegOpts::latching().rate_cap(cap), LegOpts::latching()]);
    let (la, lb) = (legs[0], legs[1]);
    h.connect(la, lb);
    let (a, b) = (h.peer(), h.peer());
    h.send_rtp(b, lb, 2, 1, 0, b"latch");
    assert!(h.stats(lb).peer.is_some());
    // A burst of 200 in one instant.
    for i in 0..200u16 {
        h.send_rtp(a, la, 1, i, 0, &[0u8; 100]);
    }
    let got = h.take_rtp(b).len() as u64;
    let limited = h.stats(la).drops(DropReason::RateLimited);
    assert_eq!(
        got + limited,
        200,
        "every packet either forwarded or counted"
    );
    assert!(
        got < 100,
        "a 50 pps cap let {got} of a burst of 200 through"
    );
    assert!(got >= 5, "the burst allowance passes");
    // Exactly the latching packet (the cap applies to the peer, known from its first
    // packet on) plus the burst allowance: 100 ms at 50 pps.
    assert_eq!(got, 1 + 5);
    // At the capped rate (one packet every 20 ms) everything passes.
    h.advance(Duration::from_millis(100));
    for i in 200..250u16 {
        h.send_rtp(a, la, 1, i, 0, &[0u8; 100]);
        h.advance(Duration::from_millis(20));
    }
    assert_eq!(h.take_rtp(b).len(), 50);
    assert_eq!(h.stats(la).drops(DropReason::RateLimited), 194);
}
