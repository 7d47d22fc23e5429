//! Two media engines talking directly over loopback UDP (no relay), with real codecs and
//! SRTP: what one sends, the other decodes and measures.

use std::net::UdpSocket;
use std::time::Duration;

use supernode_edge::engine::{CallOutcome, EngineConfig, VideoSource};
use supernode_edge::runner::{MediaOptions, run_media};
use supernode_edge::similarity::PASS_THRESHOLD;
use supernode_edge::srtp::{SrtpKey, SrtpKeyB64};

fn key(byte: u8) -> SrtpKey {
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode([byte; 30])
    };
    SrtpKey::from_b64("AES_CM_128_HMAC_SHA1_80", &b64).unwrap()
}

/// Runs two engines against each other for `secs`, `a` keyed with `ka` and `b` with `kb`.
fn call(secs: u64, ka: Option<SrtpKey>, kb: Option<SrtpKey>) -> (CallOutcome, CallOutcome) {
    let sa = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sb = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (aa, ab) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
    // 320x180 at 300 kbit/s keeps two encoders and two decoders light enough for a busy
    // 2-core machine; the default 640x360 runs in the end-to-end tests of the host.
    let video = VideoSource::Pattern {
        width: 320,
        height: 180,
    };
    let mut ca = EngineConfig::new(Duration::ZERO, ab);
    ca.video = video.clone();
    ca.video_bitrate_bps = 300_000;
    ca.srtp = ka;
    ca.mark_period_ms = 1_000;
    ca.ssrc_seed = 1;
    let mut cb = EngineConfig::new(Duration::ZERO, aa);
    cb.video = video;
    cb.video_bitrate_bps = 300_000;
    cb.srtp = kb;
    cb.mark_period_ms = 1_000;
    cb.ssrc_seed = 2;
    let d = Duration::from_secs(secs);
    let ta = std::thread::spawn(move || run_media(sa, ca, MediaOptions::for_duration(d)).unwrap());
    let tb = std::thread::spawn(move || run_media(sb, cb, MediaOptions::for_duration(d)).unwrap());
    (ta.join().unwrap(), tb.join().unwrap())
}

#[test]
fn srtp_call_over_loopback_delivers_audio_and_video() {
    let (a, b) = call(6, Some(key(7)), Some(key(7)));
    for (name, o) in [("a", &a), ("b", &b)] {
        let r = &o.report;
        eprintln!("{name}: {}", r.to_json());
        eprint!("{}", r.to_human());
        assert!(r.ok, "{name}: {:?}", r.failure);
        assert!(r.audio.packets_received > 200, "{name}");
        assert!(r.audio.loss_pct < 1.0, "{name}");
        let sim = r.audio.similarity.expect("similarity measured");
        assert!(sim > PASS_THRESHOLD, "{name}: similarity {sim}");
        assert!(r.video.frames_decoded > 100, "{name}");
        let psnr = r.video.psnr_db.expect("psnr measured");
        assert!(psnr >= 30.0, "{name}: psnr {psnr}");
        let m2e = r.mouth_to_ear_ms.expect("mouth-to-ear measured");
        assert!(m2e > 0.0 && m2e < 1000.0, "{name}: {m2e}");
        assert!(r.audio.marks_detected >= 3, "{name}");
        assert_eq!(r.drops.srtp_auth, 0, "{name}");
        assert!(r.rtt_ms.is_some(), "{name}: RTT from RR LSR/DLSR");
    }
}

#[test]
fn wrong_srtp_key_decodes_nothing_and_counts_drops() {
    let (a, b) = call(2, Some(key(7)), Some(key(8)));
    for o in [&a, &b] {
        let r = &o.report;
        eprintln!("{}", r.to_json());
        assert!(!r.ok);
        assert_eq!(r.audio.packets_received, 0);
        assert_eq!(r.video.frames_decoded, 0);
        assert!(r.audio.similarity.is_none());
        assert!(r.mouth_to_ear_ms.is_none());
        // Every audio and video packet and every RTCP report was refused.
        assert!(r.drops.srtp_auth > 100, "{}", r.drops.srtp_auth);
        assert!(o.audio.is_empty());
    }
}
