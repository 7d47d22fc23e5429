//! Trunks through the sans-IO core (virtual clock, no sockets): a trunk end re-keyed when
//! its call resumes on another node, and NACKs across a trunk.
//!
//! - **Re-key on resume.** The anchor's trunk end carries a stream past its first sequence
//!   wrap to a far relay; that relay dies and a fresh one (fresh SRTP contexts, as a new node
//!   has) takes its place. Under the old keys the fresh end could not decode the stream
//!   (its receive context starts at rollover counter 0, the anchor's send context is at 1)
//!   and the anchor would drop the fresh end's SRTCP as replays (its index restarts at 0).
//!   After a re-key both sides start fresh contexts: the fresh end decodes at once, its
//!   SRTCP is taken at once, and the dead end's keys are refused (dropped and counted).
//! - **NACK across a trunk.** Two cores (two harnesses, the trunk's datagrams carried
//!   between them by the test): a receiver's NACK is answered by the nearest relay whose
//!   retransmission cache has the packet; a packet lost on the trunk is asked of the far
//!   relay, and one lost before any relay got it is asked of the sender.

mod harness;

use std::time::Duration;

use harness::*;
use supernode_media::packet::rtcp::{RtcpCompound, RtcpPacket};
use supernode_relay::core::NackCachePolicy;

fn no_reports() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        // Every packet kept from the start (not from the first NACK): this test is about
        // what the cache answers.
        nack_cache_policy: NackCachePolicy::Always,
        ..CoreConfig::default()
    }
}

const PROFILE: SrtpProfile = SrtpProfile::Aes128CmHmacSha1_80;
/// The trunk's payload type map: the harness's packets (PT 111) on a 90 kHz clock, i.e.
/// video, the streams the relay keeps for retransmission.
const VIDEO: [(u8, u32); 1] = [(111, 90_000)];

/// The RTP sequence number of a datagram (in the clear in SRTP too).
fn seq_of(d: &Datagram) -> u16 {
    u16::from_be_bytes([d.data[2], d.data[3]])
}

/// The media SSRCs of every PLI in the RTCP compounds `rtcp`.
fn plis(rtcp: &[Vec<u8>]) -> Vec<u32> {
    let mut out = Vec::new();
    for c in rtcp {
        for p in RtcpCompound::parse(c).flatten() {
            if let RtcpPacket::Pli(p) = p {
                out.push(p.media_ssrc.0);
            }
        }
    }
    out
}

