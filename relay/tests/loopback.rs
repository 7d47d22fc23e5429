//! The relay over real loopback sockets: one-to-one, fan-out, latching, strangers, wrong
//! SSRC, rewriting on a source switch, NACK from the cache, PLI, idle legs, rate caps,
//! shared-port legs and generated reports.

mod common;

use std::time::Duration;

use common::*;
use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{
    Nack, NackPair, Pli, RtcpCompound, RtcpPacket, WireList, write_compound,
};
use supernode_relay::core::{CoreConfig, DropReason, NackCachePolicy, RateCap, StreamSpec};
use supernode_relay::{Addressing, LegRequest, RelayEvent};

fn rtcp(packets: &[RtcpPacket<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let n = write_compound(packets, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn no_reports() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        // Tests wait on the relay over the control channel between packets; under a loaded
        // machine that can take longer than the default 200 ms age limit of early media.
        early_media_max_age: Duration::from_secs(30),
        ..CoreConfig::default()
    }
}

#[test]
fn one_to_one_both_ways() {
    let relay = relay(41_000, no_reports());
    let (_s, legs) = latching_pair(&relay);
    let (a, b) = (Client::new(), Client::new());
    // B speaks first (latches leg 1); A has no peer yet, so its packet is held for A.
    b.send(legs[1].local, &rtp(0xB, 1, 0, b"hello from b"));
    assert!(wait_stats(&relay, legs[1].id, |s| s.peer == Some(b.addr())));
    for i in 0..20u16 {
        a.send(
            legs[0].local,
            &rtp(0xA, 100 + i, u32::from(i) * 960, &[i as u8; 160]),
        );
    }
    let got: Vec<_> = std::iter::from_fn(|| b.recv()).take(20).collect();
    assert_eq!(got.len(), 20);
    for (i, (pkt, from)) in got.iter().enumerate() {
        assert_eq!(*from, legs[1].local, "sent from B's leg");
        let (ssrc, seq, _, payload) = fields(pkt);
        assert_eq!((ssrc, seq), (0xA, 100 + i as u16));
        assert_eq!(payload, vec![i as u8; 160]);
    }
    // A's first packet latched leg 0, which released what B had said before (early media).
    let (pkt, from) = a.recv().expect("A receives B's early packet");
    assert_eq!(from, legs[0].local);
    assert_eq!(fields(&pkt).3, b"hello from b");
    // And back: A has latched, B's packets reach it.
    b.send(legs[1].local, &rtp(0xB, 2, 960, b"back"));
    let (pkt, from) = a.recv().expect("A receives B");
    assert_eq!(from, legs[0].local);
    assert_eq!(fields(&pkt).3, b"back");
    let sa = stats(&relay, legs[0].id);
    assert_eq!(sa.counters.rtp_in, 20);
    assert_eq!(sa.received, 20);
    assert_eq!(sa.lost, 0);
    assert_eq!(sa.counters.early_held, 1);
    assert_eq!(sa.counters.early_replayed, 1);
    let sb = stats(&relay, legs[1].id);
    assert_eq!(sb.counters.packets_out, 20);
    assert_eq!(sb.counters.drops_for(DropReason::NoDestination), 0);
}

#[test]
fn early_media_is_held_until_the_callee_latches_then_sent_in_order() {
    let relay = relay(42_400, no_reports());
    let (_s, legs) = latching_pair(&relay);
    let (a, b) = (Client::new(), Client::new());
    // A talks before B has sent anything: 100 packets (2 ms of RTP time apart, so all are
    // recent), more than the relay holds.
    for i in 0..100u16 {
        a.send(
            legs[0].local,
            &rtp(0xA, 1_000 + i, u32::from(i) * 96, &[i as u8; 40]),
        );
    }
    assert!(wait_stats(&relay, legs[1].id, |s| s.counters.early_held == 100));
    assert!(b.recv().is_none(), "nothing reaches B before it latches");
    // B's first packet latches leg 1: the newest 64 held packets follow, oldest first,
    // then live media.
    b.send(legs[1].local, &rtp(0xB, 1, 0, b"hi"));
    assert!(wait_stats(&relay, legs[1].id, |s| s.peer == Some(b.addr())));
    a.send(legs[0].local, &rtp(0xA, 1_100, 100 * 96, &[100; 40]));
    let got: Vec<_> = std::iter::from_fn(|| b.recv()).take(65).collect();
    assert_eq!(got.len(), 65);
    for (k, (pkt, from)) in got.iter().enumerate() {
        assert_eq!(*from, legs[1].local);
        let (ssrc, seq, ts, payload) = fields(pkt);
        let i = 36 + k as u16; // packets 36..=99 held, then 100 live
        assert_eq!((ssrc, seq, ts), (0xA, 1_000 + i, u32::from(i) * 96));
        assert_eq!(payload, vec![i as u8; 40]);
    }
    let sb = stats(&relay, legs[1].id);
    assert_eq!(sb.counters.early_replayed, 64);
    assert_eq!(sb.counters.packets_out, 65);
    // The replayed packets are in B's retransmission cache: a NACK for one is answered.
    let pairs = [NackPair { pid: 1_040, blp: 0 }];
    let nack = rtcp(&[RtcpPacket::Nack(Nack {
        sender_ssrc: Ssrc(0xB),
        media_ssrc: Ssrc(0xA),
        pairs: WireList::Items(&pairs),
    })]);
    b.send(legs[1].local, &nack);
    let again = b.recv_rtp();
    assert_eq!(again.len(), 1, "one retransmission");
    assert_eq!(fields(&again[0]).1, 1_040);
}

#[test]
fn early_media_too_old_is_not_replayed() {
    // By RTP time: a 5 s age limit over 100 packets 100 ms apart keeps the newest 5 s.
    let relay5 = relay(
        42_500,
        CoreConfig {
            early_media_max_age: Duration::from_secs(5),
            ..no_reports()
        },
    );
    let (_s, legs) = latching_pair(&relay5);
    let (a, b) = (Client::new(), Client::new());
    for i in 0..100u16 {
        a.send(
            legs[0].local,
            &rtp(0xA, i, u32::from(i) * 4_800, &[i as u8; 40]),
        );
    }
    assert!(wait_stats(&relay5, legs[1].id, |s| s.counters.early_held == 100));
    b.send(legs[1].local, &rtp(0xB, 1, 0, b"hi"));
    let seqs: Vec<u16> = b.recv_rtp().iter().map(|p| fields(p).1).collect();
    assert_eq!(
        seqs,
        (49..100).collect::<Vec<u16>>(),
        "the newest 5 s, in order"
    );

    let relay = relay(
        42_600,
        CoreConfig {
            early_media_max_age: Duration::from_millis(200),
            ..no_reports()
        },
    );
    // Held, then nothing for longer than 200 ms before the leg latches: nothing replayed.
    let (_s, legs) = latching_pair(&relay);
    let (a, b) = (Client::new(), Client::new());
    for i in 0..5u16 {
        a.send(legs[0].local, &rtp(0xA, i, u32::from(i) * 960, &[1; 40]));
    }
    assert!(wait_stats(&relay, legs[1].id, |s| s.counters.early_held == 5));
    std::thread::sleep(Duration::from_millis(300));
    b.send(legs[1].local, &rtp(0xB, 1, 0, b"hi"));
    assert!(wait_stats(&relay, legs[1].id, |s| s.peer == Some(b.addr())));
    a.send(legs[0].local, &rtp(0xA, 5, 5 * 960, &[2; 40]));
    let got = b.recv_rtp();
    assert_eq!(got.len(), 1, "only the live packet");
    assert_eq!(fields(&got[0]).1, 5);
    assert_eq!(stats(&relay, legs[1].id).counters.early_replayed, 0);
}

#[test]
fn fan_out_one_to_ten() {
    let relay = relay(41_100, no_reports());
    let reqs = (0..11).map(|_| LegRequest::latching()).collect();
    let (_s, legs) = relay.create_session(reqs).unwrap();
    let clients: Vec<Client> = (0..11).map(|_| Client::new()).collect();
    for k in 1..11 {
        relay.connect(legs[0].id, legs[k].id).unwrap();
        clients[k].send(legs[k].local, &rtp(0x100 + k as u32, 1, 0, b"hi"));
    }
    assert!(wait_until(Duration::from_secs(2), || (1..11)
        .all(|k| stats(&relay, legs[k].id).peer.is_some())));
    for i in 0..15u16 {
        clients[0].send(
            legs[0].local,
            &rtp(0x5, i, u32::from(i) * 3000, &[7u8; 900]),
        );
    }
    for (k, client) in clients.iter().enumerate().skip(1) {
        let got = client.recv_rtp();
        assert_eq!(got.len(), 15, "destination {k}");
        let seqs: Vec<u16> = got.iter().map(|p| fields(p).1).collect();
        assert_eq!(seqs, (0..15).collect::<Vec<_>>());
    }
}

#[test]
fn latching_learns_first_and_refuses_strangers_and_wrong_ssrc() {
    let relay = relay(41_200, no_reports());
    // A may send one stream (a transport learns up to `max_streams` SSRCs; any further one
    // is a wrong SSRC: `streams_are_learned_up_to_the_bound` covers several).
    let one_stream = LegRequest {
        max_streams: 1,
        ..LegRequest::latching()
    };
    let (_s, legs) = relay
        .create_session(vec![one_stream, LegRequest::latching()])
        .unwrap();
    relay.connect_both(legs[0].id, legs[1].id).unwrap();
    let (a, b, stranger) = (Client::new(), Client::new(), Client::new());
    b.send(legs[1].local, &rtp(0xB, 1, 0, b"latch"));
    a.send(legs[0].local, &rtp(0xA, 1, 0, b"first"));
    assert_eq!(fields(&b.recv().unwrap().0).3, b"first");
    // A stranger with A's SSRC: dropped, counted, never forwarded.
    for i in 0..5u16 {
        stranger.send(legs[0].local, &rtp(0xA, 2 + i, 0, b"evil"));
    }
    // A itself with a different SSRC: dropped as wrong SSRC.
    for i in 0..3u16 {
        a.send(legs[0].local, &rtp(0xEE, 10 + i, 0, b"other stream"));
    }
    // Garbage from A: malformed.
    a.send(legs[0].local, &[0x80, 0x60, 0x00]);
    a.send(legs[0].local, &rtp(0xA, 3, 0, b"second"));
    let got = b.recv_rtp();
    assert_eq!(got.len(), 1, "only A's own stream passes");
    assert_eq!(fields(&got[0]).3, b"second");
    let s = stats(&relay, legs[0].id);
    assert_eq!(s.peer, Some(a.addr()), "the latch did not move");
    assert_eq!(s.counters.drops_for(DropReason::Stranger), 5);
    assert_eq!(s.counters.drops_for(DropReason::WrongSsrc), 3);
    assert_eq!(
        s.counters.drops_for(DropReason::Unsupported) + s.counters.drops_for(DropReason::Malformed),
        1
    );
    assert_eq!(s.counters.latches, 1);
    // The control plane heard about both latches.
    let mut latched = Vec::new();
    while let Some(ev) = relay.poll_event() {
        if let RelayEvent::Latched { leg, addr } = ev {
            latched.push((leg, addr));
        }
    }
    assert!(latched.contains(&(legs[0].id, a.addr())));
    assert!(latched.contains(&(legs[1].id, b.addr())));
}

#[test]
fn fixed_remote_leg_sends_without_latching_and_refuses_others() {
    let relay = relay(41_300, no_reports());
    let (a, b, other) = (Client::new(), Client::new(), Client::new());
    let (_s, legs) = relay
        .create_session(vec![
            LegRequest::fixed(a.addr()),
            LegRequest::fixed(b.addr()),
        ])
        .unwrap();
    relay.connect_both(legs[0].id, legs[1].id).unwrap();
    a.send(legs[0].local, &rtp(1, 1, 0, b"to b"));
    assert_eq!(fields(&b.recv().unwrap().0).3, b"to b");
    other.send(legs[0].local, &rtp(1, 2, 0, b"spoof"));
    assert!(b.recv().is_none());
    assert_eq!(
        stats(&relay, legs[0].id)
            .counters
            .drops_for(DropReason::Stranger),
        1
    );
}

#[test]
fn rewrite_on_source_switch_gives_one_continuous_stream() {
    let relay = relay(41_400, no_reports());
    let reqs = (0..3).map(|_| LegRequest::latching()).collect();
    let (_s, legs) = relay.create_session(reqs).unwrap();
    let (s1, s2, d) = (Client::new(), Client::new(), Client::new());
    d.send(legs[2].local, &rtp(0xD, 1, 0, b"latch"));
    assert!(wait_until(Duration::from_secs(2), || stats(
        &relay, legs[2].id
    )
    .peer
    .is_some()));
    relay.connect(legs[0].id, legs[2].id).unwrap();
    for i in 0..10u16 {
        s1.send(
            legs[0].local,
            &rtp(
                0x1111,
                65_530u16.wrapping_add(i),
                1_000 + u32::from(i) * 960,
                b"s1",
            ),
        );
    }
    let first = d.recv_rtp();
    assert_eq!(first.len(), 10);
    // The trunk fails over: the destination is now fed by another source.
    relay.disconnect(legs[0].id, legs[2].id).unwrap();
    relay.connect(legs[1].id, legs[2].id).unwrap();
    for i in 0..10u16 {
        s2.send(
            legs[1].local,
            &rtp(0x2222, 300 + i, 9_000_000 + u32::from(i) * 960, b"s2"),
        );
    }
    let second = d.recv_rtp();
    assert_eq!(second.len(), 10);
    let all: Vec<_> = first
        .iter()
        .chain(second.iter())
        .map(|p| fields(p))
        .collect();
    for w in all.windows(2) {
        assert_eq!(w[1].0, 0x1111, "one SSRC throughout");
        assert_eq!(w[1].1, w[0].1.wrapping_add(1), "sequence continues");
        let dts = w[1].2.wrapping_sub(w[0].2);
        assert!(
            dts > 0 && dts < 48_000 * 5,
            "timestamp moves forward by a plausible step: {dts}"
        );
    }
    assert_eq!(all[10].3, b"s2");
    assert_eq!(stats(&relay, legs[2].id).counters.source_switches, 1);
}

#[test]
fn nack_is_answered_from_the_cache() {
    let relay = relay(
        41_500,
        CoreConfig {
            nack_cache_policy: NackCachePolicy::Always,
            ..no_reports()
        },
    );
    let (_s, legs) = latching_pair_at(&relay, 90_000);
    let (sender, receiver) = (Client::new(), Client::new());
    receiver.send(legs[1].local, &rtp(0xBB, 1, 0, b"latch"));
    sender.send(legs[0].local, &rtp(0xAA, 1, 0, b"latch"));
    assert!(wait_until(Duration::from_secs(2), || stats(
        &relay, legs[1].id
    )
    .peer
    .is_some()
        && stats(&relay, legs[0].id).peer.is_some()));
    let _ = receiver.recv_all();
    let originals: Vec<Vec<u8>> = (10..20u16)
        .map(|s| rtp(0xAA, s, u32::from(s) * 3000, &[s as u8; 1000]))
        .collect();
    for p in &originals {
        sender.send(legs[0].local, p);
    }
    assert_eq!(receiver.recv_rtp().len(), 10);
    let _ = sender.recv_all();
    // The receiver lost 12 and 14: pid 12, bitmask bit 1 (= 14).
    let pairs = [NackPair { pid: 12, blp: 0b10 }];
    let nack = RtcpPacket::Nack(Nack {
        sender_ssrc: Ssrc(0xBB),
        media_ssrc: Ssrc(0xAA),
        pairs: WireList::Items(&pairs),
    });
    receiver.send(legs[1].local, &rtcp(&[nack]));
    let re = receiver.recv_rtp();
    assert_eq!(re.len(), 2);
    assert_eq!(re[0], originals[2], "byte-identical retransmission of 12");
    assert_eq!(re[1], originals[4], "byte-identical retransmission of 14");
    assert!(sender.recv_all().is_empty(), "the sender is not bothered");
    let s = stats(&relay, legs[1].id);
    assert_eq!(s.counters.nack_retransmits, 2);
    // A NACK for something never sent is a counted miss.
    let pairs = [NackPair { pid: 500, blp: 0 }];
    let nack = RtcpPacket::Nack(Nack {
        sender_ssrc: Ssrc(0xBB),
        media_ssrc: Ssrc(0xAA),
        pairs: WireList::Items(&pairs),
    });
    receiver.send(legs[1].local, &rtcp(&[nack]));
    assert!(wait_stats(&relay, legs[1].id, |s| s.counters.nack_misses == 1));
}

#[test]
fn pli_reaches_the_sender_coalesced() {
    let relay = relay(
        41_600,
        CoreConfig {
            keyframe_min_interval: Duration::from_secs(60),
            ..no_reports()
        },
    );
    let (_s, legs) = latching_pair(&relay);
    let (sender, receiver) = (Client::new(), Client::new());
    receiver.send(legs[1].local, &rtp(0xBB, 1, 0, b"latch"));
    sender.send(legs[0].local, &rtp(0xAA, 1, 0, b"video"));
    assert!(receiver.recv().is_some());
    let _ = sender.recv_all();
    let pli = RtcpPacket::Pli(Pli {
        sender_ssrc: Ssrc(0xBB),
        media_ssrc: Ssrc(0xAA),
    });
    receiver.send(legs[1].local, &rtcp(&[pli]));
    receiver.send(legs[1].local, &rtcp(&[pli]));
    receiver.send(legs[1].local, &rtcp(&[pli]));
    let got = sender.recv_all();
    assert_eq!(got.len(), 1, "three PLIs coalesced into one");
    let p = RtcpCompound::parse(&got[0]).next().unwrap().unwrap();
    match p {
        RtcpPacket::Pli(p) => assert_eq!(p.media_ssrc, Ssrc(0xAA)),
        other => panic!("expected PLI, got {other:?}"),
    }
    let s = stats(&relay, legs[0].id);
    assert_eq!(s.counters.keyframe_requests_out, 1);
    assert_eq!(s.counters.keyframe_requests_coalesced, 2);
    assert_eq!(stats(&relay, legs[1].id).counters.keyframe_requests_in, 3);
}

#[test]
fn idle_legs_are_freed() {
    let relay = relay(
        41_700,
        CoreConfig {
            idle_timeout: Duration::from_millis(300),
            ..no_reports()
        },
    );
    let (session, legs) = latching_pair(&relay);
    assert_eq!(relay.leg_count(), 2);
    let a = Client::new();
    a.send(legs[0].local, &rtp(1, 1, 0, b"x"));
    assert!(
        wait_until(Duration::from_secs(5), || relay.leg_count() == 0),
        "both legs freed"
    );
    let mut idle = Vec::new();
    while let Some(ev) = relay.poll_event() {
        if let RelayEvent::LegIdle {
            leg,
            session: s,
            stats,
        } = ev
        {
            assert_eq!(s, session);
            // The final counters come with the event: A's packet was received on leg 0 and
            // held for leg 1 (which never latched).
            if leg == legs[0].id {
                assert_eq!(stats.counters.rtp_in, 1);
            } else {
                assert_eq!(stats.counters.early_held, 1);
            }
            idle.push(leg);
        }
    }
    idle.sort();
    assert_eq!(idle, vec![legs[0].id, legs[1].id]);
    assert!(relay.leg_stats(legs[0].id).is_err());
    // The ports went back to the pool: a new session can be created on the same range.
    let (_s2, again) = relay
        .create_session(vec![LegRequest::latching(), LegRequest::latching()])
        .unwrap();
    assert_eq!(again.len(), 2);
}

#[test]
fn rate_cap_is_enforced() {
    let relay = relay(41_800, no_reports());
    let capped = LegRequest {
        rate_cap: RateCap {
            packets_per_sec: 50,
            bytes_per_sec: 0,
            burst_ms: 100,
        },
        ..LegRequest::latching()
    };
    let (_s, legs) = relay
        .create_session(vec![capped, LegRequest::latching()])
        .unwrap();
    relay.connect(legs[0].id, legs[1].id).unwrap();
    let (a, b) = (Client::new(), Client::new());
    b.send(legs[1].local, &rtp(2, 1, 0, b"latch"));
    assert!(wait_until(Duration::from_secs(2), || stats(
        &relay, legs[1].id
    )
    .peer
    .is_some()));
    for i in 0..200u16 {
        a.send(legs[0].local, &rtp(1, i, 0, &[0u8; 100]));
    }
    let got = b.recv_rtp().len() as u64;
    let s = stats(&relay, legs[0].id);
    let limited = s.counters.drops_for(DropReason::RateLimited);
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
}

#[test]
fn shared_port_legs_are_told_apart_by_ssrc_then_address() {
    let relay = relay(41_900, no_reports());
    let shared = |ssrc| LegRequest {
        addressing: Addressing::Shared,
        streams: vec![StreamSpec {
            ssrc: Ssrc(ssrc),
            clock_rate: 48_000,
        }],
        ..LegRequest::latching()
    };
    let (_s, legs) = relay
        .create_session(vec![shared(0xA), shared(0xB)])
        .unwrap();
    assert_eq!(legs[0].local, legs[1].local, "one port for both");
    relay.connect_both(legs[0].id, legs[1].id).unwrap();
    let (a, b, stranger) = (Client::new(), Client::new(), Client::new());
    b.send(legs[1].local, &rtp(0xB, 1, 0, b"b latches"));
    assert!(wait_stats(&relay, legs[1].id, |s| s.peer == Some(b.addr())));
    a.send(legs[0].local, &rtp(0xA, 1, 0, b"a to b"));
    assert_eq!(fields(&b.recv().unwrap().0).3, b"a to b");
    // A's first packet latched it and released B's early packet, held for A until then.
    assert_eq!(fields(&a.recv().unwrap().0).3, b"b latches");
    b.send(legs[1].local, &rtp(0xB, 2, 960, b"b to a"));
    assert_eq!(fields(&a.recv().unwrap().0).3, b"b to a");
    // A stranger claiming A's SSRC once A has latched, and one with an unknown SSRC.
    stranger.send(legs[0].local, &rtp(0xA, 5, 0, b"evil"));
    stranger.send(legs[0].local, &rtp(0xC, 5, 0, b"evil"));
    assert!(b.recv().is_none() && a.recv().is_none());
    assert_eq!(
        stats(&relay, legs[0].id)
            .counters
            .drops_for(DropReason::Stranger),
        1
    );
    let ws = relay.worker_stats().unwrap();
    assert_eq!(ws.iter().map(|w| w.shared_strangers).sum::<u64>(), 1);
}

#[test]
fn reports_are_generated_toward_each_leg() {
    let relay = relay(
        42_000,
        CoreConfig {
            report_interval: Duration::from_millis(200),
            ..CoreConfig::default()
        },
    );
    let (_s, legs) = latching_pair(&relay);
    let (a, b) = (Client::new(), Client::new());
    b.send(legs[1].local, &rtp(0xB, 1, 0, b"latch"));
    for i in 0..10u16 {
        a.send(legs[0].local, &rtp(0xA, i, u32::from(i) * 960, b"media"));
    }
    // A only sends: it gets an RR about its stream. B receives media: it gets an SR.
    let mut rr_seen = false;
    assert!(wait_until(Duration::from_secs(3), || {
        while let Some((d, _)) = a.recv() {
            if let Some(Ok(RtcpPacket::ReceiverReport(rr))) = RtcpCompound::parse(&d).next()
                && let Some(block) = rr.reports.iter().next()
            {
                assert_eq!(block.ssrc, Ssrc(0xA));
                assert_eq!(block.extended_highest_seq & 0xffff, 9);
                assert_eq!(block.cumulative_lost, 0);
                rr_seen = true;
                return true;
            }
        }
        false
    }));
    assert!(rr_seen);
    let mut sr_seen = false;
    assert!(wait_until(Duration::from_secs(3), || {
        while let Some((d, _)) = b.recv() {
            if let Some(Ok(RtcpPacket::SenderReport(sr))) = RtcpCompound::parse(&d).next() {
                assert_eq!(
                    sr.ssrc,
                    Ssrc(0xA),
                    "the SR speaks for the stream B receives"
                );
                assert_eq!(sr.packet_count, 10);
                sr_seen = true;
                return true;
            }
        }
        false
    }));
    assert!(sr_seen);
}
