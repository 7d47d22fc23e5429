//! Latching through the sans-IO core: the first packet latches, strangers and other SSRCs
//! are refused and counted, shared-port legs are found by SSRC then address (or by STUN
//! username), and a STUN binding request with the leg's credentials moves the latch while
//! bad credentials do not. (Mirrors `loopback.rs` and `srtp.rs`, on a virtual clock.)

mod harness;

use std::time::Duration;

use harness::*;
use supernode_media::packet::stun::{Class, StunMessage, TransactionId};

fn no_reports() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

#[test]
fn latching_learns_first_and_refuses_strangers_and_wrong_ssrc() {
    let mut h = Harness::new(no_reports());
    // A may send one stream: any other SSRC from A is a wrong SSRC.
    let legs = h.session_with([LegOpts::latching().max_streams(1), LegOpts::latching()]);
    let (la, lb) = (legs[0], legs[1]);
    h.connect_both(la, lb);
    let (a, b, stranger) = (h.peer(), h.peer(), h.peer());
    h.send_rtp(b, lb, 0xB, 1, 0, b"latch");
    h.send_rtp(a, la, 0xA, 1, 0, b"first");
    let got = h.take_rtp(b);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, b"first");
    // A stranger with A's SSRC: dropped, counted, never forwarded.
    for i in 0..5u16 {
        h.send_rtp(stranger, la, 0xA, 2 + i, 0, b"evil");
    }
    // A itself with a different SSRC: dropped as wrong SSRC.
    for i in 0..3u16 {
        h.send_rtp(a, la, 0xEE, 10 + i, 0, b"other stream");
    }
    // Garbage from A: malformed.
    h.send(a, la, &[0x80, 0x60, 0x00]);
    h.send_rtp(a, la, 0xA, 3, 0, b"second");
    let got = h.take_rtp(b);
    assert_eq!(got.len(), 1, "only A's own stream passes");
    assert_eq!(got[0].payload, b"second");
    assert!(h.take(stranger).is_empty());
    let s = h.stats(la);
    assert_eq!(s.peer, Some(a.addr), "the latch did not move");
    assert_eq!(s.drops(DropReason::Stranger), 5);
    assert_eq!(s.drops(DropReason::WrongSsrc), 3);
    assert_eq!(
        s.drops(DropReason::Unsupported) + s.drops(DropReason::Malformed),
        1
    );
    assert_eq!(s.latches, 1);
    assert_eq!(s.rtp_in, 2);
    // The control plane heard about both latches, and nothing else.
    let latched: Vec<(LegId, std::net::SocketAddr)> = h
        .events()
        .into_iter()
        .map(|e| match e {
            HarnessEvent::Latched { leg, addr } => (leg, addr),
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(latched, vec![(lb.id, b.addr), (la.id, a.addr)]);
}

#[test]
fn shared_port_legs_are_told_apart_by_ssrc_then_address() {
    let mut h = Harness::new(no_reports());
    let legs = h.session_with([
        LegOpts::latching().shared().expected_ssrc(0xA),
        LegOpts::latching().shared().expected_ssrc(0xB),
    ]);
    let (la, lb) = (legs[0], legs[1]);
    assert_eq!(la.local, lb.local, "one port for both");
    h.connect_both(la, lb);
    let (a, b, stranger) = (h.peer(), h.peer(), h.peer());
    h.send_rtp(b, lb, 0xB, 1, 0, b"b latches");
    assert_eq!(h.stats(lb).peer, Some(b.addr));
    h.send_rtp(a, la, 0xA, 1, 0, b"a to b");
    assert_eq!(h.take_rtp(b)[0].payload, b"a to b");
    // A's first packet latched it and released B's early packet, held for A until then.
    assert_eq!(h.take_rtp(a)[0].payload, b"b latches");
    h.send_rtp(b, lb, 0xB, 2, 960, b"b to a");
    let got = h.take_rtp(a);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, b"b to a");
    assert_eq!(got[0].from, la.local, "from the shared port");
    // A stranger claiming A's SSRC once A has latched, and one with an unknown SSRC.
    h.send_rtp(stranger, la, 0xA, 5, 0, b"evil");
    h.send_rtp(stranger, la, 0xC, 5, 0, b"evil");
    assert!(h.take(b).is_empty() && h.take(a).is_empty());
    assert!(h.take(stranger).is_empty());
    assert_eq!(h.stats(la).drops(DropReason::Stranger), 1);
    assert_eq!(h.shared_strangers(), 1);
    // Once latched, a leg is found by address first: A's own SSRC from A still passes, and
    // a packet from A with B's SSRC lands on A's leg (a wrong SSRC there), not on B's.
    h.send_rtp(a, la, 0xB, 9, 0, b"a claims b");
    assert!(h.take(a).is_empty() && h.take(b).is_empty());
    assert_eq!(h.stats(la).drops(DropReason::WrongSsrc), 1);
    assert_eq!(h.stats(lb).total_drops(), 0);
}

