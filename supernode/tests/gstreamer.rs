//! GStreamer interop through relay REST sessions: `gst-launch-1.0` sends Opus and H.264 RTP
//! (`rtpopuspay`, `rtph264pay`) through the relay to `edge media`, which decodes it; and
//! GStreamer (`rtpjitterbuffer`, `rtph264depay`, `avdec_h264`, `opusdec`) decodes what
//! `edge media` sends through the relay. One relay session per medium (a leg carries one
//! stream). Without GStreamer: `SKIP:` unless `SUPERNODE_REQUIRE_EXTERNAL=1`.

mod common;

use std::time::Duration;

use common::{Edge, Node, data_dir, free_port, partner, relay_session};
use serde_json::json;
use supernode_testkit::gstreamer::{
    self, AV_RECEIVE_ELEMENTS, AV_SEND_ELEMENTS, Decoded, Pipeline,
};
use supernode_testkit::net::wait_udp_bound;

#[tokio::test(flavor = "multi_thread")]
async fn edge_decodes_what_gstreamer_sends_through_the_relay() {
    if !gstreamer::available("GStreamer -> relay -> edge", AV_SEND_ELEMENTS) {
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
    assert!(
        wait_udp_bound(edge_port, Duration::from_secs(20)),
        "edge never bound its port"
    );
    let gst = Pipeline::run(&gstreamer::av_send(
        audio[0].port(),
        video[0].port(),
        200,
        120,
    ));
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
    if !gstreamer::available("edge -> relay -> GStreamer", AV_RECEIVE_ELEMENTS) {
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
    let gst = Pipeline::spawn(&gstreamer::av_receive(pa, pv, &a_raw, &v_raw));
    // GStreamer takes a moment to load its plugins on a busy machine.
    assert!(
        wait_udp_bound(pa, Duration::from_secs(20)) && wait_udp_bound(pv, Duration::from_secs(20)),
        "GStreamer never bound its ports"
    );
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
    gst.stop();
    Decoded::read(&a_raw, &v_raw, 320, 180).assert_more_than(2.0, 60, "edge -> relay -> GStreamer");
    assert!(node.metric("supernode_relay_packets_forwarded_total").await > 250.0);
}
