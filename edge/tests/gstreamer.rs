//! Interop with GStreamer (Debian's packages), directly over loopback (the relay REST
//! bridging is the host's test): GStreamer's `rtpopuspay`/`rtph264pay` output is decoded
//! by `edge media`, and GStreamer's `rtpjitterbuffer`/`rtpopusdepay`/`rtph264depay`/
//! `avdec_h264` decode what `edge media` sends.
//!
//! Without `gst-launch-1.0` (and the plugins) the tests print `SKIP:` and pass, unless
//! `SUPERNODE_REQUIRE_EXTERNAL=1`, which turns a missing tool into a failure.

use std::process::{Command, Stdio};
use std::time::Duration;

use supernode_testkit::gstreamer::{
    self, AV_RECEIVE_ELEMENTS, AV_SEND_ELEMENTS, Decoded, Pipeline,
};
use supernode_testkit::net::{free_udp_port, wait_udp_bound};

#[test]
fn edge_decodes_what_gstreamer_sends() {
    if !gstreamer::available("GStreamer -> edge interop", AV_SEND_ELEMENTS) {
        return;
    }
    let (edge_port, nowhere) = (free_udp_port(), free_udp_port());
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
    assert!(
        wait_udp_bound(edge_port, Duration::from_secs(10)),
        "edge never bound its port"
    );
    // Audio and video to the one port: the edge demultiplexes by payload type.
    let gst = Pipeline::run(&gstreamer::av_send(edge_port, edge_port, 150, 90));
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
    if !gstreamer::available("edge -> GStreamer interop", AV_RECEIVE_ELEMENTS) {
        return;
    }
    let (pa, pv) = (free_udp_port(), free_udp_port());
    let dir = std::env::temp_dir().join(format!("edge_gst_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a_raw, v_raw) = (dir.join("a.raw"), dir.join("v.raw"));
    let gst = Pipeline::spawn(&gstreamer::av_receive(pa, pv, &a_raw, &v_raw));
    // GStreamer takes a moment to load its plugins on a busy machine.
    assert!(
        wait_udp_bound(pa, Duration::from_secs(20)) && wait_udp_bound(pv, Duration::from_secs(20)),
        "GStreamer never bound its ports"
    );
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
    gst.stop();
    Decoded::read(&a_raw, &v_raw, 320, 180).assert_more_than(2.0, 60, "edge -> GStreamer");
    let _ = std::fs::remove_dir_all(&dir);
}
