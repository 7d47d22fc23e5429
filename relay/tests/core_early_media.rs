//! Early media through the sans-IO core: what a caller sends before the callee's leg has
//! latched is held, replayed in order when it latches, and not replayed when too old (by
//! arrival, or by RTP time behind the newest held packet). (Mirrors `loopback.rs`; the
//! virtual clock makes the default 200 ms age limit testable exactly.)

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
fn early_media_is_held_until_the_callee_latches_then_sent_in_order() {
    // The default age limit (200 ms): on a virtual clock nothing waits on a machine.
    let mut h = Harness::new(no_reports());
    let [la, lb] = h.latching_pair();
    let (a, b) = (h.peer(), h.peer());
    // A talks before B has sent anything: 100 packets, 2 ms apart (in RTP time and on the
    // clock), more than the relay holds.
    for i in 0..100u16 {
        h.send_rtp(a, la, 0xA, 1_000 + i, u32::from(i) * 96, &[i as u8; 40]);
        h.advance(Duration::from_millis(2));
    }
    assert_eq!(h.stats(lb).early_held, 100);
    assert!(h.take(b).is_empty(), "nothing reaches B before it latches");
    // B's first packet latches leg B: the newest 64 held packets follow, oldest first,
    // then live media.
    h.send_rtp(b, lb, 0xB, 1, 0, b"hi");
    assert_eq!(h.stats(lb).peer, Some(b.addr));
    h.send_rtp(a, la, 0xA, 1_100, 100 * 96, &[100; 40]);
    let got = h.take_rtp(b);
    assert_eq!(got.len(), 65);
    for (k, p) in got.iter().enumerate() {
        assert_eq!(p.from, lb.local);
        let i = 36 + k as u16; // packets 36..=99 held, then 100 live
        assert_eq!((p.ssrc, p.seq, p.ts), (0xA, 1_000 + i, u32::from(i) * 96));
        assert_eq!(p.payload, vec![i as u8; 40]);
    }
    let sb = h.stats(lb);
    assert_eq!(sb.early_replayed, 64);
    assert_eq!(sb.packets_out, 65);
    // The replayed packets are in B's retransmission cache: a NACK for one is answered.
    h.send(b, lb, &nack(0xB, 0xA, &[(1_040, 0)]));
    let again = h.take_rtp(b);
    assert_eq!(again.len(), 1, "one retransmission");
    assert_eq!(again[0].seq, 1_040);
    assert_eq!(again[0].payload, vec![40u8; 40]);
    assert_eq!(h.stats(lb).nack_retransmits, 1);
}

#[test]
fn early_media_too_old_by_rtp_time_is_not_replayed() {
    // A 5 s age limit over 100 packets 100 ms apart (in RTP time) keeps the newest 5 s.
    let mut h = Harness::new(CoreConfig {
        early_media_max_age: Duration::from_secs(5),
        ..no_reports()
    });
    let [la, lb] = h.latching_pair();
    let (a, b) = (h.peer(), h.peer());
    for i in 0..100u16 {
        h.send_rtp(a, la, 0xA, i, u32::from(i) * 4_800, &[i as u8; 40]);
    }
    assert_eq!(h.stats(lb).early_held, 100);
    h.send_rtp(b, lb, 0xB, 1, 0, b"hi");
    let seqs: Vec<u16> = h.take_rtp(b).iter().map(|p| p.seq).collect();
    assert_eq!(
        seqs,
        (49..100).collect::<Vec<u16>>(),
        "the newest 5 s, in order"
    );
    assert_eq!(h.stats(lb).early_replayed, 51);
}

#[test]
fn early_media_too_old_by_arrival_is_not_replayed() {
    let config = CoreConfig {
        early_media_max_age: Duration::from_millis(200),
        ..no_reports()
    };
    // Held, then nothing for longer than 200 ms before the leg latches: nothing replayed.
    let mut h = Harness::new(config.clone());
    let [la, lb] = h.latching_pair();
    let (a, b) = (h.peer(), h.peer());
    for i in 0..5u16 {
        h.send_rtp(a, la, 0xA, i, u32::from(i) * 960, &[1; 40]);
    }
    assert_eq!(h.stats(lb).early_held, 5);
    h.advance(Duration::from_millis(300));
    h.send_rtp(b, lb, 0xB, 1, 0, b"hi");
    assert_eq!(h.stats(lb).peer, Some(b.addr));
    h.send_rtp(a, la, 0xA, 5, 5 * 960, &[2; 40]);
    let got = h.take_rtp(b);
    assert_eq!(got.len(), 1, "only the live packet");
    assert_eq!(got[0].seq, 5);
    assert_eq!(h.stats(lb).early_replayed, 0);

    // The limit is inclusive: exactly 200 ms after the newest held packet, all is replayed.
    let mut h = Harness::new(config);
    let [la, lb] = h.latching_pair();
    let (a, b) = (h.peer(), h.peer());
    for i in 0..5u16 {
        h.send_rtp(a, la, 0xA, i, u32::from(i) * 960, &[1; 40]);
    }
    h.advance(Duration::from_millis(200));
    h.send_rtp(b, lb, 0xB, 1, 0, b"hi");
    let seqs: Vec<u16> = h.take_rtp(b).iter().map(|p| p.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    assert_eq!(h.stats(lb).early_replayed, 5);
}
