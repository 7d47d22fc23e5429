//! RTCP through the sans-IO core: NACKs answered from the retransmission cache, PLIs
//! forwarded to the sender and coalesced, and the reports the relay generates toward each
//! leg (an RR toward a sender, an SR toward a receiver). (Mirrors `loopback.rs`.)

mod harness;

use std::time::Duration;

use harness::*;
use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{RtcpCompound, RtcpPacket};

fn no_reports() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

/// With the default policy the cache keeps nothing until the receiver's first NACK (a miss,
/// passed on to the sender); from then on NACKs are answered here, byte for byte.
#[test]
fn nack_is_answered_from_the_cache_from_the_first_nack_on() {
    let mut h = Harness::new(no_reports());
    // Video legs: the relay keeps video (90 kHz) streams for retransmission, not audio.
    let legs = h.session_with([
        LegOpts::latching().clock_rate(90_000),
        LegOpts::latching().clock_rate(90_000),
    ]);
    h.connect_both(legs[0], legs[1]);
    let [ls, lr] = [legs[0], legs[1]];
    let (sender, receiver) = (h.peer(), h.peer());
    h.send_rtp(receiver, lr, 0xBB, 1, 0, b"latch");
    h.send_rtp(sender, ls, 0xAA, 1, 0, b"latch");
    assert!(h.stats(lr).peer.is_some() && h.stats(ls).peer.is_some());
    let _ = h.take(receiver);
    // Before any NACK nothing is kept: the first one is a miss and goes on to the sender.
    h.send(sender, ls, &rtp(0xAA, 5, 15_000, &[5; 1000]));
    assert_eq!(h.take_rtp(receiver).len(), 1);
    let _ = h.take(sender);
    h.send(receiver, lr, &nack(0xBB, 0xAA, &[(5, 0)]));
    assert!(h.take(receiver).is_empty(), "nothing kept to answer with");
    let to_sender: Vec<Vec<u8>> = h.take(sender).into_iter().map(|d| d.data).collect();
    assert_eq!(nacks(&to_sender), vec![(0xAA, vec![5])]);
    assert_eq!(h.stats(lr).nack_misses, 1);
    let originals: Vec<Vec<u8>> = (10..20u16)
        .map(|s| rtp(0xAA, s, u32::from(s) * 3000, &[s as u8; 1000]))
        .collect();
    for p in &originals {
        h.send(sender, ls, p);
        h.advance(Duration::from_millis(20));
    }
    assert_eq!(h.take_rtp(receiver).len(), 10);
    let _ = h.take(sender);
    // The receiver lost 12 and 14: pid 12, bitmask bit 1 (= 14).
    h.send(receiver, lr, &nack(0xBB, 0xAA, &[(12, 0b10)]));
    let re = h.take(receiver);
    assert_eq!(re.len(), 2);
    assert_eq!(
        re[0].data, originals[2],
        "byte-identical retransmission of 12"
    );
    assert_eq!(
        re[1].data, originals[4],
        "byte-identical retransmission of 14"
    );
    assert!(re.iter().all(|d| d.from == lr.local));
    assert!(h.take(sender).is_empty(), "the sender is not bothered");
    let s = h.stats(lr);
    assert_eq!(s.nack_retransmits, 2);
    assert_eq!(s.nack_misses, 1);
    // A NACK for something never sent is a counted miss.
    h.send(receiver, lr, &nack(0xBB, 0xAA, &[(500, 0)]));
    assert!(h.take(receiver).is_empty());
    assert_eq!(h.stats(lr).nack_misses, 2);
    assert_eq!(h.stats(lr).nack_retransmits, 2);
}

