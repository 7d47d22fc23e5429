//! Video end to end, faster than real time: test pattern → H.264 encode (openh264) →
//! RFC 6184 packetize → RTP → seeded network emulator → frame buffer → depacketize →
//! decode, with RTCP NACK/PLI going back through a second emulator to a sender that keeps
//! what it sent. Everything runs on simulated time.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use supernode_media::codec::I420Frame;
use supernode_media::codec::h264::{H264Config, H264Decoder, H264Encoder};
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::net::{NetEmulator, NetProfile};
use supernode_media::packet::rtcp::{Nack, NackPair, Pli};
use supernode_media::packet::rtcp::{RtcpCompound, RtcpPacket, WireList};
use supernode_media::packet::rtp::{RtpHeader, RtpPacket};
use supernode_media::payload::h264::{H264Depacketizer, H264Packetizer, inspect};
use supernode_media::video::{Feedback, FrameBuffer, FrameBufferConfig, VideoPacket};

const W: usize = 640;
const H: usize = 360;
const FPS: u64 = 30;
const TS_BASE: u32 = 0xFFFF_0000; // timestamps wrap during the test
const SEQ_BASE: u16 = 65_000; // so do sequence numbers
const MEDIA: Ssrc = Ssrc(0x1111);
const RECEIVER: Ssrc = Ssrc(0x2222);

struct Sender {
    enc: H264Encoder,
    pk: H264Packetizer,
    seq: u16,
    history: HashMap<u16, Bytes>,
    order: VecDeque<u16>,
    answer_nacks: bool,
    /// Frames whose marker packet is lost on first transmission (retransmissions get through).
    lose_marker_of: Vec<u64>,
    retransmitted: u64,
    keyframes_forced: u64,
    au: Vec<u8>,
    pic: I420Frame,
}

impl Sender {
    fn new(answer_nacks: bool) -> Self {
        let cfg = H264Config {
            width: W,
            height: H,
            bitrate_bps: 800_000,
            frame_rate: FPS as f32,
            keyframe_interval: 0,
        };
        Self {
            enc: H264Encoder::new(&cfg).unwrap(),
            pk: H264Packetizer::new(1200).unwrap(),
            seq: SEQ_BASE,
            history: HashMap::new(),
            order: VecDeque::new(),
            answer_nacks,
            lose_marker_of: Vec::new(),
            retransmitted: 0,
            keyframes_forced: 0,
            au: Vec::new(),
            pic: I420Frame::new(W, H).unwrap(),
        }
    }

    /// Encodes frame `n` and sends its packets into `net`.
    fn send_frame(&mut self, now: Instant, n: u64, net: &mut NetEmulator) {
        self.pic.draw_test_pattern(n);
        self.enc.encode(&self.pic, &mut self.au).unwrap();
        let ts = TS_BASE.wrapping_add((n * 90_000 / FPS) as u32);
        let mut out = Vec::new();
        let seq = &mut self.seq;
        self.pk
            .packetize(&self.au, |payload, marker| {
                let hdr = RtpHeader {
                    marker,
                    payload_type: Pt(96),
                    sequence_number: *seq,
                    timestamp: ts,
                    ssrc: MEDIA,
                    ..RtpHeader::default()
                };
                let mut buf = vec![0u8; 12 + payload.len()];
                hdr.write(payload, &mut buf).unwrap();
                out.push((*seq, Bytes::from(buf), marker));
                *seq = seq.wrapping_add(1);
            })
            .unwrap();
        for (seq, pkt, marker) in out {
            self.history.insert(seq, pkt.clone());
            self.order.push_back(seq);
            if self.order.len() > 2000 {
                let old = self.order.pop_front().unwrap();
                self.history.remove(&old);
            }
            if marker && self.lose_marker_of.contains(&n) {
                continue;
            }
            net.send(now, pkt);
        }
    }

    fn on_rtcp(&mut self, now: Instant, rtcp: &[u8], net: &mut NetEmulator) {
        for p in RtcpCompound::parse(rtcp) {
            match p.unwrap() {
                RtcpPacket::Nack(nack) if self.answer_nacks => {
                    assert_eq!(nack.media_ssrc, MEDIA);
                    for seq in nack.lost() {
                        if let Some(pkt) = self.history.get(&seq) {
                            net.send(now, pkt.clone());
                            self.retransmitted += 1;
                        }
                    }
                }
                RtcpPacket::Pli(pli) => {
                    assert_eq!(pli.media_ssrc, MEDIA);
                    self.enc.force_keyframe();
                    self.keyframes_forced += 1;
                }
                _ => {}
            }
        }
    }
}

struct Receiver {
    fb: FrameBuffer,
    de: H264Depacketizer,
    dec: H264Decoder,
    payloads: Vec<Bytes>,
    au: Vec<u8>,
    out: I420Frame,
    reference: I420Frame,
    /// (decode time, frame number, PSNR)
    decoded: Vec<(Instant, u64, f64)>,
}

