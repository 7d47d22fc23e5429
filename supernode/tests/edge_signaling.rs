//! The edge's signaling client against the real `supernode` binary (a `supernode run`
//! process on loopback: SQLite storage, accounts and credentials made through the REST API,
//! the host's relay behind signaling), so that a call set up over the WebSocket carries SRTP
//! media through relay legs. (Moved from `edge/tests/signaling_call.rs`: the edge depends
//! on `supernode-proto` only, never on the signaling crate.)

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{Node, data_dir, partner};
use supernode_edge::engine::{AudioSource, EngineConfig, VideoSource};
use supernode_edge::runner::{MediaOptions, run_media};
use supernode_edge::signaling::{CallEnd, CallError, SignalingClient};
use supernode_edge::similarity::PASS_THRESHOLD;
use supernode_edge::srtp::{SrtpKey, SrtpKeyB64};
use supernode_proto::ids::AccountId;
use supernode_proto::protocol::{LegInfo, MediaKind};

/// Relay legs per answered call: two endpoints, each an audio leg and its video companion.
const LEGS_PER_CALL: f64 = 4.0;

struct Server {
    node: Node,
    key: String,
}

fn start() -> Server {
    let dir = data_dir("edge_sig");
    let (_, key) = partner(&dir, "edge-test", false);
    Server {
        node: Node::start(&dir, &[]),
        key,
    }
}

impl Server {
    fn http(&self) -> String {
        self.node.base()
    }

    /// A new account and a credential for it, through the partner REST API.
    async fn account(&self) -> (AccountId, String) {
        let (id, token) = self.node.account(&self.key, "x").await;
        (AccountId::parse(&id).unwrap(), token)
    }

    async fn legs(&self) -> f64 {
        self.node.metric("supernode_relay_legs").await
    }
}