#[test]
fn a_rekeyed_trunk_end_serves_a_fresh_far_end_past_the_first_wrap() {
    let mut h = Harness::new(CoreConfig {
        keyframe_min_interval: Duration::ZERO,
        ..no_reports()
    });
    let (k1, mut old) = srtp_pair(PROFILE, 1);
    let legs = h.session_with([
        LegOpts::latching().clock_rate(90_000),
        LegOpts::latching().srtp(k1).clock_rates(&VIDEO),
    ]);
    let (la, lt) = (legs[0], legs[1]);
    h.connect_both(la, lt);
    let (alice, dead, fresh) = (h.peer(), h.peer(), h.peer());
    // The far relay's end (later killed) is heard first: the anchor's end latches onto it.
    h.send(dead, lt, &old.protect_rtp(&rtp(0xB0B, 1, 0, b"latch")));
    assert_eq!(h.stats(lt).peer, Some(dead.addr));
    // Alice's stream crosses the trunk through its first sequence wrap.
    let mut ts = 0u32;
    for seq in (65_530..=65_535).chain(0..=5u16) {
        h.send_rtp(alice, la, 0xA11CE, seq, ts, b"before");
        ts += 960;
        h.advance(Duration::from_millis(20));
    }
    let crossed: Vec<Datagram> = h.take(dead).into_iter().filter(|d| d.is_rtp()).collect();
    assert_eq!(crossed.len(), 12);
    let seqs: Vec<u16> = crossed.iter().map(seq_of).collect();
    assert_eq!(seqs[5], 65_535);
    assert_eq!(seqs[6], 0, "the stream wrapped on the trunk: {seqs:?}");
    let trunk_ssrc = u32::from_be_bytes(crossed[0].data[8..12].try_into().unwrap());
    for d in &crossed {
        let p = old.unprotect_rtp(&d.data).expect("the old far end decodes");
        assert_eq!(fields(&p).3, b"before");
    }
    // What a new node would meet under the same keys (the defect a re-key removes): a
    // fresh receive context (rollover counter 0) cannot authenticate a packet sent at
    // rollover counter 1 ...
    let (_, mut same_keys_fresh) = srtp_pair(PROFILE, 1);
    assert!(
        same_keys_fresh
            .unprotect_rtp(&crossed.last().unwrap().data)
            .is_none(),
        "a fresh context under the old keys fails past the wrap"
    );
    // ... and its SRTCP, indexed from 0 again, is refused as replays when it comes under a
    // sender SSRC the old end used (the SSRC salt of a new end makes that unlikely, the
    // re-key makes it impossible).
    for _ in 0..3 {
        h.send(dead, lt, &old.protect_rtcp(&pli(0xB0B, trunk_ssrc)));
    }
    let heard = h.stats(lt);
    assert_eq!(heard.keyframe_requests_in, 3);
    h.send(
        dead,
        lt,
        &same_keys_fresh.protect_rtcp(&pli(0xB0B, trunk_ssrc)),
    );
    let after = h.stats(lt);
    assert_eq!(
        after.keyframe_requests_in, heard.keyframe_requests_in,
        "SRTCP index 0 under the old keys is a replay"
    );
    assert_eq!(
        after.drops(DropReason::SrtpAuth),
        heard.drops(DropReason::SrtpAuth) + 1
    );
    let _ = h.take(alice);

    // The call resumes on another node: the anchor re-keys its end, the new node's end
    // starts fresh contexts under the new keys.
    let (k2, mut new) = srtp_pair(PROFILE, 2);
    h.set_srtp(lt, Some(k2));
    // The new node's first media packet authenticates under the new keys and moves the
    // latching end there; its SRTCP is then taken at once, even under the sender SSRC the
    // dead end used.
    h.send(fresh, lt, &new.protect_rtp(&rtp(0xF2E5, 1, 0, b"resumed")));
    assert_eq!(
        h.stats(lt).peer,
        Some(fresh.addr),
        "the trunk moved to the new node"
    );
    let at_alice = h.take_rtp(alice);
    assert!(
        at_alice.iter().any(|p| p.payload == b"resumed"),
        "the new node's media reaches alice: {at_alice:?}"
    );
    let before = h.stats(lt);
    h.send(fresh, lt, &new.protect_rtcp(&pli(0xB0B, trunk_ssrc)));
    let s = h.stats(lt);
    assert_eq!(s.keyframe_requests_in, before.keyframe_requests_in + 1);
    assert_eq!(
        s.drops(DropReason::SrtpAuth),
        before.drops(DropReason::SrtpAuth)
    );
    assert_eq!(
        plis(&h.rtcp(alice)),
        vec![0xA11CE],
        "alice is asked for a keyframe"
    );
    let _ = h.take(alice);
    // Alice's stream goes on (sequence numbers past the wrap); the fresh end decodes
    // every packet.
    for seq in 6..=11u16 {
        h.send_rtp(alice, la, 0xA11CE, seq, ts, b"after");
        ts += 960;
        h.advance(Duration::from_millis(20));
    }
    let got: Vec<Datagram> = h.take(fresh).into_iter().filter(|d| d.is_rtp()).collect();
    assert_eq!(got.len(), 6);
    assert!(h.take(dead).is_empty(), "nothing goes to the dead node");
    for (d, seq) in got.iter().zip(6u16..) {
        let p = new
            .unprotect_rtp(&d.data)
            .expect("the fresh far end decodes");
        let (ssrc, s, _, payload) = fields(&p);
        assert_eq!(
            (ssrc, s, payload.as_slice()),
            (trunk_ssrc, seq, &b"after"[..])
        );
    }
    // A NACK for a packet sent before the re-key is not answered with bytes protected under
    // the old keys (the cache was forgotten); one for a packet since is.
    let fresh_view = h.stats(lt);
    h.send(
        fresh,
        lt,
        &new.protect_rtcp(&nack(0xF2E5, trunk_ssrc, &[(3, 0)])),
    );
    assert!(
        h.take(fresh).is_empty(),
        "no old-key retransmission toward the new node"
    );
    assert_eq!(h.stats(lt).nack_misses, fresh_view.nack_misses + 1);
    // A receiver that got 6 and missed 7 (a fresh context under the new keys) gets 7
    // retransmitted under the new keys.
    let (_, mut lossy) = srtp_pair(PROFILE, 2);
    let _ = lossy.unprotect_rtp(&got[0].data).expect("decodes");
    h.send(
        fresh,
        lt,
        &new.protect_rtcp(&nack(0xF2E5, trunk_ssrc, &[(7, 0)])),
    );
    let re: Vec<Datagram> = h.take(fresh).into_iter().filter(|d| d.is_rtp()).collect();
    assert_eq!(re.len(), 1);
    let p = lossy
        .unprotect_rtp(&re[0].data)
        .expect("a retransmission under the new keys");
    assert_eq!(fields(&p).1, 7);
    // (The miss of 3 was asked of alice, the sender.)
    assert_eq!(nacks(&h.rtcp(alice)), vec![(0xA11CE, vec![3])]);
    let _ = h.take(alice);
    // The dead node's keys are refused now: from its old address (no longer the peer) a
    // packet that does not authenticate under the new keys is a stranger's, dropped and
    // counted, never forwarded, and the trunk stays with the new node.
    let s = h.stats(lt);
    h.send(dead, lt, &old.protect_rtp(&rtp(0xB0B, 2, 960, b"zombie")));
    h.send(dead, lt, &old.protect_rtcp(&pli(0xB0B, trunk_ssrc)));
    let z = h.stats(lt);
    assert_eq!(
        z.drops(DropReason::Stranger),
        s.drops(DropReason::Stranger) + 2
    );
    // Nor from the new node's address (old keys, a forged or stale packet): `srtp_auth`.
    h.send(fresh, lt, &old.protect_rtp(&rtp(0xB0B, 3, 1920, b"zombie")));
    assert_eq!(
        h.stats(lt).drops(DropReason::SrtpAuth),
        z.drops(DropReason::SrtpAuth) + 1
    );
    assert_eq!(z.rtp_in, s.rtp_in);
    assert_eq!(z.keyframe_requests_in, s.keyframe_requests_in);
    assert_eq!(z.peer, Some(fresh.addr));
    assert!(
        h.take(alice).is_empty(),
        "nothing from the dead node reaches alice"
    );
}

