//! Two sans-IO media engines driven in one thread, faster than real time, over a simulated
//! 10 ms link that loses video packets: the receiver NACKs single losses (and the sender
//! retransmits them), and after a 500 ms video outage it sends a PLI and the sender answers
//! with a keyframe, so decoding resumes.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use supernode_edge::engine::{EngineConfig, MediaEngine, VideoSource};
use supernode_media::packet::demux::{PacketKind, classify};
use supernode_media::packet::rtp::RtpPacket;

struct InFlight {
    at: Instant,
    to: usize,
    from: SocketAddr,
    data: Vec<u8>,
}

#[test]
fn nack_and_pli_repair_video_loss() {
    let addrs: [SocketAddr; 2] = [
        "127.0.0.1:5000".parse().unwrap(),
        "127.0.0.1:5002".parse().unwrap(),
    ];
    let t0 = Instant::now();
    let wall = Duration::from_secs(1_700_000_000);
    let mk = |me: usize| {
        let mut cfg = EngineConfig::new(wall, addrs[1 - me]);
        cfg.video = VideoSource::Pattern {
            width: 320,
            height: 180,
        };
        cfg.video_bitrate_bps = 300_000;
        cfg.ssrc_seed = me as u64 + 10;
        MediaEngine::new(t0, cfg).unwrap()
    };
    let mut engines = [mk(0), mk(1)];
    let mut flight: Vec<InFlight> = Vec::new();
    let mut dropped: HashSet<(usize, u16)> = HashSet::new();
    let mut blackhole: HashSet<(usize, u16)> = HashSet::new();
    let outage = (
        t0 + Duration::from_millis(2_000),
        t0 + Duration::from_millis(2_500),
    );
    let end = t0 + Duration::from_secs(5);
    let mut now = t0;
    while now < end {
        for (i, e) in engines.iter_mut().enumerate() {
            if e.poll_timeout() <= now {
                e.handle_timeout(now);
            }
            while let Some(t) = e.poll_transmit() {
                // Lose every 25th video packet once (its retransmission gets through), and
                // every video packet sent during the outage for good (retransmissions too),
                // so that only a keyframe can repair the picture.
                if classify(&t.data) == PacketKind::Rtp
                    && let Ok(p) = RtpPacket::parse(&t.data)
                    && p.payload_type().0 == 96
                {
                    let seq = p.sequence_number();
                    let in_outage = now >= outage.0 && now < outage.1;
                    if in_outage {
                        blackhole.insert((i, seq));
                    }
                    if blackhole.contains(&(i, seq)) || (seq % 25 == 3 && dropped.insert((i, seq)))
                    {
                        continue;
                    }
                }
                flight.push(InFlight {
                    at: now + Duration::from_millis(10),
                    to: 1 - i,
                    from: addrs[i],
                    data: t.data,
                });
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = flight.into_iter().partition(|f| f.at <= now);
        flight = later;
        for f in due {
            engines[f.to].handle_datagram(now, f.from, &f.data);
        }
        now += Duration::from_millis(1);
    }
    let [a, b] = engines;
    let (ra, rb) = (a.finish(end).report, b.finish(end).report);
    for (r, other) in [(&ra, &rb), (&rb, &ra)] {
        eprint!("{}", r.to_human());
        assert!(r.ok, "{:?}", r.failure);
        assert!(r.video.nacks_sent > 0, "single losses are NACKed");
        assert!(other.video.retransmissions > 0, "and retransmitted");
        assert!(r.video.plis_sent >= 1, "the outage asks for a keyframe");
        assert!(
            other.video.keyframes_requested >= 1,
            "which the sender makes"
        );
        // 150 pictures sent; the outage costs about 15 plus the wait for the keyframe.
        assert!(r.video.frames_decoded > 110, "{}", r.video.frames_decoded);
        assert!(r.video.psnr_db.unwrap() >= 30.0);
        // Audio was untouched by the video losses.
        assert_eq!(r.audio.loss_pct, 0.0);
        assert!(r.audio.similarity.unwrap() > 0.9);
    }
}

/// Bridged relay legs (one per medium, like GStreamer through two relay REST sessions):
/// audio and video both arrive with payload type 96, told apart by the address they come
/// from.
#[test]
fn streams_on_separate_legs_are_told_apart_by_address() {
    let a_addr: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let (leg_audio, leg_video): (SocketAddr, SocketAddr) = (
        "127.0.0.1:7000".parse().unwrap(),
        "127.0.0.1:7002".parse().unwrap(),
    );
    let t0 = Instant::now();
    let wall = Duration::from_secs(1_700_000_000);
    let video = VideoSource::Pattern {
        width: 320,
        height: 180,
    };
    // The receiver under test: audio and video legs at different addresses.
    let mut rx_cfg = EngineConfig::new(wall, leg_audio);
    rx_cfg.remote_video = leg_video;
    rx_cfg.video = VideoSource::Off;
    rx_cfg.ssrc_seed = 1;
    let mut rx = MediaEngine::new(t0, rx_cfg).unwrap();
    // The sender: both streams with payload type 96, as GStreamer's payloaders default to.
    let mut tx_cfg = EngineConfig::new(wall, a_addr);
    tx_cfg.video = video;
    tx_cfg.video_bitrate_bps = 300_000;
    tx_cfg.audio_pt = 96;
    tx_cfg.video_pt = 96;
    tx_cfg.receive_video = false;
    tx_cfg.ssrc_seed = 2;
    let mut tx = MediaEngine::new(t0, tx_cfg).unwrap();
    let end = t0 + Duration::from_secs(3);
    let mut now = t0;
    while now < end {
        for e in [&mut rx, &mut tx] {
            if e.poll_timeout() <= now {
                e.handle_timeout(now);
            }
        }
        while rx.poll_transmit().is_some() {}
        while let Some(t) = tx.poll_transmit() {
            // Audio SSRCs are odd, video SSRCs even (see the engine): route like two legs.
            let from = match RtpPacket::parse(&t.data) {
                Ok(p) if classify(&t.data) == PacketKind::Rtp && p.ssrc().0 % 2 == 0 => leg_video,
                _ => leg_audio,
            };
            rx.handle_datagram(now, from, &t.data);
        }
        now += Duration::from_millis(1);
    }
    let r = rx.finish(end).report;
    eprint!("{}", r.to_human());
    assert!(r.ok, "{:?}", r.failure);
    assert!(r.audio.packets_received > 140);
    assert!(r.audio.similarity.unwrap() > 0.9);
    assert!(r.video.frames_decoded > 80);
    assert!(r.video.psnr_db.unwrap() > 30.0);
    assert_eq!(r.drops.unknown_stream, 0);
}

/// Garbage in: random datagrams, and RTP/RTCP headers over random bytes, are counted as
/// drops and never panic the engine.
#[test]
fn garbage_datagrams_are_counted_not_fatal() {
    let peer: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let t0 = Instant::now();
    let mut cfg = EngineConfig::new(Duration::from_secs(1_700_000_000), peer);
    cfg.video = VideoSource::Off;
    cfg.ssrc_seed = 3;
    let mut e = MediaEngine::new(t0, cfg).unwrap();
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000u32 {
        let len = (next() % 300) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if len >= 12 {
            match i % 4 {
                // RTP v2 with one of the call's payload types.
                0 => {
                    d[0] = 0x80;
                    d[1] = if i % 8 == 0 { 111 } else { 96 };
                }
                // RTCP v2 (SR, RR, RTPFB, PSFB).
                1 => {
                    d[0] = 0x80 | (next() % 32) as u8;
                    d[1] = [200, 201, 205, 206][(next() % 4) as usize];
                }
                _ => {}
            }
        }
        let now = t0 + Duration::from_micros(u64::from(i) * 100);
        e.handle_datagram(now, peer, &d);
        if e.poll_timeout() <= now {
            e.handle_timeout(now);
        }
        while e.poll_transmit().is_some() {}
    }
    let r = e.finish(t0 + Duration::from_secs(2)).report;
    let d = &r.drops;
    assert!(d.not_rtp + d.malformed + d.unknown_stream > 1_000, "{d:?}");
}
