//! Interoperability with GStreamer over real loopback UDP: our depacketizer and decoder take
//! what `rtph264pay` sends, and `rtph264depay ! avdec_h264` takes what our packetizer sends.
//!
//! Needs `gst-launch-1.0` with the good/bad/libav plugins. Without them the tests print
//! `SKIP: ...` and pass, unless `SUPERNODE_REQUIRE_EXTERNAL=1` (CI), where they fail.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use bytes::Bytes;
use supernode_media::codec::I420Frame;
use supernode_media::codec::h264::{H264Config, H264Decoder, H264Encoder};
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtp::{RtpHeader, RtpPacket};
use supernode_media::payload::h264::{
    FU_A, H264Depacketizer, H264Packetizer, STAP_A, inspect, nal_type,
};
use supernode_media::video::{FrameBuffer, FrameBufferConfig, VideoPacket};
use supernode_testkit::gstreamer::{self, Pipeline};
use supernode_testkit::net::{free_udp_port, wait_udp_bound};

#[test]
fn our_depacketizer_decodes_what_rtph264pay_sends() {
    if !gstreamer::available(
        "rtph264pay -> our depacketizer",
        &[
            "videotestsrc",
            "openh264enc",
            "h264parse",
            "rtph264pay",
            "udpsink",
        ],
    ) {
        return;
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    const FRAMES: usize = 30;
    // Snow is incompressible: big pictures, so FU-A; two slices per picture; SPS/PPS
    // aggregated into STAP-A before each IDR.
    let mut child = Pipeline::spawn(&format!(
        "videotestsrc num-buffers={FRAMES} pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! openh264enc bitrate=2000000 num-slices=2 gop-size=10 ! h264parse \
         ! rtph264pay mtu=800 config-interval=-1 aggregate-mode=zero-latency pt=96 \
         ! udpsink host=127.0.0.1 port={port}"
    ));
    let mut fb = FrameBuffer::new(FrameBufferConfig::default());
    let mut de = H264Depacketizer::default();
    let mut dec = H264Decoder::new().unwrap();
    let mut out = I420Frame::new(2, 2).unwrap();
    let (mut payloads, mut au) = (Vec::new(), Vec::new());
    let (mut decoded, mut keyframes, mut stap, mut fu, mut max_len) = (0, 0, 0, 0, 0);
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let now = Instant::now();
    let mut exited_at: Option<Instant> = None;
    while start.elapsed() < Duration::from_secs(20) {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let pkt = RtpPacket::parse(&buf[..n]).unwrap();
                let payload = pkt.payload();
                max_len = max_len.max(payload.len());
                match nal_type(payload[0]) {
                    STAP_A => stap += 1,
                    FU_A => fu += 1,
                    _ => {}
                }
                let hints = inspect(payload).unwrap();
                fb.insert(
                    now,
                    VideoPacket {
                        seq: pkt.sequence_number(),
                        timestamp: pkt.timestamp(),
                        marker: pkt.marker(),
                        frame_start: hints.frame_start,
                        keyframe: hints.keyframe,
                        payload: Bytes::copy_from_slice(payload),
                    },
                )
                .unwrap();
                while let Some(f) = fb.pop_frame(&mut payloads) {
                    let info = de
                        .depacketize_ordered(payloads.iter().map(|b| &b[..]), &mut au)
                        .unwrap();
                    keyframes += usize::from(info.keyframe && f.keyframe);
                    assert!(dec.decode(&au, &mut out).unwrap());
                    assert_eq!((out.width(), out.height()), (320, 240));
                    decoded += 1;
                }
            }
            Err(_) => {
                if child.try_exit().is_some() {
                    // Drain for a moment after GStreamer is done.
                    let t = *exited_at.get_or_insert_with(Instant::now);
                    if t.elapsed() > Duration::from_millis(300) {
                        break;
                    }
                }
            }
        }
    }
    eprintln!(
        "rtph264pay -> us: {decoded} pictures ({keyframes} keyframes), {stap} STAP-A, {fu} FU-A, \
         largest payload {max_len} B"
    );
    assert_eq!(decoded, FRAMES, "every picture rebuilt and decoded");
    assert!(keyframes >= 3, "IDR every 10 frames");
    assert!(stap >= 1 && fu >= 1, "STAP-A and FU-A both exercised");
    assert!(max_len <= 800);
}