/// Audio is not kept for retransmission (browsers do not NACK Opus, the edge client NACKs
/// video only): a NACK for an audio packet is a counted miss and goes on to the sender, with
/// the sequence numbers mapped back to the sender's.
#[test]
fn an_audio_nack_is_not_answered_here_but_forwarded_to_the_sender() {
    let mut h = Harness::new(no_reports());
    let [ls, lr] = h.latching_pair(); // 48 kHz: audio
    let (sender, receiver) = (h.peer(), h.peer());
    h.send_rtp(receiver, lr, 0xBB, 1, 0, b"latch");
    h.send_rtp(sender, ls, 0xAA, 1, 0, b"latch");
    let _ = h.take(receiver);
    for s in 10..20u16 {
        h.send(
            sender,
            ls,
            &rtp(0xAA, s, u32::from(s) * 960, &[s as u8; 100]),
        );
        h.advance(Duration::from_millis(20));
    }
    let got = h.take_rtp(receiver);
    assert_eq!(got.len(), 10);
    let _ = h.take(sender);
    let media = got[0].ssrc;
    let lost = got[2].seq;
    h.send(receiver, lr, &nack(0xBB, media, &[(lost, 0)]));
    assert!(h.take(receiver).is_empty(), "no retransmission from here");
    let s = h.stats(lr);
    assert_eq!((s.nack_retransmits, s.nack_misses), (0, 1));
    let to_sender: Vec<Vec<u8>> = h.take(sender).into_iter().map(|d| d.data).collect();
    assert_eq!(
        nacks(&to_sender),
        vec![(0xAA, vec![12])],
        "one NACK toward the sender, in the sender's own numbers"
    );
}

/// A receiver that floods NACKs the relay cannot answer does not flood the sender: the
/// sender is asked for at most `max_forwarded_nacks_per_sec` packets (half a second's worth
/// at once), and the rest is counted on the sender's leg.
#[test]
fn a_nack_flood_reaches_the_sender_only_up_to_its_budget() {
    let mut h = Harness::new(CoreConfig {
        max_forwarded_nacks_per_sec: 100,
        ..no_reports()
    });
    let [ls, lr] = h.latching_pair(); // audio: nothing is kept, every NACK is a miss
    let (sender, receiver) = (h.peer(), h.peer());
    h.send_rtp(receiver, lr, 0xBB, 1, 0, b"latch");
    h.send_rtp(sender, ls, 0xAA, 1, 0, b"latch");
    for s in 2..40u16 {
        h.send_rtp(sender, ls, 0xAA, s, u32::from(s) * 960, &[0; 100]);
    }
    let media = h.take_rtp(receiver)[0].ssrc;
    let _ = h.take(sender);
    let asked_of_sender = |h: &mut Harness| -> usize {
        let rtcp: Vec<Vec<u8>> = h.take(sender).into_iter().map(|d| d.data).collect();
        nacks(&rtcp).iter().map(|(_, seqs)| seqs.len()).sum()
    };
    // 40 NACKs of 17 lost packets each (a PID and a full bitmask), all at once.
    let flood = |h: &mut Harness| {
        for _ in 0..40 {
            h.send(receiver, lr, &nack(0xBB, media, &[(2, 0xFFFF)]));
        }
    };
    flood(&mut h);
    assert_eq!(asked_of_sender(&mut h), 50, "half a second's budget");
    let st = h.stats(ls);
    assert_eq!((st.nacks_out, st.nacks_out_limited), (50, 40 * 17 - 50));
    // The budget refills at 100 per second, up to half a second's worth.
    h.advance(Duration::from_secs(2));
    flood(&mut h);
    assert_eq!(asked_of_sender(&mut h), 50);
    assert_eq!(h.stats(ls).nacks_out, 100);
}