/// Re-anchoring on the node that did not make the trunk: its end is aimed at the anchor
/// (fixed). The anchor dies and the caller resumes on a third node; this node re-keys its
/// end, which then keeps its old aim until a packet that authenticates under the new keys
/// comes from the third node, and moves there. A stranger (or the dead anchor's keys) cannot
/// move it.
#[test]
fn a_fixed_trunk_end_rekeyed_moves_to_the_new_keys_holder_only() {
    let mut h = Harness::new(no_reports());
    let (k1, mut old) = srtp_pair(PROFILE, 3);
    let (dead, bob, third, stranger) = (h.peer(), h.peer(), h.peer(), h.peer());
    let legs = h.session_with([
        LegOpts::latching().clock_rate(90_000),
        LegOpts::fixed(dead.addr).srtp(k1).clock_rates(&VIDEO),
    ]);
    let (lb, lt) = (legs[0], legs[1]);
    h.connect_both(lb, lt);
    // Before: the fixed end takes the anchor's media, and a stranger's packet under valid
    // keys cannot move it.
    h.send(dead, lt, &old.protect_rtp(&rtp(0xA, 1, 0, b"from-anchor")));
    assert!(h.take_rtp(bob).is_empty(), "bob has not latched yet");
    h.send_rtp(bob, lb, 0xB0B, 1, 0, b"bob");
    h.send(stranger, lt, &old.protect_rtp(&rtp(0xA, 2, 960, b"stolen")));
    assert_eq!(h.stats(lt).peer, Some(dead.addr));
    assert_eq!(h.stats(lt).drops(DropReason::Stranger), 1);
    let _ = h.take(dead);
    let _ = h.take(bob);

    // The anchor died; the call is re-anchored here: fresh keys.
    let (k2, mut new) = srtp_pair(PROFILE, 4);
    h.set_srtp(lt, Some(k2));
    // Until the third node is heard, bob's media still goes to the old aim.
    h.send_rtp(bob, lb, 0xB0B, 2, 960, b"bob");
    assert_eq!(h.take(dead).iter().filter(|d| d.is_rtp()).count(), 1);
    // The dead anchor's keys (from anywhere) move nothing.
    h.send(stranger, lt, &old.protect_rtp(&rtp(0xA, 3, 1920, b"stale")));
    h.send(dead, lt, &old.protect_rtp(&rtp(0xA, 4, 2880, b"stale")));
    assert_eq!(h.stats(lt).peer, Some(dead.addr));
    assert!(h.take_rtp(bob).is_empty(), "nothing stale reaches bob");
    // The third node's first packet under the new keys moves the end there.
    h.send(third, lt, &new.protect_rtp(&rtp(0xC, 1, 0, b"resumed")));
    assert_eq!(
        h.stats(lt).peer,
        Some(third.addr),
        "moved to the third node"
    );
    assert!(
        h.take_rtp(bob).iter().any(|p| p.payload == b"resumed"),
        "the caller's media reaches bob again"
    );
    h.send_rtp(bob, lb, 0xB0B, 3, 1920, b"bob");
    let to_third: Vec<Datagram> = h.take(third).into_iter().filter(|d| d.is_rtp()).collect();
    assert_eq!(to_third.len(), 1);
    let (_, mut third_rx) = srtp_pair(PROFILE, 4);
    let p = third_rx
        .unprotect_rtp(&to_third[0].data)
        .expect("protected under the new keys");
    assert_eq!(fields(&p).3, b"bob");
    assert!(h.take(dead).is_empty(), "nothing goes to the dead anchor");
}

