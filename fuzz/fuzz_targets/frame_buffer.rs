//! Fuzz target: the video frame buffer under arbitrary packet sequences and timings.
//!
//! Each 6-byte record is one step: insert a packet (sequence number near a moving base,
//! timestamp, marker/start/keyframe flags), advance the clock, pop frames, run the timers.
//! Checked: no panic; frames come out strictly in sequence order with one payload per
//! sequence number; after `poll_feedback(now)` the timers are never left due in a loop;
//! a NACK is non-empty and names each sequence number once, in order (gaps the buffer saw
//! pass by, or the packet after a frame left open at the tail); `tail_wait` varies too.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use supernode_media::video::{Feedback, FrameBuffer, FrameBufferConfig, VideoPacket};

fuzz_target!(|data: &[u8]| {
    let Some((&cfg_byte, steps)) = data.split_first() else {
        return;
    };
    let t0 = Instant::now();
    let mut now = t0;
    let mut fb = FrameBuffer::new(FrameBufferConfig {
        capacity: 16 << (cfg_byte % 6),
        tail_wait: Duration::from_millis(u64::from(cfg_byte >> 2)),
        ..FrameBufferConfig::default()
    });
    fb.set_rtt(Duration::from_millis(u64::from(cfg_byte)));
    let mut base = 65_000u16;
    let mut last_seq: Option<u16> = None;
    let mut payloads = Vec::new();
    for rec in steps.chunks_exact(6) {
        let [a, b, c, flags, dt, adv] = [rec[0], rec[1], rec[2], rec[3], rec[4], rec[5]];
        base = base.wrapping_add(u16::from(adv % 8));
        let seq = base
            .wrapping_add(u16::from_be_bytes([a, b]) % 300)
            .wrapping_sub(100);
        now += Duration::from_millis(u64::from(dt % 64));
        let _ = fb.insert(
            now,
            VideoPacket {
                seq,
                timestamp: u32::from(c % 16) * 3000,
                marker: flags & 1 != 0,
                frame_start: flags & 2 != 0,
                keyframe: flags & 4 != 0,
                payload: Bytes::from(vec![flags]),
            },
        );
        if flags & 8 != 0 {
            fb.set_rtt(Duration::from_millis(u64::from(dt)));
        }
        while let Some(f) = fb.pop_frame(&mut payloads) {
            assert_eq!(
                payloads.len(),
                usize::from(f.last_seq.wrapping_sub(f.first_seq)) + 1
            );
            if let Some(l) = last_seq {
                assert!(f.first_seq.wrapping_sub(l) as i16 > 0);
            }
            last_seq = Some(f.last_seq);
        }
        let mut rounds = 0;
        while let Some(t) = fb.poll_timeout() {
            if t > now {
                break;
            }
            if let Some(Feedback::Nack(list)) = fb.poll_feedback(now) {
                assert!(!list.is_empty());
                assert!(
                    list.windows(2)
                        .all(|w| (w[1].wrapping_sub(w[0]) as i16) > 0)
                );
            }
            rounds += 1;
            assert!(rounds < 8, "timer due but never served");
        }
    }
});