#[test]
fn shared_port_leg_is_found_by_stun_username() {
    let mut h = Harness::new(no_reports());
    let legs = h.session_with([
        LegOpts::latching().shared().ice("ufragA", "password-a"),
        LegOpts::latching().shared().expected_ssrc(0xB),
    ]);
    let (la, lb) = (legs[0], legs[1]);
    h.connect_both(la, lb);
    let (a, b, stranger) = (h.peer(), h.peer(), h.peer());
    h.send_rtp(b, lb, 0xB, 1, 0, b"b latches");
    // A plain packet for A's leg cannot be placed (no SSRC announced, no address yet).
    h.send_rtp(a, la, 0xA, 1, 0, b"lost");
    assert_eq!(h.shared_strangers(), 1);
    assert!(h.take(b).is_empty());
    // A binding request with an unknown ufrag is a stranger too.
    h.send(stranger, la, &binding_request("nobody", "password-a", 7));
    assert_eq!(h.shared_strangers(), 2);
    assert!(h.take(stranger).is_empty());
    // A's binding request names A's leg: answered, and the leg latches onto A.
    h.send(a, la, &binding_request("ufragA", "password-a", 3));
    let resp = h.take(a);
    let stun: Vec<&Datagram> = resp.iter().filter(|d| d.is_stun()).collect();
    assert_eq!(stun.len(), 1);
    let msg = StunMessage::parse(&stun[0].data).unwrap();
    assert_eq!(msg.class(), Class::SuccessResponse);
    assert_eq!(msg.transaction_id(), TransactionId([3; 12]));
    assert_eq!(msg.xor_mapped_address(), Some(a.addr));
    msg.verify_integrity(b"password-a").unwrap();
    assert_eq!(h.stats(la).peer, Some(a.addr));
    // B's early packet was released on the latch.
    let early: Vec<Rtp> = resp.iter().filter(|d| d.is_rtp()).map(parse_rtp).collect();
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].payload, b"b latches");
    // From now on A's media is found by address.
    h.send_rtp(a, la, 0xA, 2, 960, b"a to b");
    assert_eq!(h.take_rtp(b)[0].payload, b"a to b");
    assert_eq!(h.shared_strangers(), 2);
}

#[test]
fn stun_with_leg_credentials_moves_the_latch_and_bad_credentials_do_not() {
    let mut h = Harness::new(no_reports());
    let legs = h.session_with([
        LegOpts::latching().ice("legA", "secret-password-a"),
        LegOpts::latching(),
    ]);
    let (la, lb) = (legs[0], legs[1]);
    h.connect_both(la, lb);
    let (a, a2, b) = (h.peer(), h.peer(), h.peer());
    h.send_rtp(a, la, 0xA, 1, 0, b"latch");
    h.send_rtp(b, lb, 0xB, 1, 0, b"latch");
    assert_eq!(h.stats(la).peer, Some(a.addr));
    // Wrong password from the new address: no answer, no move.
    h.send(a2, la, &binding_request("legA", "wrong", 1));
    assert!(h.take(a2).is_empty());
    assert_eq!(h.stats(la).drops(DropReason::StunRejected), 1);
    assert_eq!(h.stats(la).peer, Some(a.addr));
    // Right credentials: a success response that tells a2 its address, and the latch moves.
    h.send(a2, la, &binding_request("legA", "secret-password-a", 2));
    let resp = h.take(a2);
    assert_eq!(resp.len(), 1, "binding success");
    assert_eq!(resp[0].from, la.local);
    let msg = StunMessage::parse(&resp[0].data).unwrap();
    assert_eq!(msg.class(), Class::SuccessResponse);
    assert_eq!(msg.transaction_id(), TransactionId([2; 12]));
    assert_eq!(msg.xor_mapped_address(), Some(a2.addr));
    msg.verify_integrity(b"secret-password-a").unwrap();
    msg.verify_fingerprint().unwrap();
    assert_eq!(h.stats(la).peer, Some(a2.addr));
    assert_eq!(h.stats(la).latches, 2);
    let _ = h.take(a);
    h.send_rtp(b, lb, 0xB, 2, 960, b"to the new address");
    assert_eq!(h.take_rtp(a2)[0].payload, b"to the new address");
    assert!(h.take(a).is_empty());
}