/// Two relays (two cores) joined by a trunk: A (alice's leg `la`, trunk end `ta`, latching)
/// and B (trunk end `tb` aimed at A's, bob's leg `lb`). In each harness a peer stands for
/// the other relay's trunk end: `pb` in A, `pa` in B.
struct Trunked {
    a: Harness,
    b: Harness,
    la: Leg,
    ta: Leg,
    tb: Leg,
    lb: Leg,
    pb: Peer,
    pa: Peer,
    alice: Peer,
    bob: Peer,
}

impl Trunked {
    fn new() -> Self {
        let (mut a, mut b) = (Harness::new(no_reports()), Harness::new(no_reports()));
        let (ka, _) = srtp_pair(PROFILE, 7);
        let kb = RelaySrtpKeys {
            inbound: ka.outbound.clone(),
            outbound: ka.inbound.clone(),
        };
        let (pb, alice) = (a.peer(), a.peer());
        let (pa, bob) = (b.peer(), b.peer());
        let l = a.session_with([
            LegOpts::latching().clock_rate(90_000),
            LegOpts::latching().srtp(ka).clock_rates(&VIDEO),
        ]);
        a.connect_both(l[0], l[1]);
        let r = b.session_with([
            LegOpts::fixed(pa.addr).srtp(kb).clock_rates(&VIDEO),
            LegOpts::latching().clock_rate(90_000),
        ]);
        b.connect_both(r[0], r[1]);
        Self {
            a,
            b,
            la: l[0],
            ta: l[1],
            tb: r[0],
            lb: r[1],
            pb,
            pa,
            alice,
            bob,
        }
    }

