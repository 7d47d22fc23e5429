//! Forwarding through the sans-IO core, driven by the harness: one-to-one both ways,
//! fan-out 1:10, a fixed remote, and the rewrite that keeps one continuous stream when a
//! destination's source switches. (Mirrors `loopback.rs`, on a virtual clock.)

mod harness;

use std::time::Duration;

use harness::*;

fn no_reports() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

const PTIME: Duration = Duration::from_millis(20);

#[test]
fn one_to_one_both_ways() {
    let mut h = Harness::new(no_reports());
    let [la, lb] = h.latching_pair();
    let (a, b) = (h.peer(), h.peer());
    // B speaks first (latches leg B); A has no peer yet, so B's packet is held for A.
    h.send_rtp(b, lb, 0xB, 1, 0, b"hello from b");
    assert_eq!(h.stats(lb).peer, Some(b.addr));
    for i in 0..20u16 {
        h.send_rtp(a, la, 0xA, 100 + i, u32::from(i) * 960, &[i as u8; 160]);
        h.advance(PTIME);
    }
    let got = h.take_rtp(b);
    assert_eq!(got.len(), 20);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.from, lb.local, "sent from B's leg");
        assert_eq!((p.ssrc, p.seq), (0xA, 100 + i as u16));
        assert_eq!(p.ts, i as u32 * 960, "timestamps untouched");
        assert_eq!(p.payload, vec![i as u8; 160]);
    }
    // A's first packet latched leg A, which released what B had said before (early media).
    let early = h.take_rtp(a);
    assert_eq!(early.len(), 1, "A receives B's early packet");
    assert_eq!(early[0].from, la.local);
    assert_eq!(early[0].payload, b"hello from b");
    // And back: A has latched, B's packets reach it.
    h.send_rtp(b, lb, 0xB, 2, 960, b"back");
    let back = h.take_rtp(a);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].from, la.local);
    assert_eq!(back[0].payload, b"back");
    let sa = h.stats(la);
    assert_eq!(sa.rtp_in, 20);
    assert_eq!(sa.received, 20);
    assert_eq!(sa.lost, 0);
    assert_eq!(sa.early_held, 1);
    assert_eq!(sa.early_replayed, 1);
    let sb = h.stats(lb);
    assert_eq!(sb.packets_out, 20);
    assert_eq!(sb.drops(DropReason::NoDestination), 0);
    assert!(h.stranger_sink().is_empty());
}

#[test]
fn fan_out_one_to_ten() {
    let mut h = Harness::new(no_reports());
    let s = h.session();
    let legs: Vec<Leg> = (0..11).map(|_| h.add_leg(s, LegOpts::latching())).collect();
    let peers: Vec<Peer> = (0..11).map(|_| h.peer()).collect();
    for k in 1..11 {
        h.connect(legs[0], legs[k]);
        h.send_rtp(peers[k], legs[k], 0x100 + k as u32, 1, 0, b"hi");
    }
    assert!((1..11).all(|k| h.stats(legs[k]).peer == Some(peers[k].addr)));
    for i in 0..15u16 {
        h.send_rtp(peers[0], legs[0], 0x5, i, u32::from(i) * 3000, &[7u8; 900]);
        h.advance(PTIME);
    }
    for k in 1..11 {
        let got = h.take_rtp(peers[k]);
        assert_eq!(got.len(), 15, "destination {k}");
        let seqs: Vec<u16> = got.iter().map(|p| p.seq).collect();
        assert_eq!(seqs, (0..15).collect::<Vec<_>>());
        assert!(got.iter().all(|p| p.ssrc == 0x5 && p.from == legs[k].local));
        assert_eq!(h.stats(legs[k]).packets_out, 15);
    }
    assert_eq!(h.stats(legs[0]).rtp_in, 15);
}

#[test]
fn fixed_remote_leg_sends_without_latching_and_refuses_others() {
    let mut h = Harness::new(no_reports());
    let (a, b, other) = (h.peer(), h.peer(), h.peer());
    let legs = h.session_with([LegOpts::fixed(a.addr), LegOpts::fixed(b.addr)]);
    h.connect_both(legs[0], legs[1]);
    h.send_rtp(a, legs[0], 1, 1, 0, b"to b");
    let got = h.take_rtp(b);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, b"to b");
    h.send_rtp(other, legs[0], 1, 2, 0, b"spoof");
    assert!(h.take(b).is_empty());
    assert!(h.take(other).is_empty());
    assert_eq!(h.stats(legs[0]).drops(DropReason::Stranger), 1);
    // A fixed leg never latches.
    assert_eq!(h.stats(legs[0]).peer, Some(a.addr));
    assert_eq!(h.stats(legs[0]).latches, 0);
}

#[test]
fn rewrite_on_source_switch_gives_one_continuous_stream() {
    let mut h = Harness::new(no_reports());
    let legs = h.session_with((0..3).map(|_| LegOpts::latching()));
    let (s1, s2, d) = (h.peer(), h.peer(), h.peer());
    h.send_rtp(d, legs[2], 0xD, 1, 0, b"latch");
    assert!(h.stats(legs[2]).peer.is_some());
    h.connect(legs[0], legs[2]);
    for i in 0..10u16 {
        let seq = 65_530u16.wrapping_add(i);
        h.send_rtp(s1, legs[0], 0x1111, seq, 1_000 + u32::from(i) * 960, b"s1");
        h.advance(PTIME);
    }
    let first = h.take_rtp(d);
    assert_eq!(first.len(), 10);
    // The trunk fails over: the destination is now fed by another source.
    h.disconnect(legs[0], legs[2]);
    h.connect(legs[1], legs[2]);
    for i in 0..10u16 {
        let ts = 9_000_000 + u32::from(i) * 960;
        h.send_rtp(s2, legs[1], 0x2222, 300 + i, ts, b"s2");
        h.advance(PTIME);
    }
    let second = h.take_rtp(d);
    assert_eq!(second.len(), 10);
    let all: Vec<&Rtp> = first.iter().chain(second.iter()).collect();
    for w in all.windows(2) {
        assert_eq!(w[1].ssrc, 0x1111, "one SSRC throughout");
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence continues");
        let dts = w[1].ts.wrapping_sub(w[0].ts);
        assert!(
            dts > 0 && dts < 48_000 * 5,
            "timestamp moves forward by a plausible step: {dts}"
        );
    }
    // On the virtual clock the step across the switch is exact: 20 ms at 48 kHz.
    assert_eq!(all[10].ts.wrapping_sub(all[9].ts), 960);
    assert_eq!(all[10].payload, b"s2");
    assert_eq!(h.stats(legs[2]).source_switches, 1);
}
