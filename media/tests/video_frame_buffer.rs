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

/// Drives the timers from `from` until `stop` says so (or 3 s pass), collecting feedback
/// with its time.
fn drive(
    fb: &mut FrameBuffer,
    from: Instant,
    mut stop: impl FnMut(&Feedback) -> bool,
) -> Vec<(Instant, Feedback)> {
    let mut out = Vec::new();
    while let Some(t) = fb.poll_timeout() {
        let now = t.max(from);
        assert!(now < from + ms(3000), "timers must make progress");
        while let Some(f) = fb.poll_feedback(now) {
            let done = stop(&f);
            out.push((now, f));
            if done {
                return out;
            }
        }
    }
    out
}

#[test]
fn lost_marker_packet_with_nothing_after_is_nacked_and_recovered() {
    let t0 = Instant::now();
    let cfg = FrameBufferConfig::default();
    let mut fb = FrameBuffer::new(cfg);
    fb.set_rtt(ms(40));
    for p in frame(100, 0, 2, true) {
        fb.insert(t0, p).unwrap();
    }
    assert!(pop(&mut fb).is_some());
    // Frame 102..104: the marker packet 104 is lost, and the sender pauses.
    let f = frame(102, 3000, 3, false);
    fb.insert(t0, f[0].clone()).unwrap();
    fb.insert(t0 + ms(2), f[1].clone()).unwrap();
    assert!(pop(&mut fb).is_none());
    assert_eq!(fb.missing_count(), 0, "no newer packet shows the loss");
    // The tail timer runs from the newest packet's arrival.
    let due = t0 + ms(2) + cfg.tail_wait;
    assert_eq!(fb.poll_timeout(), Some(due));
    assert_eq!(fb.poll_feedback(due - ms(1)), None);
    assert_eq!(fb.poll_feedback(due), Some(Feedback::Nack(vec![104])));
    assert_eq!(fb.poll_feedback(due), None);
    // Retries are one RTT apart.
    assert_eq!(fb.poll_timeout(), Some(due + ms(40)));
    assert_eq!(fb.poll_feedback(due + ms(39)), None);
    assert_eq!(
        fb.poll_feedback(due + ms(40)),
        Some(Feedback::Nack(vec![104]))
    );
    // The retransmission closes the frame: it is decodable.
    fb.insert(due + ms(70), f[2].clone()).unwrap();
    let (info, payloads) = pop(&mut fb).unwrap();
    assert_eq!(
        (info.timestamp, info.first_seq, info.last_seq),
        (3000, 102, 104)
    );
    assert_eq!(payloads.len(), 3);
    let s = fb.stats();
    assert_eq!((s.tail_probes, s.nacked, s.recovered, s.plis), (1, 2, 1, 0));
    assert_eq!(fb.missing_count(), 0);
    assert_eq!(fb.poll_timeout(), None, "nothing left to do");
}

#[test]
fn two_lost_tail_packets_are_nacked_one_after_the_other() {
    let t0 = Instant::now();
    let cfg = FrameBufferConfig::default();
    let mut fb = FrameBuffer::new(cfg);
    fb.set_rtt(ms(20));
    let f = frame(500, 0, 4, true); // 500..503, 502 and 503 lost
    fb.insert(t0, f[0].clone()).unwrap();
    fb.insert(t0, f[1].clone()).unwrap();
    let fb1 = drive(&mut fb, t0, |_| true);
    assert_eq!(fb1, vec![(t0 + cfg.tail_wait, Feedback::Nack(vec![502]))]);
    let t1 = t0 + cfg.tail_wait + ms(20);
    fb.insert(t1, f[2].clone()).unwrap(); // still no marker
    assert!(pop(&mut fb).is_none());
    let fb2 = drive(&mut fb, t1, |_| true);
    assert_eq!(fb2, vec![(t1 + cfg.tail_wait, Feedback::Nack(vec![503]))]);
    fb.insert(t1 + cfg.tail_wait + ms(20), f[3].clone())
        .unwrap();
    let (info, _) = pop(&mut fb).unwrap();
    assert!(info.keyframe);
    assert_eq!((info.first_seq, info.last_seq), (500, 503));
    assert_eq!(fb.stats().tail_probes, 2);
}

