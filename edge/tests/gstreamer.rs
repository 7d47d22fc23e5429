//! Interop with GStreamer (Debian's packages), directly over loopback (the relay REST
//! bridging is the host's test): GStreamer's `rtpopuspay`/`rtph264pay` output is decoded
//! by `edge media`, and GStreamer's `rtpjitterbuffer`/`rtpopusdepay`/`rtph264depay`/
//! `avdec_h264` decode what `edge media` sends.
//!
//! Without `gst-launch-1.0` (and the plugins) the tests print `SKIP:` and pass, unless
//! `SUPERNODE_REQUIRE_EXTERNAL=1`, which turns a missing tool into a failure.

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Whether GStreamer with the needed elements is here; prints `SKIP:` (or panics under
/// `SUPERNODE_REQUIRE_EXTERNAL=1`) when not.
fn gstreamer_available() -> bool {
    let have = |element: &str| {
        Command::new("gst-inspect-1.0")
            .arg(element)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = [
        "opusenc",
        "rtpopuspay",
        "openh264enc",
        "rtph264pay",
        "rtpjitterbuffer",
        "rtpopusdepay",
        "rtph264depay",
        "avdec_h264",
        "opusdec",
    ]
    .into_iter()
    .filter(|e| !have(e))
    .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("SUPERNODE_REQUIRE_EXTERNAL").as_deref() == Ok("1") {
        panic!("GStreamer elements missing and SUPERNODE_REQUIRE_EXTERNAL=1: {missing:?}");
    }
    eprintln!("SKIP: GStreamer interop (missing gst-launch-1.0 elements: {missing:?})");
    false
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn edge_decodes_what_gstreamer_sends() {
    if !gstreamer_available() {
        return;
    }
    let (edge_port, nowhere) = (free_port(), free_port());
    let edge = Command::new(env!("CARGO_BIN_EXE_edge"))
        .args([
            "media",
            "--local",
            &format!("127.0.0.1:{edge_port}"),
            "--remote-audio",
            &format!("127.0.0.1:{nowhere}"),
            "--no-srtp",
            "--no-reference",
            "--duration",
            "5s",
            "--report-json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let sink = format!("udpsink host=127.0.0.1 port={edge_port}");
    let pipeline = format!(
        "audiotestsrc is-live=true num-buffers=150 ! audio/x-raw,rate=48000,channels=1 ! \
         opusenc ! rtpopuspay pt=111 ! {sink} \
         videotestsrc is-live=true num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         openh264enc ! rtph264pay pt=96 config-interval=-1 ! {sink}"
    );
    let gst = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(gst.success());
    let out = edge.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["audio"]["packets_received"].as_u64().unwrap() > 100,
        "{v}"
    );
    assert!(v["video"]["frames_decoded"].as_u64().unwrap() > 60, "{v}");
    assert!(v["audio"]["seconds_played"].as_f64().unwrap() > 2.0, "{v}");
}

#[test]
fn gstreamer_decodes_what_edge_sends() {
    if !gstreamer_available() {
        return;
    }
    let (pa, pv) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("edge_gst_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a_raw, v_raw) = (dir.join("a.raw"), dir.join("v.raw"));
    let pipeline = format!(
        "udpsrc port={pa} caps=application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000 ! \
         rtpjitterbuffer ! rtpopusdepay ! opusdec ! audio/x-raw,rate=48000,channels=1,format=S16LE ! \
         filesink location={} \
         udpsrc port={pv} caps=application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000 ! \
         rtpjitterbuffer ! rtph264depay ! avdec_h264 ! video/x-raw,format=I420 ! filesink location={}",
        a_raw.display(),
        v_raw.display()
    );
    let mut gst = Command::new("gst-launch-1.0")
        .arg("-q")
        .arg("-e")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // GStreamer takes a moment to load its plugins on a busy machine.
    std::thread::sleep(Duration::from_millis(1_500));
    let edge = Command::new(env!("CARGO_BIN_EXE_edge"))
        .args([
            "media",
            "--remote-audio",
            &format!("127.0.0.1:{pa}"),
            "--remote-video",
            &format!("127.0.0.1:{pv}"),
            "--no-srtp",
            "--duration",
            "4s",
            "--keyframe-interval",
            "30",
            "--width",
            "320",
            "--height",
            "180",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    // The edge hears nothing back (GStreamer only receives): it exits 1, having sent.
    assert_eq!(edge.code(), Some(1));
    std::thread::sleep(Duration::from_millis(500));
    let _ = gst.kill();
    let _ = gst.wait();
    let audio_s = std::fs::metadata(&a_raw).map_or(0, |m| m.len()) as f64 / 96_000.0;
    let frames = std::fs::metadata(&v_raw).map_or(0, |m| m.len()) / (320 * 180 * 3 / 2);
    assert!(audio_s > 2.0, "GStreamer decoded {audio_s} s of audio");
    assert!(frames > 60, "GStreamer decoded {frames} frames");
    eprintln!("GStreamer decoded {audio_s:.1} s of audio and {frames} pictures");
}
