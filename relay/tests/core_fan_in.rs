//! Fan-in through the sans-IO core: several legs of one session talking at once must reach
//! every other leg as separate, intact streams (distinct SSRCs; per source continuous
//! sequence numbers and timestamps; every payload present, in order).
//!
//! These fail on the leg-based core (one rewriter per destination, which "switches source" on
//! every packet and folds the talkers into one renumbered stream) and are fixed by the
//! streams refactor of issue 10.

mod harness;

use std::collections::BTreeMap;
use std::time::Duration;

use harness::*;

const PACKETS: u16 = 50;
const TICKS: u32 = 960;

fn config() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

/// The SSRC, first sequence number and first timestamp of talker `k` (sequence numbers of
/// talker 1 wrap during the test).
fn talker(k: usize) -> (u32, u16, u32) {
    let k32 = k as u32;
    (
        0xA000 + k32,
        (k as u16).wrapping_mul(30_000).wrapping_add(65_500),
        1_000 + k32 * 7_777_777,
    )
}

/// Payload of packet `i` of talker `k`: who, which, and some body.
fn payload(k: usize, i: u16) -> Vec<u8> {
    let mut p = vec![k as u8, (i >> 8) as u8, i as u8];
    p.extend_from_slice(&[0x5A; 80]);
    p
}

/// A session of `n` latching legs; every peer latches its leg (before any route exists, so
/// nothing is forwarded or held), then every leg is connected to every other (the relay
/// REST API's session), then `talkers` legs talk at once for `PACKETS` packets of 20 ms.
fn run(n: usize, talkers: usize) -> (Harness, Vec<Leg>, Vec<Peer>) {
    let mut h = Harness::new(config());
    let legs = h.session_with((0..n).map(|_| LegOpts::latching()));
    let peers: Vec<Peer> = (0..n).map(|_| h.peer()).collect();
    for k in 0..n {
        let (ssrc, seq, ts) = talker(k);
        h.send_rtp(
            peers[k],
            legs[k],
            ssrc,
            seq.wrapping_sub(1),
            ts.wrapping_sub(TICKS),
            b"latch",
        );
        assert_eq!(h.stats(legs[k]).peer, Some(peers[k].addr));
    }
    h.connect_all(&legs);
    for &p in &peers {
        let _ = h.take(p);
    }
    for i in 0..PACKETS {
        for k in 0..talkers {
            let (ssrc, seq, ts) = talker(k);
            h.send_rtp(
                peers[k],
                legs[k],
                ssrc,
                seq.wrapping_add(i),
                ts.wrapping_add(u32::from(i) * TICKS),
                &payload(k, i),
            );
        }
        h.advance(Duration::from_millis(20));
    }
    (h, legs, peers)
}

/// Checks that `peer` received each talker in `from` as one intact stream of its own.
fn assert_intact_streams(h: &Harness, who: usize, peer: Peer, from: &[usize]) {
    let got = h.rtp(peer);
    let mut by_ssrc: BTreeMap<u32, Vec<&Rtp>> = BTreeMap::new();
    for p in &got {
        by_ssrc.entry(p.ssrc).or_default().push(p);
    }
    assert_eq!(
        by_ssrc.len(),
        from.len(),
        "leg {who}: one SSRC per talker, got SSRCs {:x?} for {} packets",
        by_ssrc.keys().collect::<Vec<_>>(),
        got.len()
    );
    let mut talkers_seen = Vec::new();
    for (ssrc, stream) in &by_ssrc {
        let k = stream[0].payload[0] as usize;
        assert!(
            from.contains(&k),
            "leg {who}: SSRC {ssrc:x} carries talker {k}"
        );
        talkers_seen.push(k);
        assert_eq!(
            stream.len(),
            PACKETS as usize,
            "leg {who}: every packet of talker {k} under SSRC {ssrc:x}"
        );
        for (i, p) in stream.iter().enumerate() {
            assert_eq!(
                p.payload,
                payload(k, i as u16),
                "leg {who}: talker {k}'s packet {i} in order, nothing mixed in"
            );
        }
        for w in stream.windows(2) {
            assert_eq!(
                w[1].seq,
                w[0].seq.wrapping_add(1),
                "leg {who}: talker {k}'s sequence numbers continue"
            );
            assert_eq!(
                w[1].ts.wrapping_sub(w[0].ts),
                TICKS,
                "leg {who}: talker {k}'s timestamps advance by one packet"
            );
        }
    }
    talkers_seen.sort();
    assert_eq!(talkers_seen, from, "leg {who}: each talker exactly once");
}

#[test]
#[ignore = "fan-in: fixed by the streams refactor (issue 10)"]
fn three_legs_two_talking_deliver_two_intact_streams() {
    let (h, legs, peers) = run(3, 2);
    // The listener hears both talkers; each talker hears the other.
    assert_intact_streams(&h, 2, peers[2], &[0, 1]);
    assert_intact_streams(&h, 0, peers[0], &[1]);
    assert_intact_streams(&h, 1, peers[1], &[0]);
    assert_eq!(h.stats(legs[2]).packets_out, 2 * u64::from(PACKETS));
    for leg in &legs {
        // Nothing dropped but each peer's latching packet, sent before any route existed.
        let st = h.stats(*leg);
        assert_eq!(st.drops(DropReason::NoDestination), 1);
        assert_eq!(st.total_drops(), 1);
    }
}

#[test]
#[ignore = "fan-in: fixed by the streams refactor (issue 10)"]
fn sixteen_legs_four_talking_deliver_every_stream_intact() {
    let (h, legs, peers) = run(16, 4);
    for k in 0..16 {
        let from: Vec<usize> = (0..4).filter(|&t| t != k).collect();
        assert_intact_streams(&h, k, peers[k], &from);
        assert_eq!(
            h.stats(legs[k]).packets_out,
            from.len() as u64 * u64::from(PACKETS)
        );
    }
}

/// What works today and must keep working: one talker in a mesh reaches everyone intact.
#[test]
fn one_talker_in_a_mesh_reaches_every_leg_intact() {
    let (h, _legs, peers) = run(16, 1);
    for (k, &p) in peers.iter().enumerate().skip(1) {
        assert_intact_streams(&h, k, p, &[0]);
    }
    assert!(h.rtp(peers[0]).is_empty(), "nobody else talks");
}
