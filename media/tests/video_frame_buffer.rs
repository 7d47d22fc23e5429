//! Frame buffer behaviour: ordering, completeness, decodability, NACK pacing, PLI.

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use supernode_media::video::{
    Feedback, FrameBuffer, FrameBufferConfig, FrameInfo, InsertError, VideoPacket,
};

fn pkt(seq: u16, ts: u32, marker: bool, start: bool, key: bool) -> VideoPacket {
    VideoPacket {
        seq,
        timestamp: ts,
        marker,
        frame_start: start,
        keyframe: key,
        payload: Bytes::from(vec![seq as u8, (seq >> 8) as u8]),
    }
}

/// Packets of a frame of `n` packets starting at `seq`.
fn frame(seq: u16, ts: u32, n: u16, key: bool) -> Vec<VideoPacket> {
    (0..n)
        .map(|i| pkt(seq.wrapping_add(i), ts, i + 1 == n, i == 0, key))
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn pop(fb: &mut FrameBuffer) -> Option<(FrameInfo, Vec<Bytes>)> {
    let mut v = Vec::new();
    fb.pop_frame(&mut v).map(|i| (i, v))
}

#[test]
fn frames_come_out_in_order_across_reordering_and_wrap() {
    let t0 = Instant::now();
    let mut fb = FrameBuffer::new(FrameBufferConfig::default());
    let mut all = Vec::new();
    all.extend(frame(65530, 0, 4, true)); // 65530..65533
    all.extend(frame(65534, 3000, 3, false)); // 65534, 65535, 0
    all.extend(frame(1, 6000, 2, false)); // 1, 2
    // Deliver in a scrambled order.
    let order = [3usize, 0, 5, 1, 2, 8, 7, 4, 6];
    let mut out = Vec::new();
    for &i in &order {
        fb.insert(t0, all[i].clone()).unwrap();
        while let Some(f) = pop(&mut fb) {
            out.push(f);
        }
    }
    let ts: Vec<u32> = out.iter().map(|(f, _)| f.timestamp).collect();
    assert_eq!(ts, vec![0, 3000, 6000]);
    assert!(out[0].0.keyframe && !out[1].0.keyframe);
    assert_eq!((out[1].0.first_seq, out[1].0.last_seq), (65534, 0));
    // payloads in sequence order
    let seqs: Vec<u16> = out[1]
        .1
        .iter()
        .map(|b| u16::from(b[0]) | u16::from(b[1]) << 8)
        .collect();
    assert_eq!(seqs, vec![65534, 65535, 0]);
    assert_eq!(fb.stats().frames, 3);
    // Reordering was repaired before any NACK was due.
    assert_eq!(fb.poll_feedback(t0), None);
}

#[test]
fn no_frame_before_a_keyframe_and_pli_after_grace() {
    let t0 = Instant::now();
    let cfg = FrameBufferConfig::default();
    let mut fb = FrameBuffer::new(cfg);
    for p in frame(100, 0, 2, false) {
        fb.insert(t0, p).unwrap();
    }
    assert!(pop(&mut fb).is_none());
    assert_eq!(fb.poll_feedback(t0), None);
    assert_eq!(fb.poll_timeout(), Some(t0 + cfg.keyframe_grace));
    assert_eq!(
        fb.poll_feedback(t0 + cfg.keyframe_grace),
        Some(Feedback::Pli)
    );
    // Paced: not again before the interval.
    assert_eq!(fb.poll_feedback(t0 + cfg.keyframe_grace + ms(10)), None);
    let again = t0 + cfg.keyframe_grace + cfg.pli_interval;
    assert_eq!(fb.poll_timeout(), Some(again));
    assert_eq!(fb.poll_feedback(again), Some(Feedback::Pli));
    // The keyframe arrives: frames flow, PLIs stop.
    for p in frame(102, 3000, 3, true) {
        fb.insert(again, p).unwrap();
    }
    let (f, _) = pop(&mut fb).unwrap();
    assert!(f.keyframe);
    assert_eq!(f.skipped_before, 0);
    assert!(!fb.waiting_for_keyframe());
    assert_eq!(fb.poll_feedback(again + ms(1000)), None);
    assert_eq!(fb.stats().plis, 2);
}

#[test]
fn loss_is_nacked_paced_by_rtt_and_recovered() {
    let t0 = Instant::now();
    let cfg = FrameBufferConfig::default();
    let mut fb = FrameBuffer::new(cfg);
    fb.set_rtt(ms(40));
    for p in frame(10, 0, 2, true) {
        fb.insert(t0, p).unwrap();
    }
    assert!(pop(&mut fb).is_some());
    let f2 = frame(12, 3000, 3, false); // 12, 13, 14
    let f3 = frame(15, 6000, 2, false); // 15, 16
    fb.insert(t0, f2[0].clone()).unwrap();
    fb.insert(t0, f2[2].clone()).unwrap(); // 13 missing
    fb.insert(t0, f3[0].clone()).unwrap();
    fb.insert(t0, f3[1].clone()).unwrap();
    assert!(
        pop(&mut fb).is_none(),
        "frame 2 incomplete, frame 3 not decodable"
    );
    assert_eq!(fb.poll_feedback(t0), None, "reorder allowance first");
    assert_eq!(fb.poll_timeout(), Some(t0 + cfg.reorder_wait));
    let t1 = t0 + cfg.reorder_wait;
    assert_eq!(fb.poll_feedback(t1), Some(Feedback::Nack(vec![13])));
    assert_eq!(fb.poll_feedback(t1), None);
    // Retry one RTT later.
    assert_eq!(fb.poll_timeout(), Some(t1 + ms(40)));
    assert_eq!(fb.poll_feedback(t1 + ms(39)), None);
    assert_eq!(
        fb.poll_feedback(t1 + ms(40)),
        Some(Feedback::Nack(vec![13]))
    );
    // The retransmission arrives: both frames come out, in order.
    fb.insert(t1 + ms(60), f2[1].clone()).unwrap();
    assert_eq!(pop(&mut fb).unwrap().0.timestamp, 3000);
    assert_eq!(pop(&mut fb).unwrap().0.timestamp, 6000);
    let s = fb.stats();
    assert_eq!((s.nacked, s.recovered, s.plis, s.abandoned), (2, 1, 0, 0));
    assert_eq!(fb.missing_count(), 0);
    // A late copy is too old now, a repeat a duplicate.
    assert_eq!(fb.insert(t1, f2[1].clone()), Err(InsertError::TooOld));
    fb.insert(t1, pkt(17, 9000, false, true, false)).unwrap();
    assert_eq!(
        fb.insert(t1, pkt(17, 9000, false, true, false)),
        Err(InsertError::Duplicate)
    );
    assert_eq!((fb.stats().too_old, fb.stats().duplicates), (1, 1));
}

#[test]
fn unrecoverable_loss_asks_for_a_keyframe_and_skips_to_it() {
    let t0 = Instant::now();
    let cfg = FrameBufferConfig::default();
    let mut fb = FrameBuffer::new(cfg);
    fb.set_rtt(ms(30));
    for p in frame(0, 0, 2, true) {
        fb.insert(t0, p).unwrap();
    }
    assert!(pop(&mut fb).is_some());
    // Frame at seq 2..4 loses seq 3 for good; frame 5..6 arrives.
    for p in frame(2, 3000, 3, false) {
        if p.seq != 3 {
            fb.insert(t0, p).unwrap();
        }
    }
    for p in frame(5, 6000, 2, false) {
        fb.insert(t0, p).unwrap();
    }
    // Drive the timers: NACKs until retries are exhausted, then a PLI.
    let mut now = t0;
    let mut nacks = 0;
    let mut pli_at = None;
    while let Some(t) = fb.poll_timeout() {
        now = t;
        match fb.poll_feedback(now) {
            Some(Feedback::Nack(v)) => {
                assert_eq!(v, vec![3]);
                nacks += 1;
            }
            Some(Feedback::Pli) => {
                pli_at = Some(now);
                break;
            }
            None => {}
        }
        assert!(now < t0 + ms(2000), "timers must make progress");
    }
    assert_eq!(nacks, cfg.max_nack_retries);
    let pli_at = pli_at.expect("PLI");
    assert!(pli_at - t0 <= cfg.max_nack_age);
    assert!(fb.waiting_for_keyframe());
    assert!(pop(&mut fb).is_none());
    // The keyframe comes: older frames are skipped.
    for p in frame(7, 9000, 2, true) {
        fb.insert(now, p).unwrap();
    }
    let (f, _) = pop(&mut fb).unwrap();
    assert!(f.keyframe);
    assert_eq!(f.first_seq, 7);
    assert_eq!(f.skipped_before, 2);
    for p in frame(9, 12000, 1, false) {
        fb.insert(now, p).unwrap();
    }
    assert_eq!(pop(&mut fb).unwrap().0.timestamp, 12000);
    assert_eq!(fb.stats().abandoned, 1);
}

#[test]
fn a_complete_keyframe_overtakes_a_stalled_frame() {
    let t0 = Instant::now();
    let mut fb = FrameBuffer::new(FrameBufferConfig::default());
    for p in frame(0, 0, 1, true) {
        fb.insert(t0, p).unwrap();
    }
    assert!(pop(&mut fb).is_some());
    fb.insert(t0, pkt(1, 3000, false, true, false)).unwrap(); // 2 missing
    for p in frame(3, 6000, 2, true) {
        fb.insert(t0, p).unwrap();
    }
    let (f, _) = pop(&mut fb).unwrap();
    assert_eq!((f.timestamp, f.skipped_before), (6000, 1));
    assert_eq!(
        fb.missing_count(),
        0,
        "NACKs for obsolete packets are dropped"
    );
    assert_eq!(fb.poll_feedback(t0 + ms(100)), None);
}

#[test]
fn a_huge_gap_asks_for_a_keyframe_at_once() {
    let t0 = Instant::now();
    let mut fb = FrameBuffer::new(FrameBufferConfig {
        capacity: 64,
        ..FrameBufferConfig::default()
    });
    fb.insert(t0, pkt(0, 0, true, true, true)).unwrap();
    assert!(pop(&mut fb).is_some());
    fb.insert(t0, pkt(1000, 9000, true, true, false)).unwrap();
    assert_eq!(fb.missing_count(), 0);
    assert_eq!(fb.poll_feedback(t0), Some(Feedback::Pli));
}

#[test]
fn frame_ends_without_marker_when_the_next_frame_starts() {
    let t0 = Instant::now();
    let mut fb = FrameBuffer::new(FrameBufferConfig::default());
    fb.insert(t0, pkt(0, 0, false, true, true)).unwrap();
    fb.insert(t0, pkt(1, 0, false, false, true)).unwrap();
    assert!(pop(&mut fb).is_none());
    fb.insert(t0, pkt(2, 3000, false, true, false)).unwrap();
    let (f, p) = pop(&mut fb).unwrap();
    assert_eq!((f.first_seq, f.last_seq, p.len()), (0, 1, 2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Arbitrary packets and timings: no panic, frames come out in order with contiguous
    /// sequence numbers, and the timers always make progress.
    #[test]
    fn arbitrary_input_keeps_invariants(
        ops in prop::collection::vec(
            (any::<u16>(), 0u32..6, any::<bool>(), any::<bool>(), any::<bool>(), 0u64..80),
            1..200,
        ),
        base in any::<u16>(),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut fb = FrameBuffer::new(FrameBufferConfig { capacity: 64, ..FrameBufferConfig::default() });
        let mut last: Option<(u32, u16)> = None;
        let mut out = Vec::new();
        for (off, ts, m, s, k, dt) in ops {
            now += Duration::from_millis(dt);
            let seq = base.wrapping_add(off % 100);
            let _ = fb.insert(now, pkt(seq, ts * 3000, m, s, k));
            while let Some(f) = fb.pop_frame(&mut out) {
                prop_assert_eq!(out.len(), usize::from(f.last_seq.wrapping_sub(f.first_seq)) + 1);
                if let Some((_, last_seq)) = last {
                    // strictly after the previous frame
                    prop_assert!((f.first_seq.wrapping_sub(last_seq) as i16) > 0);
                }
                last = Some((f.timestamp, f.last_seq));
            }
            let mut guard = 0;
            while let Some(t) = fb.poll_timeout() {
                if t > now { break; }
                let _ = fb.poll_feedback(now);
                guard += 1;
                prop_assert!(guard < 10, "timer due at {:?} never cleared", t - t0);
            }
        }
    }
}
