//! The edge's signaling client against a real in-process signaling server (served on a
//! loopback port, SQLite storage, accounts and credentials made through the REST API), with
//! the real relay behind it, so that a call set up over the WebSocket carries SRTP media
//! through relay legs.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngCore;
use supernode_edge::engine::{AudioSource, EngineConfig, VideoSource};
use supernode_edge::runner::{MediaOptions, run_media};
use supernode_edge::signaling::{CallEnd, CallError, SignalingClient};
use supernode_edge::similarity::PASS_THRESHOLD;
use supernode_edge::srtp::{SrtpKey, SrtpKeyB64};
use supernode_relay::core::{LegSrtpKeys, SrtpKey as RelayKey, SrtpProfile};
use supernode_relay::{LegRequest, Relay, RelayConfig, SessionId};
use supernode_signaling::directory::InMemoryDirectory;
use supernode_signaling::ids::{AccountId, CallId};
use supernode_signaling::protocol::MediaKind;
use supernode_signaling::{
    LegGrant, LegId, RelayAccess, RelayAccessError, Signaling, SignalingConfig, SrtpParams, Store,
};

/// The real relay behind the signaling service's relay trait (what the host binary does).
struct RealRelay {
    relay: Relay,
    calls: Mutex<HashMap<CallId, SessionId>>,
}

impl RelayAccess for RealRelay {
    fn allocate(&self, call: CallId, count: usize) -> Result<Vec<LegGrant>, RelayAccessError> {
        let mut keys = Vec::new();
        let mut reqs = Vec::new();
        for _ in 0..count {
            let mut k = [0u8; 30];
            rand::rng().fill_bytes(&mut k);
            let key = RelayKey {
                profile: SrtpProfile::Aes128CmHmacSha1_80,
                master_key: k[..16].to_vec(),
                master_salt: k[16..].to_vec(),
            };
            reqs.push(LegRequest {
                srtp: Some(LegSrtpKeys {
                    inbound: key.clone(),
                    outbound: key,
                }),
                ..LegRequest::latching()
            });
            keys.push(k.to_vec());
        }
        let (session, legs) = self
            .relay
            .create_session(reqs)
            .map_err(|e| RelayAccessError::Unavailable(e.to_string()))?;
        self.calls.lock().unwrap().insert(call, session);
        Ok(legs
            .iter()
            .zip(keys)
            .map(|(l, k)| LegGrant {
                leg: LegId(l.id.0),
                address: l.local,
                srtp: Some(SrtpParams {
                    profile: "AES_CM_128_HMAC_SHA1_80".into(),
                    key_and_salt: k,
                }),
            })
            .collect())
    }

    fn connect(&self, call: CallId, a: LegId, b: LegId) -> Result<(), RelayAccessError> {
        let session = *self
            .calls
            .lock()
            .unwrap()
            .get(&call)
            .ok_or(RelayAccessError::Unknown)?;
        let legs = self
            .relay
            .session_legs(session)
            .map_err(|_| RelayAccessError::Unknown)?;
        let find = |id: LegId| legs.iter().copied().find(|l| l.0 == id.0);
        let (Some(a), Some(b)) = (find(a), find(b)) else {
            return Err(RelayAccessError::Unknown);
        };
        self.relay
            .connect_both(a, b)
            .map_err(|e| RelayAccessError::Unavailable(e.to_string()))
    }

    fn release(&self, call: CallId) {
        if let Some(s) = self.calls.lock().unwrap().remove(&call) {
            let _ = self.relay.release_session(s);
        }
    }
}

struct Server {
    addr: SocketAddr,
    relay: Arc<RealRelay>,
    key: String,
}

async fn start() -> Server {
    let dir = std::env::temp_dir().join(format!(
        "edge_sig_{}_{}",
        std::process::id(),
        rand::rng().next_u32()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.join("t.db").display()))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A port range of its own per relay (the relay binds with SO_REUSEPORT, so two relays
    // on one range would split each other's packets).
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 4;
    // Below the ephemeral range (32768+), so no client socket holds one of these ports.
    let base = (19_000 + ((std::process::id() % 80) * 4 + n) * 40) as u16;
    let relay = Arc::new(RealRelay {
        relay: Relay::start(RelayConfig {
            workers: 1,
            port_range: (base, base + 39),
            ..RelayConfig::default()
        })
        .unwrap(),
        calls: Mutex::new(HashMap::new()),
    });
    let cfg = SignalingConfig {
        rate_limit_per_second: 1000.0,
        rate_limit_burst: 1000,
        public_ws_url: format!("ws://{addr}/v1/ws"),
        ..SignalingConfig::default()
    };
    let signaling = Signaling::new(
        store.clone(),
        cfg,
        Some(relay.clone() as Arc<dyn RelayAccess>),
        Arc::new(InMemoryDirectory::new()),
    )
    .await
    .unwrap();
    let app = signaling.router();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let p = supernode_signaling::admin::create_partner(&store, "edge-test", false, 1_000)
        .await
        .unwrap();
    Server {
        addr,
        relay,
        key: p.api_key,
    }
}

impl Server {
    fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new account and a credential for it, through the partner REST API.
    async fn account(&self) -> (AccountId, String) {
        let (id, token) = supernode_testkit::rest::account_and_token(
            &self.http(),
            &self.key,
            &serde_json::json!({}),
        )
        .await;
        (AccountId::parse(&id).unwrap(), token)
    }
}

fn engine_for(leg: &supernode_signaling::protocol::LegInfo) -> (UdpSocket, EngineConfig) {
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
    let server = start().await;
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
    assert_eq!(server.relay.relay.leg_count(), 2);

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
    a.hangup(call_a.call_id).await.unwrap();
    let end = b
        .wait_end(
            call_b.call_id,
            tokio::time::Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(matches!(end, CallEnd::Remote(_)), "{end:?}");
    assert_eq!(server.relay.relay.leg_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_elsewhere_busy_and_bad_token() {
    let server = start().await;
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
    assert_eq!(server.relay.relay.leg_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_signaled_call_both_sides() {
    use supernode_edge::call::{Role, SignaledCall, run_signaled_call};
    let server = start().await;
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
    assert_eq!(server.relay.relay.leg_count(), 0);
}