#[test]
fn lost_tail_that_never_comes_back_ends_in_a_pli_then_the_keyframe_repairs() {
    let t0 = Instant::now();
    let cfg = FrameBufferConfig::default();
    let mut fb = FrameBuffer::new(cfg);
    fb.set_rtt(ms(30));
    for p in frame(0, 0, 2, true) {
        fb.insert(t0, p).unwrap();
    }
    assert!(pop(&mut fb).is_some());
    let f = frame(2, 3000, 3, false); // 4 lost for good
    fb.insert(t0, f[0].clone()).unwrap();
    fb.insert(t0, f[1].clone()).unwrap();
    let out = drive(&mut fb, t0, |f| *f == Feedback::Pli);
    let nacks: Vec<_> = out
        .iter()
        .filter_map(|(t, f)| match f {
            Feedback::Nack(v) => Some((*t, v.clone())),
            Feedback::Pli => None,
        })
        .collect();
    assert_eq!(nacks.len() as u32, cfg.max_nack_retries);
    assert!(nacks.iter().all(|(_, v)| *v == vec![4]));
    // Paced by the RTT.
    for w in nacks.windows(2) {
        assert_eq!(w[1].0 - w[0].0, ms(30));
    }
    let (pli_at, last) = out.last().unwrap().clone();
    assert_eq!(last, Feedback::Pli);
    assert!(pli_at - t0 <= cfg.tail_wait + cfg.max_nack_age);
    assert!(fb.waiting_for_keyframe());
    let s = fb.stats();
    assert_eq!((s.tail_probes, s.abandoned, s.plis), (1, 1, 1));
    // No new probe for the same tail: only paced PLIs until a keyframe comes.
    assert_eq!(fb.poll_feedback(pli_at + ms(1)), None);
    assert_eq!(fb.poll_timeout(), Some(pli_at + cfg.pli_interval));
    for p in frame(5, 9000, 2, true) {
        fb.insert(pli_at + ms(50), p).unwrap();
    }
    let (info, _) = pop(&mut fb).unwrap();
    assert!(info.keyframe);
    assert_eq!((info.first_seq, info.skipped_before), (5, 1));
    assert_eq!(fb.stats().tail_probes, 1);
}

#[test]
fn lost_marker_packet_followed_by_later_frames() {
    let t0 = Instant::now();
    let cfg = FrameBufferConfig::default();
    let mut fb = FrameBuffer::new(cfg);
    fb.set_rtt(ms(40));
    for p in frame(10, 0, 1, true) {
        fb.insert(t0, p).unwrap();
    }
    assert!(pop(&mut fb).is_some());
    let f2 = frame(11, 3000, 3, false); // 13 (marker) lost
    let f3 = frame(14, 6000, 2, false);
    fb.insert(t0, f2[0].clone()).unwrap();
    fb.insert(t0, f2[1].clone()).unwrap();
    // The next frame arrives well before the tail timer: its sequence numbers show the gap.
    for p in &f3 {
        fb.insert(t0 + ms(5), p.clone()).unwrap();
    }
    assert!(
        pop(&mut fb).is_none(),
        "frame 2 open, frame 3 depends on it"
    );
    let t1 = t0 + ms(5) + cfg.reorder_wait;
    assert_eq!(fb.poll_timeout(), Some(t1));
    assert_eq!(fb.poll_feedback(t1), Some(Feedback::Nack(vec![13])));
    assert_eq!(
        fb.poll_feedback(t1 + ms(40)),
        Some(Feedback::Nack(vec![13]))
    );
    fb.insert(t1 + ms(45), f2[2].clone()).unwrap();
    let a = pop(&mut fb).unwrap().0;
    let b = pop(&mut fb).unwrap().0;
    assert_eq!((a.timestamp, a.last_seq, b.timestamp), (3000, 13, 6000));
    let s = fb.stats();
    assert_eq!((s.tail_probes, s.recovered, s.plis), (0, 1, 0));
}

#[test]
fn lost_marker_packet_followed_by_later_frames_that_also_stop() {
    // Frame 2 loses its marker, frame 3 loses its marker too, then the sender pauses: the
    // gap and the tail timer each find one.
    let t0 = Instant::now();
    let cfg = FrameBufferConfig::default();
    let mut fb = FrameBuffer::new(cfg);
    fb.set_rtt(ms(40));
    fb.insert(t0, pkt(0, 0, true, true, true)).unwrap();
    assert!(pop(&mut fb).is_some());
    let f2 = frame(1, 3000, 2, false); // 2 lost
    let f3 = frame(3, 6000, 2, false); // 4 lost
    fb.insert(t0, f2[0].clone()).unwrap();
    fb.insert(t0 + ms(1), f3[0].clone()).unwrap();
    let mut wanted = Vec::new();
    drive(&mut fb, t0 + ms(1), |f| match f {
        Feedback::Nack(v) => {
            wanted.extend_from_slice(v);
            wanted.contains(&2) && wanted.contains(&4)
        }
        Feedback::Pli => true,
    });
    assert!(wanted.contains(&2) && wanted.contains(&4), "{wanted:?}");
    assert_eq!(fb.stats().plis, 0);
    let now = t0 + ms(200);
    fb.insert(now, f3[1].clone()).unwrap();
    fb.insert(now, f2[1].clone()).unwrap();
    assert_eq!(pop(&mut fb).unwrap().0.timestamp, 3000);
    assert_eq!(pop(&mut fb).unwrap().0.timestamp, 6000);
}

#[test]
fn a_complete_frame_at_the_tail_is_never_probed() {
    let t0 = Instant::now();
    let mut fb = FrameBuffer::new(FrameBufferConfig::default());
    for p in frame(7, 0, 3, true) {
        fb.insert(t0, p).unwrap();
    }
    assert!(pop(&mut fb).is_some());
    // A complete frame still in the buffer (not popped) at the tail: no probe either.
    for p in frame(10, 3000, 2, false) {
        fb.insert(t0, p).unwrap();
    }
    assert_eq!(fb.poll_timeout(), None);
    assert_eq!(fb.poll_feedback(t0 + ms(5000)), None);
    assert_eq!(fb.stats().tail_probes, 0);
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
