//! GStreamer interop through relay REST sessions: `gst-launch-1.0` sends Opus and H.264 RTP
//! (`rtpopuspay`, `rtph264pay`) through the relay to `edge media`, which decodes it; and
//! GStreamer (`rtpjitterbuffer`, `rtph264depay`, `avdec_h264`, `opusdec`) decodes what
//! `edge media` sends through the relay. One relay session per medium (a leg carries one
//! stream). Without GStreamer: `SKIP:` unless `SUPERNODE_REQUIRE_EXTERNAL=1`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Edge, Node, data_dir, free_port, partner, relay_session};
use serde_json::json;

const SEND: &[&str] = &[
    "gst-launch-1.0",
    "audiotestsrc",
    "opusenc",
    "rtpopuspay",
    "videotestsrc",
    "openh264enc",
    "rtph264pay",
    "udpsink",
];
const RECV: &[&str] = &[
    "gst-launch-1.0",
    "udpsrc",
    "rtpjitterbuffer",
    "rtpopusdepay",
    "opusdec",
    "rtph264depay",
    "avdec_h264",
    "filesink",
];

fn have(elements: &[&str]) -> bool {
    let tool = Command::new("gst-launch-1.0")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !tool {
        if common::require_external() {
            panic!("gst-launch-1.0 missing and SUPERNODE_REQUIRE_EXTERNAL=1");
        }
        eprintln!("SKIP: GStreamer interop through the relay (no gst-launch-1.0)");
        return false;
    }
    common::gstreamer(&elements[1..])
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_decodes_what_gstreamer_sends_through_the_relay() {
    if !have(SEND) {
        return;
    }
    let dir = data_dir("gst_in");
    let (_, key) = partner(&dir, "gst", true);
    let node = Node::start(&dir, &[]);
    let edge_port = free_port();
    let edge_addr = format!("127.0.0.1:{edge_port}");
    // Per medium: a latching leg GStreamer sends to, and a leg aimed at the edge.
    let (_, audio) = relay_session(&node, &key, json!([{}, { "remote": edge_addr }])).await;
    let (_, video) = relay_session(&node, &key, json!([{}, { "remote": edge_addr }])).await;
    let mut edge = Edge::plain(&[
        "media",
        "--local",
        &edge_addr,
        "--remote-audio",
        &audio[1].to_string(),
        "--remote-video",
        &video[1].to_string(),
        "--no-srtp",
        "--no-reference",
        "--duration",
        "6s",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let pipeline = format!(
        "audiotestsrc is-live=true num-buffers=200 ! audio/x-raw,rate=48000,channels=1 ! \
         opusenc ! rtpopuspay pt=111 ! udpsink host=127.0.0.1 port={} \
         videotestsrc is-live=true num-buffers=120 ! video/x-raw,width=320,height=240,framerate=30/1 ! \
         openh264enc ! rtph264pay pt=96 config-interval=-1 ! udpsink host=127.0.0.1 port={}",
        audio[0].port(),
        video[0].port()
    );
    let gst = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(gst.success());
    let (_, v) = edge.finish(Duration::from_secs(30));
    assert!(
        v["audio"]["packets_received"].as_u64().unwrap() > 100,
        "{v}"
    );
    assert!(v["audio"]["seconds_played"].as_f64().unwrap() > 2.0, "{v}");
    assert!(v["video"]["frames_decoded"].as_u64().unwrap() > 60, "{v}");
    // The relay forwarded it.
    assert!(node.metric("supernode_relay_packets_forwarded_total").await > 250.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn gstreamer_decodes_what_edge_sends_through_the_relay() {
    if !have(RECV) {
        return;
    }
    let dir = data_dir("gst_out");
    let (_, key) = partner(&dir, "gst", true);
    let node = Node::start(&dir, &[]);
    let (pa, pv) = (free_port(), free_port());
    // Per medium: a latching leg the edge sends to, and a leg aimed at GStreamer.
    let (_, audio) = relay_session(
        &node,
        &key,
        json!([{}, { "remote": format!("127.0.0.1:{pa}") }]),
    )
    .await;
    let (_, video) = relay_session(
        &node,
        &key,
        json!([{}, { "remote": format!("127.0.0.1:{pv}") }]),
    )
    .await;
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
    let mut edge = Edge::plain(&[
        "media",
        "--remote-audio",
        &audio[0].to_string(),
        "--remote-video",
        &video[0].to_string(),
        "--no-srtp",
        "--duration",
        "4s",
        "--keyframe-interval",
        "30",
        "--width",
        "320",
        "--height",
        "180",
    ]);
    // The edge hears nothing back (GStreamer only receives): it exits 1, having sent.
    let (code, rep) = edge.finish(Duration::from_secs(30));
    assert_eq!(code, Some(1), "{rep}");
    std::thread::sleep(Duration::from_millis(500));
    let _ = gst.kill();
    let _ = gst.wait();
    let audio_s = std::fs::metadata(&a_raw).map_or(0, |m| m.len()) as f64 / 96_000.0;
    let frames = std::fs::metadata(&v_raw).map_or(0, |m| m.len()) / (320 * 180 * 3 / 2);
    assert!(audio_s > 2.0, "GStreamer decoded {audio_s} s of audio");
    assert!(frames > 60, "GStreamer decoded {frames} frames");
    eprintln!("GStreamer decoded {audio_s:.1} s of audio and {frames} pictures via the relay");
    assert!(node.metric("supernode_relay_packets_forwarded_total").await > 250.0);
}