#[test]
fn rtph264depay_and_avdec_decode_what_we_send() {
    if !gstreamer::available(
        "our packetizer -> rtph264depay",
        &[
            "udpsrc",
            "rtph264depay",
            "h264parse",
            "avdec_h264",
            "filesink",
        ],
    ) {
        return;
    }
    const FRAMES: u64 = 30;
    let (w, h) = (640usize, 360usize);
    // Encode and packetize everything first, to know the packet count.
    let mut enc = H264Encoder::new(&H264Config::default()).unwrap();
    let mut pk = H264Packetizer::new(1200).unwrap();
    let mut pic = I420Frame::new(w, h).unwrap();
    let mut au = Vec::new();
    let mut datagrams = Vec::new();
    let mut seq = 40_000u16;
    for n in 0..FRAMES {
        pic.draw_test_pattern(n);
        enc.encode(&pic, &mut au).unwrap();
        let ts = (n * 3000) as u32;
        pk.packetize(&au, |payload, marker| {
            let hdr = RtpHeader {
                marker,
                payload_type: Pt(96),
                sequence_number: seq,
                timestamp: ts,
                ssrc: Ssrc(0xabc),
                ..RtpHeader::default()
            };
            let mut b = vec![0u8; 12 + payload.len()];
            hdr.write(payload, &mut b).unwrap();
            datagrams.push(b);
            seq = seq.wrapping_add(1);
        })
        .unwrap();
    }
    let port = free_udp_port();
    let out_path =
        std::env::temp_dir().join(format!("supernode-gst-{}-{port}.yuv", std::process::id()));
    let mut child = Pipeline::spawn(&format!(
        "udpsrc address=127.0.0.1 port={port} num-buffers={} \
         caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96 \
         ! rtph264depay ! h264parse ! avdec_h264 ! video/x-raw,format=I420 \
         ! filesink location={}",
        datagrams.len(),
        out_path.display()
    ));
    assert!(
        wait_udp_bound(port, Duration::from_secs(10)),
        "udpsrc never bound"
    );
    std::thread::sleep(Duration::from_millis(300));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        sock.send_to(d, ("127.0.0.1", port)).unwrap();
        std::thread::sleep(Duration::from_micros(500));
    }
    assert!(
        child
            .wait_exit(Duration::from_secs(20))
            .is_some_and(|s| s.success()),
        "GStreamer did not finish"
    );
    let raw = std::fs::read(&out_path).unwrap();
    let _ = std::fs::remove_file(&out_path);
    let frame_len = w * h * 3 / 2;
    assert_eq!(raw.len() % frame_len, 0);
    let frames = raw.len() / frame_len;
    let mut psnrs = Vec::new();
    for (n, chunk) in raw.chunks_exact(frame_len).enumerate() {
        let (y, uv) = chunk.split_at(w * h);
        let (u, v) = uv.split_at(w * h / 4);
        let got = I420Frame::from_planes(w, h, y.to_vec(), u.to_vec(), v.to_vec()).unwrap();
        pic.draw_test_pattern(n as u64);
        psnrs.push(got.psnr(&pic).unwrap());
    }
    let min = psnrs.iter().copied().fold(f64::MAX, f64::min);
    eprintln!(
        "us -> rtph264depay ! avdec_h264: {frames} pictures from {} packets, min PSNR {min:.2} dB",
        datagrams.len()
    );
    assert_eq!(frames as u64, FRAMES, "every picture decoded by GStreamer");
    assert!(min >= 32.0, "GStreamer's pictures match ours: {min:.2} dB");
}
