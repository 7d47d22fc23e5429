//! WHIP and WHEP against a real `supernode run`: the REST contract (401/403/415/400/409, `201`
//! with `Location` and an ICE-lite answer, `DELETE` then `404`), and media: a WHIP publisher
//! and a WHEP viewer made of the relay's own test client parts (a UDP socket, ICE checks,
//! `relay::core::dtls::DtlsClient`, the in-place SRTP) — the viewer receives the publisher's
//! audio and video, and a keyframe the relay asked the publisher for when the viewer joined;
//! and WHEP playback in headless Chromium (`web/tests/whep.mjs`, playwright-core) of real
//! Opus and H.264 (the media crate's encoders) from such a publisher: `framesDecoded` and
//! `totalSamplesReceived` grow. The relay forwards payload types and the MID header
//! extension as the publisher wrote them, so that publisher uses the ones Chromium's answer
//! holds (a limitation: see docs/design-notes.md, "WHIP and WHEP").
//!
//! And GStreamer: its webrtcbin (libnice, OpenSSL DTLS with an ECDSA certificate, libsrtp)
//! publishes Opus and H.264 through `tests/gst/whip_publisher.py` (Python GObject); the
//! WHEP viewer above receives both, and so does Chromium, which decodes them. Debian 12's `whip-client` (simple-whip-client) aborts
//! at start (it links libsoup 2.4, libnice links libsoup 3), hence the script; webrtcbin's
//! default RSA-2048 certificate is refused by the relay's DTLS (dimpl: ECDSA only, as
//! browsers and libdatachannel use). See docs/design-notes.md ("WHIP from GStreamer's
//! webrtcbin").

mod common;

use std::net::{SocketAddr, UdpSocket};

use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

use common::{Node, data_dir, partner, pem};
use reqwest::StatusCode;
use serde_json::Value;
use supernode_media::packet::demux::{PacketKind, classify};
use supernode_media::packet::stun::{Class, Method, StunAttr, StunWriter, TransactionId};
use supernode_relay::core::DtlsIdentity;
use supernode_relay::core::dtls::DtlsClient;
use supernode_relay::core::srtp::LegSrtp;

/// An offer as a WHIP/WHEP client sends it: audio (Opus 111) and video (H.264 102,
/// Constrained Baseline, packetization-mode 1) in one BUNDLE, `direction` on both.
fn offer(ufrag: &str, pwd: &str, fingerprint: &str, direction: &str) -> String {
    offer_with(ufrag, pwd, fingerprint, direction, 111, 102)
}

/// [`offer`] with Opus at `apt` and H.264 at `vpt`.
fn offer_with(
    ufrag: &str,
    pwd: &str,
    fingerprint: &str,
    direction: &str,
    apt: u8,
    vpt: u8,
) -> String {
    let mut s =
        String::from("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n");
    for (kind, mid, pts, lines) in [
        (
            "audio",
            "0",
            apt.to_string(),
            format!("a=rtpmap:{apt} opus/48000/2\r\na=fmtp:{apt} minptime=10;useinbandfec=1\r\n"),
        ),
        (
            "video",
            "1",
            vpt.to_string(),
            format!(
                "a=rtpmap:{vpt} H264/90000\r\na=rtcp-fb:{vpt} nack\r\na=rtcp-fb:{vpt} nack pli\r\n\
                 a=fmtp:{vpt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
            ),
        ),
    ] {
        s.push_str(&format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF {pts}\r\nc=IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n\
             a=fingerprint:sha-256 {fingerprint}\r\na=setup:actpass\r\na=mid:{mid}\r\n\
             a={direction}\r\na=rtcp-mux\r\n{lines}"
        ));
    }
    s
}

fn some_offer(direction: &str) -> String {
    let fp = DtlsIdentity::generate().unwrap().fingerprint().to_sdp();
    offer("vwr1", "viewerpassword0123456789", &fp, direction)
}

async fn post(
    node: &Node,
    path: &str,
    key: Option<&str>,
    content_type: &str,
    body: String,
) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .post(format!("{}{path}", node.base()))
        .header("content-type", content_type)
        .body(body);
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.send().await.unwrap()
}

async fn delete(node: &Node, path: &str, key: &str) -> StatusCode {
    reqwest::Client::new()
        .delete(format!("{}{path}", node.base()))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}

async fn error_code(r: reqwest::Response) -> String {
    let v: Value = r.json().await.expect("a JSON error body");
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

/// What a `201` gave: the resource path and the answer.
async fn created(r: reqwest::Response, prefix: &str) -> (String, String) {
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["content-type"], "application/sdp");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(prefix), "{location}");
    assert!(location.len() > prefix.len() + 8, "{location}");
    (location, r.text().await.unwrap())
}