impl Receiver {
    fn new() -> Self {
        let mut fb = FrameBuffer::new(FrameBufferConfig::default());
        fb.set_rtt(Duration::from_millis(45));
        Self {
            fb,
            de: H264Depacketizer::default(),
            dec: H264Decoder::new().unwrap(),
            payloads: Vec::new(),
            au: Vec::new(),
            out: I420Frame::new(2, 2).unwrap(),
            reference: I420Frame::new(W, H).unwrap(),
            decoded: Vec::new(),
        }
    }

    fn on_rtp(&mut self, now: Instant, datagram: &Bytes) {
        let pkt = RtpPacket::parse(datagram).unwrap();
        let hints = inspect(pkt.payload()).unwrap();
        let off = pkt.payload_offset();
        let _ = self.fb.insert(
            now,
            VideoPacket {
                seq: pkt.sequence_number(),
                timestamp: pkt.timestamp(),
                marker: pkt.marker(),
                frame_start: hints.frame_start,
                keyframe: hints.keyframe,
                payload: datagram.slice(off..off + pkt.payload().len()),
            },
        );
        while let Some(frame) = self.fb.pop_frame(&mut self.payloads) {
            let info = self
                .de
                .depacketize_ordered(self.payloads.iter().map(|b| &b[..]), &mut self.au)
                .unwrap();
            assert_eq!(info.keyframe, frame.keyframe);
            assert!(self.dec.decode(&self.au, &mut self.out).unwrap());
            let n = u64::from(frame.timestamp.wrapping_sub(TS_BASE)) * FPS / 90_000;
            self.reference.draw_test_pattern(n);
            let psnr = self.out.psnr(&self.reference).unwrap();
            self.decoded.push((now, n, psnr));
        }
    }

    fn feedback(&mut self, now: Instant, net: &mut NetEmulator) {
        while let Some(fb) = self.fb.poll_feedback(now) {
            let mut buf = [0u8; 1500];
            let n = match fb {
                Feedback::Nack(list) => {
                    let mut pairs = [NackPair::default(); 300];
                    let k = Nack::pack(list, &mut pairs).unwrap();
                    Nack {
                        sender_ssrc: RECEIVER,
                        media_ssrc: MEDIA,
                        pairs: WireList::Items(&pairs[..k]),
                    }
                    .write(&mut buf)
                    .unwrap()
                }
                Feedback::Pli => Pli {
                    sender_ssrc: RECEIVER,
                    media_ssrc: MEDIA,
                }
                .write(&mut buf)
                .unwrap(),
            };
            net.send(now, Bytes::copy_from_slice(&buf[..n]));
        }
    }
}

struct Outcome {
    rx: Receiver,
    tx: Sender,
    sent_at: Vec<Instant>,
}