fn engine_for(leg: &LegInfo) -> (UdpSocket, EngineConfig) {
    let remote: SocketAddr = leg.address.parse().unwrap();
    let mut cfg = EngineConfig::new(Duration::ZERO, remote);
    cfg.srtp = Some(SrtpKey::from_keying(leg.srtp.as_ref().unwrap()).unwrap());
    cfg.audio = AudioSource::Synth { seed: 1 };
    // The relay's legs carry one SSRC each: this call is audio only (see the crate docs).
    cfg.video = VideoSource::Off;
    cfg.receive_video = false;
    cfg.mark_period_ms = 1_000;
    (UdpSocket::bind("127.0.0.1:0").unwrap(), cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_through_signaling_and_relay_then_hangup() {
    let server = start();
    let (_alice, alice_token) = server.account().await;
    let (bob, bob_token) = server.account().await;
    let mut a = SignalingClient::connect(&server.http(), &alice_token)
        .await
        .unwrap();
    let mut b = SignalingClient::connect(&server.http(), &bob_token)
        .await
        .unwrap();
    let answer = tokio::spawn(async move {
        let call = b.answer(|_, _| true, Duration::from_secs(10)).await;
        (b, call)
    });
    let call_a = a
        .invite(bob.clone(), MediaKind::Audio, Duration::from_secs(10))
        .await
        .unwrap();
    let (mut b, call_b) = answer.await.unwrap();
    let call_b = call_b.unwrap();
    assert_eq!(call_a.call_id, call_b.call_id);
    assert_ne!(call_a.leg.address, call_b.leg.address);
    assert_ne!(call_a.leg.leg_id, call_b.leg.leg_id);
    assert_eq!(server.legs().await, LEGS_PER_CALL);

    // Media for 4 s through the relay, SRTP with the keys from the `media` messages.
    let d = Duration::from_secs(4);
    let (sa, ca) = engine_for(&call_a.leg);
    let (sb, cb) = engine_for(&call_b.leg);
    let ta = std::thread::spawn(move || run_media(sa, ca, MediaOptions::for_duration(d)).unwrap());
    let tb = std::thread::spawn(move || run_media(sb, cb, MediaOptions::for_duration(d)).unwrap());
    let (ra, rb) = (ta.join().unwrap().report, tb.join().unwrap().report);
    for r in [&ra, &rb] {
        eprint!("{}", r.to_human());
        assert!(r.ok, "{:?}", r.failure);
        assert!(r.audio.packets_received > 150);
        assert!(r.audio.similarity.unwrap() > PASS_THRESHOLD);
        let m2e = r.mouth_to_ear_ms.unwrap();
        assert!(m2e > 0.0 && m2e < 1000.0);
        assert!(r.rtt_ms.is_some(), "the relay's reports give an RTT");
        assert_eq!(r.drops.srtp_auth, 0);
    }

    // Alice hangs up; Bob is told; the relay frees both legs.
    a.hangup(call_a.call_id.clone()).await.unwrap();
    let end = b
        .wait_end(
            call_b.call_id,
            tokio::time::Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(matches!(end, CallEnd::Remote(_)), "{end:?}");
    server.node.expect_metric("supernode_relay_legs", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_elsewhere_busy_and_bad_token() {
    let server = start();
    let (_alice, alice_token) = server.account().await;
    let (bob, bob_token) = server.account().await;
    let (_carol, carol_token) = server.account().await;

    // A forged token is refused with a typed error.
    let err = SignalingClient::connect(&server.http(), "v1.forged.token")
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Server(..)), "{err:?}");

    let mut a = SignalingClient::connect(&server.http(), &alice_token)
        .await
        .unwrap();
    // Bob is logged in twice; his first endpoint answers.
    let mut b1 = SignalingClient::connect(&server.http(), &bob_token)
        .await
        .unwrap();
    let mut b2 = SignalingClient::connect(&server.http(), &bob_token)
        .await
        .unwrap();
    let answer = tokio::spawn(async move {
        let call = b1.answer(|_, _| true, Duration::from_secs(10)).await;
        (b1, call)
    });
    let call = a
        .invite(bob.clone(), MediaKind::Audio, Duration::from_secs(10))
        .await
        .unwrap();
    let (_b1, answered) = answer.await.unwrap();
    assert_eq!(answered.unwrap().call_id, call.call_id);
    // The second endpoint rang, then heard that the call was answered elsewhere.
    let second = b2.answer(|_, _| true, Duration::from_secs(5)).await;
    assert_eq!(second.unwrap_err(), CallError::AnsweredElsewhere);

    // Carol calls Bob, who is in a call: busy.
    let mut c = SignalingClient::connect(&server.http(), &carol_token)
        .await
        .unwrap();
    let busy = c
        .invite(bob.clone(), MediaKind::Audio, Duration::from_secs(5))
        .await;
    assert_eq!(busy.unwrap_err(), CallError::Busy);

    a.hangup(call.call_id).await.unwrap();
    server.node.expect_metric("supernode_relay_legs", 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_signaled_call_both_sides() {
    use supernode_edge::call::{Role, SignaledCall, run_signaled_call};
    let server = start();
    let (_alice, alice_token) = server.account().await;
    let (bob, bob_token) = server.account().await;
    let audio_only = |c: &mut SignaledCall| {
        c.media_bind = "127.0.0.1:0".parse().unwrap();
        c.engine.mark_period_ms = 1_000;
    };
    let mut callee = SignaledCall::new(
        &server.http(),
        &bob_token,
        Role::Answer {
            wait: Duration::from_secs(10),
            decide: None,
        },
        Duration::from_secs(20),
    );
    audio_only(&mut callee);
    let callee = tokio::spawn(run_signaled_call(callee));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut caller = SignaledCall::new(
        &server.http(),
        &alice_token,
        Role::Call {
            to: bob,
            media: MediaKind::Audio,
            ring_timeout: Duration::from_secs(10),
        },
        Duration::from_secs(3),
    );
    audio_only(&mut caller);
    let a = run_signaled_call(caller).await.unwrap();
    // The callee's media stops when the caller hangs up, long before its own 20 s.
    let b = tokio::time::timeout(Duration::from_secs(5), callee)
        .await
        .expect("the callee ends with the caller")
        .unwrap()
        .unwrap();
    assert_eq!(a.report.call_end.as_deref(), Some("hangup_sent"));
    assert_eq!(b.report.call_end.as_deref(), Some("remote_hangup"));
    for r in [&a.report, &b.report] {
        eprint!("{}", r.to_human());
        assert!(r.ok, "{:?}", r.failure);
        assert!(!r.video.enabled, "an audio call sends no video");
        assert!(r.audio.similarity.unwrap() > PASS_THRESHOLD);
    }
    server.node.expect_metric("supernode_relay_legs", 0.0).await;
}