/// The answer's ICE-lite credentials and host candidate.
fn ice_of(answer: &str) -> (String, String, SocketAddr) {
    let attr = |name: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {answer}"))
            .trim()
            .to_owned()
    };
    let cand = attr("a=candidate:");
    let f: Vec<&str> = cand.split_whitespace().collect();
    assert_eq!((f[2], f[6], f[7]), ("udp", "typ", "host"), "{cand}");
    let addr = format!("{}:{}", f[4], f[5]).parse().unwrap();
    (attr("a=ice-ufrag:"), attr("a=ice-pwd:"), addr)
}

#[tokio::test(flavor = "multi_thread")]
async fn whip_and_whep_follow_the_rest_contract() {
    let dir = data_dir("whip_rest");
    let (_, key) = partner(&dir, "tool", true);
    let (_, plain_key) = partner(&dir, "plain", false);
    let (_, other_key) = partner(&dir, "other", true);
    let node = Node::start(&dir, &[]);
    let sdp = "application/sdp";

    // Who may: no key and a wrong key 401, a key without --relay 403.
    let r = post(&node, "/v1/whip/cam1", None, sdp, some_offer("sendonly")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(r).await, "unauthorized");
    let wrong = format!("{}x", &key[..key.len() - 1]);
    let r = post(
        &node,
        "/v1/whip/cam1",
        Some(&wrong),
        sdp,
        some_offer("sendonly"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(r).await, "invalid_api_key");
    let r = post(
        &node,
        "/v1/whep/cam1",
        Some(&plain_key),
        sdp,
        some_offer("recvonly"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(r).await, "relay_forbidden");

    // What: not SDP 415; malformed SDP or nothing servable 400 with the JSON error body.
    let r = post(
        &node,
        "/v1/whip/cam1",
        Some(&key),
        "application/json",
        "{}".into(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(r).await, "unsupported_media_type");
    let r = post(
        &node,
        "/v1/whip/cam1",
        Some(&key),
        sdp,
        "v=0\r\nbogus\r\n".into(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_sdp");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("line"),
        "{v}"
    );
    let no_codec = some_offer("sendonly")
        .replace("opus/48000/2", "G722/8000")
        .replace("H264/90000", "VP9/90000");
    let r = post(&node, "/v1/whip/cam1", Some(&key), sdp, no_codec).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "invalid_sdp");
    let r = post(
        &node,
        "/v1/whip/a%2Fb",
        Some(&key),
        sdp,
        some_offer("sendonly"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "invalid_stream");

    // A publisher: 201, Location, an ICE-lite answer with its candidate.
    let r = post(
        &node,
        "/v1/whip/cam1",
        Some(&key),
        sdp,
        some_offer("sendonly"),
    )
    .await;
    let (publisher, answer) = created(r, "/v1/whip/cam1/").await;
    for want in [
        "a=ice-lite\r\n",
        "a=setup:passive\r\n",
        "a=fingerprint:sha-256 ",
        "a=rtpmap:111 opus/48000/2\r\n",
        "a=rtpmap:102 H264/90000\r\n",
        "a=recvonly\r\n",
        "a=end-of-candidates\r\n",
    ] {
        assert!(answer.contains(want), "{want:?} in {answer}");
    }
    let (ufrag, pwd, cand) = ice_of(&answer);
    assert!(ufrag.len() >= 4 && pwd.len() >= 22, "{answer}");
    assert!(cand.ip().is_loopback() && cand.port() != 0, "{answer}");
    // One publisher per stream; another partner's `cam1` is another stream.
    let r = post(
        &node,
        "/v1/whip/cam1",
        Some(&key),
        sdp,
        some_offer("sendonly"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(r).await, "stream_busy");
    let r = post(
        &node,
        "/v1/whip/cam1",
        Some(&other_key),
        sdp,
        some_offer("sendonly"),
    )
    .await;
    let (other_publisher, _) = created(r, "/v1/whip/cam1/").await;

    // A viewer: its answer sends.
    let r = post(
        &node,
        "/v1/whep/cam1",
        Some(&key),
        sdp,
        some_offer("recvonly"),
    )
    .await;
    let (viewer, answer) = created(r, "/v1/whep/cam1/").await;
    assert!(answer.contains("a=sendonly\r\n"), "{answer}");
    assert!(answer.contains("a=ice-lite\r\n"), "{answer}");

    // DELETE: only the owner, only on its own path; once.
    assert_eq!(
        delete(&node, &publisher, &other_key).await,
        StatusCode::NOT_FOUND
    );
    let as_whep = publisher.replace("/v1/whip/", "/v1/whep/");
    assert_eq!(delete(&node, &as_whep, &key).await, StatusCode::NOT_FOUND);
    assert_eq!(delete(&node, &publisher, &key).await, StatusCode::OK);
    assert_eq!(delete(&node, &publisher, &key).await, StatusCode::NOT_FOUND);
    // The stream is free for a new publisher; the viewer stays.
    let r = post(
        &node,
        "/v1/whip/cam1",
        Some(&key),
        sdp,
        some_offer("sendonly"),
    )
    .await;
    let (publisher2, _) = created(r, "/v1/whip/cam1/").await;
    for (path, k) in [
        (&viewer, &key),
        (&publisher2, &key),
        (&other_publisher, &other_key),
    ] {
        assert_eq!(delete(&node, path, k).await, StatusCode::OK, "{path}");
        assert_eq!(
            delete(&node, path, k).await,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        delete(&node, "/v1/whep/cam1/nonsense", &key).await,
        StatusCode::NOT_FOUND
    );
}

/// A STUN binding request of an ICE agent toward the relay's ICE-lite transport.
fn check(relay_ufrag: &str, own_ufrag: &str, relay_pwd: &str, n: u32) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut tid = [7u8; 12];
    tid[..4].copy_from_slice(&n.to_be_bytes());
    let mut w = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId(tid),
    )
    .unwrap();
    let user = format!("{relay_ufrag}:{own_ufrag}");
    w.add(&StunAttr::Username(user.as_bytes())).unwrap();
    w.add(&StunAttr::UseCandidate).unwrap();
    w.add_message_integrity(relay_pwd.as_bytes()).unwrap();
    w.add_fingerprint().unwrap();
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// A WebRTC peer of the relay made of the test client parts: ICE checks (USE-CANDIDATE, one a
/// second for consent), `DtlsClient`, SRTP.
struct Peer {
    sock: UdpSocket,
    relay: SocketAddr,
    ufrag: String,
    pwd: String,
    own_ufrag: String,
    checks: u32,
    last_check: Instant,
    srtp: LegSrtp,
}

impl Peer {
    /// ICE with the transport of `answer`, then the DTLS handshake.
    fn connect(answer: &str, own_ufrag: &str, identity: &DtlsIdentity) -> Peer {
        let (ufrag, pwd, relay) = ice_of(answer);
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut dtls = DtlsClient::new(identity, Instant::now());
        let mut buf = vec![0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = 0;
        let mut last_check = Instant::now() - Duration::from_secs(1);
        while !dtls.is_connected() && Instant::now() < deadline {
            if last_check.elapsed() > Duration::from_millis(300) {
                n += 1;
                sock.send_to(&check(&ufrag, own_ufrag, &pwd, n), relay)
                    .unwrap();
                last_check = Instant::now();
            }
            dtls.handle_timeout(Instant::now());
            for d in dtls.drain() {
                sock.send_to(&d, relay).unwrap();
            }
            if let Ok((len, _)) = sock.recv_from(&mut buf)
                && classify(&buf[..len]) == PacketKind::Dtls
            {
                dtls.handle_datagram(Instant::now(), &buf[..len]);
            }
        }
        assert!(dtls.is_connected(), "DTLS with the relay");
        for d in dtls.drain() {
            sock.send_to(&d, relay).unwrap();
        }
        let srtp = LegSrtp::new(dtls.keys().expect("DTLS-SRTP keys")).unwrap();
        Peer {
            sock,
            relay,
            ufrag,
            pwd,
            own_ufrag: own_ufrag.to_owned(),
            checks: n,
            last_check,
            srtp,
        }
    }

    /// A consent check once a second.
    fn keep_consent(&mut self) {
        if self.last_check.elapsed() > Duration::from_secs(1) {
            self.checks += 1;
            let c = check(&self.ufrag, &self.own_ufrag, &self.pwd, self.checks);
            self.sock.send_to(&c, self.relay).unwrap();
            self.last_check = Instant::now();
        }
    }

    /// Sends one RTP packet, SRTP-protected.
    fn send_rtp(&mut self, pt: u8, ssrc: u32, seq: u16, ts: u32, payload: &[u8]) {
        self.send_rtp_mid(pt, ssrc, seq, ts, None, payload);
    }

    /// Sends one RTP packet, SRTP-protected, with the MID header extension `(id, mid)`.
    fn send_rtp_mid(
        &mut self,
        pt: u8,
        ssrc: u32,
        seq: u16,
        ts: u32,
        mid: Option<(u8, &str)>,
        payload: &[u8],
    ) {
        let mut pkt = vec![0x80, pt];
        pkt.extend_from_slice(&seq.to_be_bytes());
        pkt.extend_from_slice(&ts.to_be_bytes());
        pkt.extend_from_slice(&ssrc.to_be_bytes());
        if let Some((id, mid)) = mid {
            // One-byte header extension block (RFC 8285), padded to 32 bits.
            pkt[0] |= 0x10;
            let mut ext = vec![(id << 4) | (mid.len() as u8 - 1)];
            ext.extend_from_slice(mid.as_bytes());
            while ext.len() % 4 != 0 {
                ext.push(0);
            }
            pkt.extend_from_slice(&[0xBE, 0xDE]);
            pkt.extend_from_slice(&((ext.len() / 4) as u16).to_be_bytes());
            pkt.extend_from_slice(&ext);
        }
        pkt.extend_from_slice(payload);
        let len = pkt.len();
        pkt.resize(len + 64, 0);
        let n = self.srtp.protect_rtp(&mut pkt, len).unwrap();
        self.sock.send_to(&pkt[..n], self.relay).unwrap();
    }

    /// The next datagram, unprotected: `(true, rtp)` or `(false, rtcp)`.
    fn recv(&mut self) -> Option<(bool, Vec<u8>)> {
        let mut buf = vec![0u8; 2048];
        let (len, _) = self.sock.recv_from(&mut buf).ok()?;
        let mut out = vec![0u8; 2048];
        let (rtp, n) = match classify(&buf[..len]) {
            PacketKind::Rtp => (true, self.srtp.unprotect_rtp(&buf[..len], &mut out).ok()?),
            PacketKind::Rtcp => (false, self.srtp.unprotect_rtcp(&buf[..len], &mut out).ok()?),
            _ => return None,
        };
        out.truncate(n);
        Some((rtp, out))
    }
}

/// Whether a compound RTCP packet holds a PLI (PSFB, FMT 1).
fn has_pli(mut rtcp: &[u8]) -> bool {
    while rtcp.len() >= 4 {
        if rtcp[1] == 206 && rtcp[0] & 0x1f == 1 {
            return true;
        }
        let len = 4 * (usize::from(u16::from_be_bytes([rtcp[2], rtcp[3]])) + 1);
        rtcp = &rtcp[len.min(rtcp.len())..];
    }
    false
}

/// H.264 payloads: an IDR slice (a keyframe) and a non-IDR slice.
const IDR: [u8; 4] = [0x65, 0x88, 0x84, 0x00];
const NON_IDR: [u8; 4] = [0x41, 0x9a, 0x02, 0x00];

/// What the publisher did: packets sent, PLIs heard, keyframes sent.
#[derive(Debug, Default)]
struct Published {
    audio: u64,
    video: u64,
    plis: u64,
    keyframes: u64,
}

/// Publishes Opus-like audio (PT 111, 50/s) and H.264-like video (PT 102, 30/s) for `run`:
/// a keyframe first and then only when a PLI asks for one.
fn publish(mut p: Peer, run: Duration) -> Published {
    let mut out = Published::default();
    let start = Instant::now();
    let (mut next_audio, mut next_video) = (start, start);
    let mut want_key = true;
    while start.elapsed() < run {
        p.keep_consent();
        let now = Instant::now();
        if now >= next_audio {
            let seq = out.audio as u16;
            p.send_rtp(111, 11, seq, seq as u32 * 960, &[0xfc; 40]);
            out.audio += 1;
            next_audio += Duration::from_millis(20);
        }
        if now >= next_video {
            let payload = if want_key { &IDR } else { &NON_IDR };
            out.keyframes += u64::from(want_key);
            want_key = false;
            let seq = out.video as u16;
            p.send_rtp(102 | 0x80, 12, seq, seq as u32 * 3000, payload);
            out.video += 1;
            next_video += Duration::from_millis(33);
        }
        while let Some((rtp, pkt)) = p.recv() {
            if !rtp && has_pli(&pkt) {
                out.plis += 1;
                want_key = true;
            }
        }
    }
    out
}

/// What a WHEP viewer received.
#[derive(Debug, Default)]
struct Received {
    audio: u64,
    video: u64,
    keyframes: u64,
}

fn watch(mut p: Peer, run: Duration) -> Received {
    let mut got = Received::default();
    let start = Instant::now();
    while start.elapsed() < run {
        p.keep_consent();
        let Some((true, pkt)) = p.recv() else {
            continue;
        };
        let off = 12 + 4 * usize::from(pkt[0] & 0x0f);
        match pkt[1] & 0x7f {
            111 => got.audio += 1,
            102 => {
                got.video += 1;
                got.keyframes += u64::from(pkt.get(off) == Some(&IDR[0]));
            }
            _ => {}
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whep_viewer_gets_the_whip_publishers_media_and_a_keyframe_on_joining() {
    let dir = data_dir("whip_media");
    let (_, key) = partner(&dir, "tool", true);
    let node = Node::start(&dir, &[]);
    let sdp = "application/sdp";
    let pub_id = DtlsIdentity::generate().unwrap();
    let offer_pub = offer(
        "pub1",
        "publisherpassword0123456",
        &pub_id.fingerprint().to_sdp(),
        "sendonly",
    );
    let r = post(&node, "/v1/whip/live", Some(&key), sdp, offer_pub).await;
    let (publisher, answer) = created(r, "/v1/whip/live/").await;
    let (tx, rx) = std::sync::mpsc::channel();
    let publishing = std::thread::spawn(move || {
        let peer = Peer::connect(&answer, "pub1", &pub_id);
        tx.send(()).unwrap();
        publish(peer, Duration::from_secs(8))
    });
    // The publisher is keyed and sending (its one unasked keyframe went out to nobody).
    tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("the publisher connected");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let view_id = DtlsIdentity::generate().unwrap();
    let offer_view = offer(
        "vwr1",
        "viewerpassword0123456789",
        &view_id.fingerprint().to_sdp(),
        "recvonly",
    );
    let r = post(&node, "/v1/whep/live", Some(&key), sdp, offer_view).await;
    let (viewer, answer) = created(r, "/v1/whep/live/").await;
    let got = tokio::task::spawn_blocking(move || {
        let peer = Peer::connect(&answer, "vwr1", &view_id);
        watch(peer, Duration::from_secs(3))
    })
    .await
    .unwrap();
    let sent = tokio::task::spawn_blocking(move || publishing.join().unwrap())
        .await
        .unwrap();
    eprintln!("publisher {sent:?}, viewer {got:?}");
    assert!(got.audio >= 50, "audio forwarded: {got:?}");
    assert!(got.video >= 30, "video forwarded: {got:?}");
    assert!(sent.plis >= 1, "the relay asked for a keyframe: {sent:?}");
    assert!(
        got.keyframes >= 1,
        "the viewer got the keyframe asked for it: {got:?}"
    );
    assert_eq!(delete(&node, &viewer, &key).await, StatusCode::OK);
    assert_eq!(delete(&node, &publisher, &key).await, StatusCode::OK);
}

/// The MID header extension the viewer negotiated, and its m-lines' MIDs.
struct Mids {
    ext: Option<u8>,
    audio: String,
    video: String,
}

/// Publishes real media for `run`: Opus (a 440 Hz tone) at `apt` and H.264 (openh264, the
/// media crate's test pattern, 320×240 at 30 fps, a keyframe first and then only when a PLI
/// asks) at `vpt`.
fn publish_real(mut p: Peer, run: Duration, apt: u8, vpt: u8, mids: &Mids) -> Published {
    use supernode_media::codec::I420Frame;
    use supernode_media::codec::h264::{H264Config, H264Encoder};
    use supernode_media::codec::opus::{OpusConfig, OpusEncoder};
    use supernode_media::payload::h264::H264Packetizer;
    let mut enc = H264Encoder::new(&H264Config {
        width: 320,
        height: 240,
        bitrate_bps: 300_000,
        ..H264Config::default()
    })
    .unwrap();
    let mut pack = H264Packetizer::new(1100).unwrap();
    let mut opus = OpusEncoder::new(&OpusConfig::default()).unwrap();
    let (mut au, mut opus_out) = (Vec::new(), vec![0u8; 1500]);
    let mut out = Published::default();
    let (mut aseq, mut vseq) = (0u16, 0u16);
    let start = Instant::now();
    let (mut next_audio, mut next_video) = (start, start);
    let (mut frame, mut samples) = (0u64, 0u64);
    while start.elapsed() < run {
        p.keep_consent();
        let now = Instant::now();
        if now >= next_audio {
            let pcm: Vec<i16> = (0..960u64)
                .map(|i| {
                    let t = (samples + i) as f64 / 48_000.0;
                    ((t * 440.0 * std::f64::consts::TAU).sin() * 8_000.0) as i16
                })
                .collect();
            let n = opus.encode(&pcm, &mut opus_out).unwrap();
            let mid = mids.ext.map(|id| (id, mids.audio.as_str()));
            p.send_rtp_mid(apt, 11, aseq, samples as u32, mid, &opus_out[..n]);
            samples += 960;
            aseq = aseq.wrapping_add(1);
            out.audio += 1;
            next_audio += Duration::from_millis(20);
        }
        if now >= next_video {
            let picture = I420Frame::test_pattern(320, 240, frame).unwrap();
            let info = enc.encode(&picture, &mut au).unwrap();
            out.keyframes += u64::from(info.keyframe);
            let ts = (frame * 3000) as u32;
            let mut payloads = Vec::new();
            pack.packetize(&au, |pl, marker| payloads.push((pl.to_vec(), marker)))
                .unwrap();
            for (pl, marker) in payloads {
                let pt = if marker { vpt | 0x80 } else { vpt };
                let mid = mids.ext.map(|id| (id, mids.video.as_str()));
                p.send_rtp_mid(pt, 12, vseq, ts, mid, &pl);
                vseq = vseq.wrapping_add(1);
                out.video += 1;
            }
            frame += 1;
            next_video += Duration::from_micros(33_333);
        }
        while let Some((rtp, pkt)) = p.recv() {
            if !rtp && has_pli(&pkt) {
                out.plis += 1;
                enc.force_keyframe();
            }
        }
    }
    out
}

fn web_tests_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/tests")
}

/// Chromium, node and playwright-core (`npm ci` in web/tests), else `SKIP` (a panic in CI).
fn chromium_ready(test: &str) -> bool {
    use std::process::{Command, Stdio};
    let chromium = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        return supernode_testkit::external::unavailable(format!(
            "{test}: no {chromium} (apt-get install chromium)"
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        return supernode_testkit::external::unavailable(format!(
            "{test}: no node (apt-get install nodejs npm)"
        ));
    }
    if !web_tests_dir()
        .join("node_modules/playwright-core")
        .exists()
    {
        return supernode_testkit::external::unavailable(format!(
            "{test}: playwright-core missing (run `npm ci` in {})",
            web_tests_dir().display()
        ));
    }
    true
}

/// `web/tests/whep.mjs`: headless Chromium watching a stream over WHEP; once it decodes, it
/// measures for `seconds` and prints a summary (`{"scenario": "whep", "ok", ...}`).
struct ChromiumViewer {
    driver: std::process::Child,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl ChromiumViewer {
    fn start(node: &Node, key: &str, stream: &str, seconds: u32) -> Self {
        use std::process::{Command, Stdio};
        let mut driver = Command::new("node")
            .arg(web_tests_dir().join("whep.mjs"))
            .args(["--base", &node.base(), "--key", key, "--stream", stream])
            .args(["--seconds", &seconds.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting node");
        let out = driver.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<Value>();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("[whep.mjs] {l}");
                if let Ok(v) = serde_json::from_str::<Value>(&l) {
                    let _ = tx.send(v);
                }
            }
        });
        Self { driver, lines }
    }

    fn next(&self) -> Option<Value> {
        self.lines.recv_timeout(Duration::from_secs(90)).ok()
    }

    /// Blocks until the viewer's WHEP answer (`{"whep_answer": ...}`), or its summary if it
    /// failed before.
    fn answer(&self) -> Value {
        while let Some(v) = self.next() {
            if v.get("whep_answer").is_some() || v.get("scenario").is_some() {
                return v;
            }
        }
        panic!("whep.mjs never answered");
    }

    /// Blocks until the summary and the driver's exit.
    fn finish(mut self) -> (Value, std::process::ExitStatus) {
        let mut summary = Value::Null;
        while let Some(v) = self.next() {
            if v.get("scenario").is_some() {
                summary = v;
                break;
            }
        }
        (summary, self.driver.wait().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_plays_over_whep_what_a_whip_publisher_sends() {
    if !chromium_ready("WHEP playback in Chromium") {
        return;
    }
    let dir = data_dir("whep_chromium");
    let (_, key) = partner(&dir, "player", true);
    let node = Node::start(&dir, &[]);
    let viewer = ChromiumViewer::start(&node, &key, "live", 4);
    // The viewer first, so that the publisher can be given numbering that is surely not
    // the viewer's: the relay rewrites payload types and the MID extension per viewer.
    let (viewer, answer) = tokio::task::spawn_blocking(move || {
        let answer = viewer.answer();
        (viewer, answer)
    })
    .await
    .unwrap();
    let a = &answer["whep_answer"];
    assert!(a.is_object(), "WHEP in Chromium failed: {answer}");
    let pt = |k: &str| u8::try_from(a[k].as_u64().expect("a payload type")).unwrap();
    let (viewer_apt, viewer_vpt) = (pt("audio_pt"), pt("video_pt"));
    let viewer_mid_ext = a["mid_ext"].as_u64().and_then(|i| u8::try_from(i).ok());
    // The publisher's own numbering: other payload types, another MID extension id.
    let apt = if viewer_apt == 109 { 110 } else { 109 };
    let vpt = if viewer_vpt == 125 { 124 } else { 125 };
    let ext = if viewer_mid_ext == Some(13) { 12 } else { 13 };
    let mids = Mids {
        ext: Some(ext),
        audio: "0".to_owned(),
        video: "1".to_owned(),
    };
    let pub_id = DtlsIdentity::generate().unwrap();
    let offer = offer_with(
        "pub2",
        "publisherpassword0123456",
        &pub_id.fingerprint().to_sdp(),
        "sendonly",
        apt,
        vpt,
    )
    .replace(
        "a=rtcp-mux\r\n",
        &format!("a=rtcp-mux\r\na=extmap:{ext} urn:ietf:params:rtp-hdrext:sdes:mid\r\n"),
    );
    let r = post(&node, "/v1/whip/live", Some(&key), "application/sdp", offer).await;
    let (publisher, answer) = created(r, "/v1/whip/live/").await;
    let publishing = std::thread::spawn(move || {
        let peer = Peer::connect(&answer, "pub2", &pub_id);
        publish_real(peer, Duration::from_secs(20), apt, vpt, &mids)
    });
    let (summary, status) = tokio::task::spawn_blocking(move || viewer.finish())
        .await
        .unwrap();
    let sent = tokio::task::spawn_blocking(move || publishing.join().unwrap())
        .await
        .unwrap();
    eprintln!("publisher {sent:?}");
    assert!(
        status.success() && summary["ok"] == true,
        "WHEP in Chromium failed ({status}): {summary}"
    );
    assert_eq!(delete(&node, &publisher, &key).await, StatusCode::OK);
}

/// GStreamer's webrtcbin, the WebRTC stack of GStreamer-based tools, if the test can drive it
/// (Debian: `gir1.2-gst-plugins-bad-1.0 gstreamer1.0-nice python3-gi`), else `SKIP`.
fn gstreamer_webrtc_ready(test: &str) -> bool {
    let probe = std::process::Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstWebRTC','1.0'); \
             from gi.repository import Gst; Gst.init(None); \
             assert all(Gst.ElementFactory.find(e) for e in \
             ['webrtcbin','nicesrc','openh264enc','opusenc','rtph264pay'])",
        ])
        .output();
    if probe.is_ok_and(|o| o.status.success()) {
        return true;
    }
    supernode_testkit::external::unavailable(format!(
        "{test}: GStreamer's webrtcbin from Python (apt-get install python3-gi \
         gir1.2-gst-plugins-bad-1.0 gstreamer1.0-nice gstreamer1.0-plugins-bad \
         gstreamer1.0-plugins-good)"
    ))
}

/// GStreamer's webrtcbin publishing `stream` over WHIP (`tests/gst/whip_publisher.py`,
/// with an ECDSA certificate) for `seconds`, Opus and `video` (`h264`, or `vp8` which the
/// supernode refuses); its JSON lines, one per event.
struct GstPublisher {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    log: Vec<String>,
    _dir: common::DataDir,
}

impl GstPublisher {
    fn start(node: &Node, key: &str, stream: &str, seconds: u32, video: &str) -> Self {
        let dir = data_dir("gst_publisher");
        // rcgen's default key: ECDSA P-256.
        let cert = rcgen::generate_simple_self_signed(vec!["gstreamer".into()]).unwrap();
        let pem_path = dir.join("gst.pem");
        std::fs::write(
            &pem_path,
            pem("CERTIFICATE", cert.cert.der())
                + &pem("PRIVATE KEY", &cert.signing_key.serialize_der()),
        )
        .unwrap();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gst/whip_publisher.py");
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(format!("{}/v1/whip/{stream}", node.base()))
            .arg(key)
            .arg(seconds.to_string())
            .arg(&pem_path)
            .arg(video)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            lines,
            log: Vec::new(),
            _dir: dir,
        }
    }

    /// Waits (20 s at most) until webrtcbin's peer connection (ICE and DTLS) is connected.
    async fn connected(&mut self) {
        let connected = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(l) = self.lines.next_line().await.unwrap() {
                self.log.push(l.clone());
                if l.contains("\"connection\"") && l.contains("\"connected\"") {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(connected, Ok(true)),
            "webrtcbin connected to the relay: {:?}",
            self.log
        );
    }

    /// Waits for the publisher's end: it deletes its resource (`200`) and exits cleanly.
    async fn finish(mut self) {
        while let Some(l) = self.lines.next_line().await.unwrap() {
            self.log.push(l);
        }
        let status = self.child.wait().await.unwrap();
        assert!(status.success(), "{:?}", self.log);
        assert!(
            self.log
                .iter()
                .any(|l| l.contains("\"deleted\"") && l.contains("200")),
            "{:?}",
            self.log
        );
    }
}

/// A WHEP viewer of `stream` (the relay's own client parts) for `run`: its resource and
/// what it received.
async fn whep_watch(node: &Node, key: &str, stream: &str, run: Duration) -> (String, Received) {
    let view_id = DtlsIdentity::generate().unwrap();
    let offer_view = offer(
        "vwrw",
        "viewerpassword0123456789",
        &view_id.fingerprint().to_sdp(),
        "recvonly",
    );
    let path = format!("/v1/whep/{stream}");
    let r = post(node, &path, Some(key), "application/sdp", offer_view).await;
    let (viewer, answer) = created(r, &format!("{path}/")).await;
    let got = tokio::task::spawn_blocking(move || {
        let peer = Peer::connect(&answer, "vwrw", &view_id);
        watch(peer, run)
    })
    .await
    .unwrap();
    (viewer, got)
}

/// A node (data directory `tag`) with a relay key, and GStreamer publishing `stream` on it
/// for `seconds` (`video` as for [`GstPublisher::start`]), its WHIP connected.
async fn gst_publishing(
    tag: &str,
    stream: &str,
    seconds: u32,
    video: &str,
) -> (common::DataDir, Node, String, GstPublisher) {
    let dir = data_dir(tag);
    let (_, key) = partner(&dir, "tool", true);
    let node = Node::start(&dir, &[]);
    let mut publisher = GstPublisher::start(&node, &key, stream, seconds, video);
    publisher.connected().await;
    (dir, node, key, publisher)
}

/// WHIP from GStreamer: webrtcbin (libnice ICE, OpenSSL DTLS with an ECDSA certificate, as
/// GStreamer's own WHIP elements can be given) publishes Opus and H.264 through
/// `supernode/tests/gst/whip_publisher.py`; a WHEP viewer receives both.
#[tokio::test(flavor = "multi_thread")]
async fn gstreamer_webrtcbin_publishes_over_whip_and_a_whep_viewer_gets_it() {
    if !gstreamer_webrtc_ready("gstreamer_webrtcbin_publishes_over_whip_and_a_whep_viewer_gets_it")
    {
        return;
    }
    let (_dir, node, key, publisher) = gst_publishing("whip_gst", "gst", 15, "h264").await;
    let (viewer, got) = whep_watch(&node, &key, "gst", Duration::from_secs(3)).await;
    eprintln!("viewer of GStreamer's stream: {got:?}");
    // 50 Opus packets a second; 15 frames a second of at least one packet each.
    assert!(got.audio >= 100, "GStreamer's audio forwarded: {got:?}");
    assert!(got.video >= 30, "GStreamer's video forwarded: {got:?}");
    assert!(got.keyframes >= 1, "a keyframe to start from: {got:?}");
    assert_eq!(delete(&node, &viewer, &key).await, StatusCode::OK);
    publisher.finish().await;
}

/// The whole chain with no part of ours at the ends: GStreamer's webrtcbin publishes over
/// WHIP, headless Chromium plays it over WHEP (`framesDecoded` and `totalSamplesReceived`
/// grow). The viewer comes first; the relay writes Chromium's MIDs and payload types into
/// the publisher's packets, which carry no MID of their own.
#[tokio::test(flavor = "multi_thread")]
async fn chromium_plays_over_whep_what_gstreamer_publishes_over_whip() {
    let test = "chromium_plays_over_whep_what_gstreamer_publishes_over_whip";
    if !gstreamer_webrtc_ready(test) || !chromium_ready(test) {
        return;
    }
    let dir = data_dir("whep_gst_chromium");
    let (_, key) = partner(&dir, "player", true);
    let node = Node::start(&dir, &[]);
    let viewer = ChromiumViewer::start(&node, &key, "gst", 4);
    let (viewer, answer) = tokio::task::spawn_blocking(move || {
        let answer = viewer.answer();
        (viewer, answer)
    })
    .await
    .unwrap();
    assert!(
        answer["whep_answer"].is_object(),
        "WHEP in Chromium failed: {answer}"
    );
    let mut publisher = GstPublisher::start(&node, &key, "gst", 20, "h264");
    publisher.connected().await;
    let (summary, status) = tokio::task::spawn_blocking(move || viewer.finish())
        .await
        .unwrap();
    assert!(
        status.success() && summary["ok"] == true,
        "WHEP in Chromium of GStreamer's stream failed ({status}): {summary}"
    );
    publisher.finish().await;
}

/// A publisher whose video the supernode cannot serve (VP8): the answer refuses that m-line
/// (port 0, still with the DTLS fingerprint, which webrtcbin insists on) and the audio is
/// published and forwarded alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_gstreamer_publisher_whose_video_is_refused_still_publishes_audio() {
    if !gstreamer_webrtc_ready("a_gstreamer_publisher_whose_video_is_refused_still_publishes_audio")
    {
        return;
    }
    let (_dir, node, key, publisher) = gst_publishing("whip_gst_vp8", "vp8", 12, "vp8").await;
    let (viewer, got) = whep_watch(&node, &key, "vp8", Duration::from_secs(3)).await;
    assert!(got.audio >= 100, "GStreamer's audio forwarded: {got:?}");
    assert_eq!(got.video, 0, "no video from a refused m-line: {got:?}");
    assert_eq!(delete(&node, &viewer, &key).await, StatusCode::OK);
    publisher.finish().await;
}