    /// Carries the trunk's datagrams both ways until none is left, except RTP from A to B
    /// whose sequence number is in `lose` (lost on the trunk).
    fn carry(&mut self, lose: &[u16]) {
        loop {
            let mut moved = 0;
            for d in self.a.take(self.pb) {
                moved += 1;
                if d.is_rtp() && lose.contains(&seq_of(&d)) {
                    continue;
                }
                self.b.send(self.pa, self.tb, &d.data);
            }
            for d in self.b.take(self.pa) {
                moved += 1;
                self.a.send(self.pb, self.ta, &d.data);
            }
            if moved == 0 {
                return;
            }
        }
    }
}

#[test]
fn a_nack_across_a_trunk_is_answered_by_the_nearest_cache_that_has_the_packet() {
    let mut t = Trunked::new();
    let (alice, bob) = (t.alice, t.bob);
    // Bob, then alice, latch their legs; A's trunk end latches onto B's.
    t.b.send_rtp(bob, t.lb, 0xB0B, 1, 0, b"latch");
    t.carry(&[]);
    assert_eq!(t.a.stats(t.ta).peer, Some(t.pb.addr));
    t.a.send_rtp(alice, t.la, 0xA11CE, 100, 0, b"v100");
    t.carry(&[]);
    let _ = (t.a.take(alice), t.b.take(bob));
    // Video 101..=110: 105 is lost on the trunk, 108 between B and bob.
    for seq in 101..=110u16 {
        t.a.send_rtp(
            alice,
            t.la,
            0xA11CE,
            seq,
            u32::from(seq) * 3000,
            &[seq as u8; 200],
        );
        t.carry(&[105]);
        t.a.advance(Duration::from_millis(10));
        t.b.advance(Duration::from_millis(10));
    }
    let got = t.b.take_rtp(bob);
    let seen: Vec<u16> = got.iter().map(|p| p.seq).filter(|s| *s != 108).collect();
    assert_eq!(seen, vec![101, 102, 103, 104, 106, 107, 109, 110]);
    let media = got[0].ssrc;
    // Bob NACKs 105 and 108. B's cache has 108 (sent toward bob): answered there. It never
    // got 105: asked of A over the trunk, whose cache has it.
    t.b.send(bob, t.lb, &nack(0xB0B, media, &[(105, 0b100)]));
    t.carry(&[]);
    let mut re = t.b.take_rtp(bob);
    re.sort_by_key(|p| p.seq);
    assert_eq!(
        re.iter()
            .map(|p| (p.seq, p.payload.clone()))
            .collect::<Vec<_>>(),
        vec![(105, vec![105u8; 200]), (108, vec![108u8; 200])],
        "both lost packets reach bob"
    );
    let (lb, tb, ta) = (t.b.stats(t.lb), t.b.stats(t.tb), t.a.stats(t.ta));
    assert_eq!((lb.nack_retransmits, lb.nack_misses), (1, 1));
    assert_eq!(tb.nacks_out, 1, "B asked A for 105 only");
    assert_eq!((ta.nack_retransmits, ta.nack_misses), (1, 0));
    assert!(
        nacks(&t.a.rtcp(alice)).is_empty(),
        "the sender is not bothered when a relay had the packet"
    );
    assert_eq!(
        tb.drops(DropReason::SrtpAuth),
        0,
        "the retransmission crossed the trunk authenticated"
    );
    // 111 never reached A (lost on alice's uplink): bob's NACK travels to alice.
    t.a.send_rtp(alice, t.la, 0xA11CE, 112, 112 * 3000, &[112u8; 200]);
    t.carry(&[]);
    assert_eq!(t.b.take_rtp(bob).len(), 1);
    t.b.send(bob, t.lb, &nack(0xB0B, media, &[(111, 0)]));
    t.carry(&[]);
    assert_eq!(
        nacks(&t.a.rtcp(alice)),
        vec![(0xA11CE, vec![111])],
        "alice is asked for her own packet"
    );
    assert_eq!(t.a.stats(t.la).nacks_out, 1);
    t.a.send_rtp(alice, t.la, 0xA11CE, 111, 111 * 3000, &[111u8; 200]);
    t.carry(&[]);
    let late = t.b.take_rtp(bob);
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].seq, late[0].payload.clone()),
        (111, vec![111u8; 200])
    );
}