/// Runs `secs` seconds of video; `blackout` = (from, to) offsets of a forward-path outage;
/// the marker packets of frames `lose_marker_of` are lost on first transmission.
fn run(
    secs: u64,
    blackout: Option<(u64, u64)>,
    answer_nacks: bool,
    seed: u64,
    lose_marker_of: &[u64],
) -> Outcome {
    let t0 = Instant::now();
    let mut fwd = NetEmulator::new(NetProfile::wired(), seed);
    let mut rev = NetEmulator::new(NetProfile::wired(), seed + 1);
    if let Some((a, b)) = blackout {
        fwd.set_blackout(t0 + Duration::from_millis(a), t0 + Duration::from_millis(b));
    }
    let mut tx = Sender::new(answer_nacks);
    tx.lose_marker_of = lose_marker_of.to_vec();
    let mut rx = Receiver::new();
    let frames = secs * FPS;
    let frame_at = |n: u64| t0 + Duration::from_micros(n * 1_000_000 / FPS);
    let end = frame_at(frames) + Duration::from_millis(300);
    let mut next_frame = 0u64;
    let mut sent_at = Vec::new();
    let mut now = t0;
    loop {
        if next_frame < frames && frame_at(next_frame) <= now {
            tx.send_frame(now, next_frame, &mut fwd);
            sent_at.push(now);
            next_frame += 1;
        }
        while let Some(d) = fwd.poll(now) {
            rx.on_rtp(now, &d);
        }
        rx.feedback(now, &mut rev);
        while let Some(r) = rev.poll(now) {
            tx.on_rtcp(now, &r, &mut fwd);
        }
        // Next event.
        let mut next = end;
        if next_frame < frames {
            next = next.min(frame_at(next_frame));
        }
        for t in [
            fwd.next_delivery(),
            rev.next_delivery(),
            rx.fb.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        {
            next = next.min(t);
        }
        if now >= end {
            break;
        }
        now = next.max(now);
        if next <= now && now < end {
            // Something due now was handled above; nudge time forward minimally.
            now += Duration::from_micros(100);
        }
    }
    Outcome { rx, tx, sent_at }
}

#[test]
fn clean_path_640x360_800kbps_keeps_psnr_above_32db() {
    let o = run(3, None, true, 7, &[]);
    let d = &o.rx.decoded;
    assert_eq!(d.len(), 90, "every frame decoded");
    let frames: Vec<u64> = d.iter().map(|x| x.1).collect();
    assert_eq!(
        frames,
        (0..90).collect::<Vec<_>>(),
        "in order, none missing"
    );
    let min = d.iter().map(|x| x.2).fold(f64::MAX, f64::min);
    let mean = d.iter().map(|x| x.2).sum::<f64>() / d.len() as f64;
    eprintln!("clean: 90 frames, PSNR mean {mean:.2} dB, min {min:.2} dB");
    assert!(min >= 32.0, "min PSNR {min:.2} dB");
    let s = o.rx.fb.stats();
    assert_eq!((s.nacked, s.plis, s.keyframes), (0, 0, 1));
}

fn resume_after_blackout(answer_nacks: bool) -> (Outcome, Duration) {
    let (a, b) = (1000, 1500); // a 500 ms outage
    let o = run(4, Some((a, b)), answer_nacks, 11, &[]);
    let t0 = o.sent_at[0];
    let outage_end = t0 + Duration::from_millis(b);
    // The first frame sent after the outage that got decoded, and when.
    let first_after =
        o.rx.decoded
            .iter()
            .find(|(_, n, _)| o.sent_at[*n as usize] >= outage_end)
            .expect("frames resume");
    let resumed = first_after.0 - outage_end;
    // All decoded pictures are right (no corrupt picture reached the screen).
    let min = o.rx.decoded.iter().map(|x| x.2).fold(f64::MAX, f64::min);
    assert!(min >= 30.0, "min PSNR {min:.2}");
    // Frames keep flowing to the end.
    assert_eq!(o.rx.decoded.last().unwrap().1, 4 * FPS - 1);
    (o, resumed)
}

#[test]
fn after_a_500ms_outage_nack_repairs_and_frames_resume_within_1s() {
    let (o, resumed) = resume_after_blackout(true);
    let s = o.rx.fb.stats();
    eprintln!(
        "NACK path: resumed {resumed:?} after the outage; {} decoded, {} retransmitted, stats {s:?}",
        o.rx.decoded.len(),
        o.tx.retransmitted
    );
    assert!(
        resumed < Duration::from_secs(1),
        "resumed after {resumed:?}"
    );
    assert!(s.nacked > 0 && s.recovered > 0 && o.tx.retransmitted > 0);
    assert_eq!(s.plis, 0, "NACK alone repaired the outage");
    // Retransmission brought back every frame, the ones lost in the outage too.
    assert_eq!(o.rx.decoded.len() as u64, 4 * FPS);
}

#[test]
fn after_a_500ms_outage_without_retransmission_pli_brings_a_keyframe_within_1s() {
    let (o, resumed) = resume_after_blackout(false);
    let s = o.rx.fb.stats();
    eprintln!(
        "PLI path: resumed {resumed:?} after the outage; {} decoded, stats {s:?}",
        o.rx.decoded.len()
    );
    assert!(
        resumed < Duration::from_secs(1),
        "resumed after {resumed:?}"
    );
    assert!(s.plis >= 1 && o.tx.keyframes_forced >= 1);
    assert!(s.keyframes >= 2);
    assert!(s.abandoned > 0);
}

#[test]
fn a_lost_marker_packet_is_repaired_mid_stream_and_at_the_end_of_the_stream() {
    // Frame 10 loses its marker packet with frames following; frame 29, the last before the
    // sender stops, loses its marker packet and nothing follows it.
    let o = run(1, None, true, 5, &[10, 29]);
    let s = o.rx.fb.stats();
    eprintln!("lost markers: {} decoded, stats {s:?}", o.rx.decoded.len());
    let frames: Vec<u64> = o.rx.decoded.iter().map(|x| x.1).collect();
    assert_eq!(
        frames,
        (0..30).collect::<Vec<_>>(),
        "every frame decoded, in order"
    );
    assert_eq!(o.tx.retransmitted, 2);
    // Both losses are found by the tail timer: at 30 fps the next frame starts 33 ms later,
    // after `tail_wait` (30 ms), so frame 10's loss is NACKed before frame 11 could show it.
    assert_eq!((s.recovered, s.tail_probes, s.nacked, s.plis), (2, 2, 2, 0));
    let min = o.rx.decoded.iter().map(|x| x.2).fold(f64::MAX, f64::min);
    assert!(min >= 32.0, "min PSNR {min:.2}");
}