#[test]
fn pli_reaches_the_sender_coalesced() {
    let mut h = Harness::new(CoreConfig {
        keyframe_min_interval: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(3600),
        ..no_reports()
    });
    let [ls, lr] = h.latching_pair();
    let (sender, receiver) = (h.peer(), h.peer());
    h.send_rtp(receiver, lr, 0xBB, 1, 0, b"latch");
    h.send_rtp(sender, ls, 0xAA, 1, 0, b"video");
    assert_eq!(h.take_rtp(receiver).len(), 1);
    let _ = h.take(sender);
    for _ in 0..3 {
        h.send(receiver, lr, &pli(0xBB, 0xAA));
    }
    let got = h.take(sender);
    assert_eq!(got.len(), 1, "three PLIs coalesced into one");
    assert_eq!(got[0].from, ls.local);
    let p = RtcpCompound::parse(&got[0].data).next().unwrap().unwrap();
    match p {
        RtcpPacket::Pli(p) => assert_eq!(p.media_ssrc, Ssrc(0xAA)),
        other => panic!("expected PLI, got {other:?}"),
    }
    let s = h.stats(ls);
    assert_eq!(s.keyframe_requests_out, 1);
    assert_eq!(s.keyframe_requests_coalesced, 2);
    assert_eq!(h.stats(lr).keyframe_requests_in, 3);
    // Within the coalescing interval (60 s) later requests are still coalesced...
    h.advance(Duration::from_secs(30));
    h.send(receiver, lr, &pli(0xBB, 0xAA));
    h.advance(Duration::from_millis(29_999));
    h.send(receiver, lr, &pli(0xBB, 0xAA));
    assert!(h.take(sender).is_empty());
    assert_eq!(h.stats(ls).keyframe_requests_coalesced, 4);
    // ...and once it has passed, the next one goes through again.
    h.advance(Duration::from_millis(1));
    h.send(receiver, lr, &pli(0xBB, 0xAA));
    assert_eq!(h.take(sender).len(), 1);
    assert_eq!(h.stats(ls).keyframe_requests_out, 2);
}

#[test]
fn reports_are_generated_toward_each_leg() {
    let mut h = Harness::new(CoreConfig {
        report_interval: Duration::from_millis(200),
        ..CoreConfig::default()
    });
    let [la, lb] = h.latching_pair();
    let (a, b) = (h.peer(), h.peer());
    h.send_rtp(b, lb, 0xB, 1, 0, b"latch");
    for i in 0..10u16 {
        h.send_rtp(a, la, 0xA, i, u32::from(i) * 960, b"media");
    }
    let _ = h.take(a);
    let _ = h.take(b);
    // Reports come every 0.5-1.5 intervals (plus one 20 ms sweep): within 320 ms each leg
    // has had at least one.
    h.advance(Duration::from_millis(320));
    // A only sends: it gets an RR about its stream.
    let to_a = h.take(a);
    assert!(!to_a.is_empty(), "A got a report");
    for d in &to_a {
        assert_eq!(d.from, la.local);
        match RtcpCompound::parse(&d.data).next() {
            Some(Ok(RtcpPacket::ReceiverReport(rr))) => {
                let block = rr.reports.iter().next().expect("a report block");
                assert_eq!(block.ssrc, Ssrc(0xA));
                assert_eq!(block.extended_highest_seq & 0xffff, 9);
                assert_eq!(block.cumulative_lost, 0);
            }
            other => panic!("expected an RR toward A, got {other:?}"),
        }
    }
    // B receives media: it gets an SR that speaks for the stream B receives.
    let to_b = h.take(b);
    assert!(!to_b.is_empty(), "B got a report");
    for d in &to_b {
        match RtcpCompound::parse(&d.data).next() {
            Some(Ok(RtcpPacket::SenderReport(sr))) => {
                assert_eq!(
                    sr.ssrc,
                    Ssrc(0xA),
                    "the SR speaks for the stream B receives"
                );
                assert_eq!(sr.packet_count, 10);
            }
            other => panic!("expected an SR toward B, got {other:?}"),
        }
    }
    // Over 10 s each leg gets a report every 100-300 ms (0.5-1.5 intervals, RFC 3550
    // §6.3.1, plus at most one 20 ms sweep): between 31 and 100 of them.
    h.advance(Duration::from_secs(10));
    for (leg, peer) in [(la, a), (lb, b)] {
        let n = h.take(peer).len() as u64;
        assert!((31..=100).contains(&n), "{n} reports in 10 s");
        assert!(h.stats(leg).reports_sent >= n);
    }
}
