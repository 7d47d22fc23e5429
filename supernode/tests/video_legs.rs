//! Audio and video of a signaled call through the host's relay legs, against the real
//! `supernode` binary: each endpoint sends audio to the leg signaling gave it and video to
//! the companion leg at port + 1 (see `relay_host`), with the edge library's media engine
//! (the edge CLI sends both to one address unless it has `--video-port-offset`).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{Node, data_dir, partner};
use supernode_edge::engine::{AudioSource, EngineConfig, VideoSource};
use supernode_edge::runner::{MediaOptions, run_media};
use supernode_edge::signaling::SignalingClient;
use supernode_edge::srtp::{SrtpKey, SrtpKeyB64};
use supernode_proto::ids::AccountId;
use supernode_proto::protocol::{LegInfo, MediaKind};

fn engine(leg: &LegInfo, seed: u64, peer: u64) -> (UdpSocket, EngineConfig) {
    let audio: SocketAddr = leg.address.parse().unwrap();
    let video = SocketAddr::new(audio.ip(), audio.port() + 1);
    let mut cfg = EngineConfig::new(Duration::ZERO, audio);
    cfg.remote_video = video;
    cfg.srtp = Some(SrtpKey::from_keying(leg.srtp.as_ref().unwrap()).unwrap());
    cfg.audio = AudioSource::Synth { seed };
    cfg.reference_seed = Some(peer);
    cfg.video = VideoSource::Pattern {
        width: 320,
        height: 180,
    };
    cfg.mark_period_ms = 1_000;
    (UdpSocket::bind("127.0.0.1:0").unwrap(), cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_and_video_flow_through_the_audio_leg_and_its_companion() {
    let dir = data_dir("video");
    let (_, key) = partner(&dir, "p", false);
    let node = Node::start(&dir, &[]);
    let (_, alice) = node.account(&key, "Alice").await;
    let (bob_id, bob) = node.account(&key, "Bob").await;
    let mut a = SignalingClient::connect(&node.base(), &alice)
        .await
        .unwrap();
    let mut b = SignalingClient::connect(&node.base(), &bob).await.unwrap();
    let answer = tokio::spawn(async move {
        let call = b.answer(|_, _| true, Duration::from_secs(10)).await;
        (b, call)
    });
    let call_a = a
        .invite(
            AccountId::parse(&bob_id).unwrap(),
            MediaKind::AudioVideo,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let (_b, call_b) = answer.await.unwrap();
    let call_b = call_b.unwrap();
    // Audio legs from signaling plus a video companion each.
    assert_eq!(node.metric("supernode_relay_legs").await, 4.0);

    let d = Duration::from_secs(4);
    let (sa, ca) = engine(&call_a.leg, 1, 2);
    let (sb, cb) = engine(&call_b.leg, 2, 1);
    let ta = std::thread::spawn(move || run_media(sa, ca, MediaOptions::for_duration(d)).unwrap());
    let tb = std::thread::spawn(move || run_media(sb, cb, MediaOptions::for_duration(d)).unwrap());
    let (ra, rb) = (ta.join().unwrap().report, tb.join().unwrap().report);
    for r in [&ra, &rb] {
        eprint!("{}", r.to_human());
        assert!(r.ok, "{:?}", r.failure);
        assert!(r.audio.packets_received > 150);
        assert_eq!(r.audio.loss_pct, 0.0);
        assert!(r.audio.similarity.unwrap() >= 0.7);
        assert!(r.video.frames_decoded > 60, "{}", r.video.frames_decoded);
        assert!(r.video.psnr_db.unwrap() >= 32.0);
        assert_eq!(r.drops.srtp_auth, 0);
        assert!(r.mouth_to_ear_ms.is_some());
    }
    a.hangup(call_a.call_id).await.unwrap();
    node.expect_metric("supernode_relay_legs", 0.0).await;
}
