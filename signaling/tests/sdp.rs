//! The SDP answerer against offers written the way Chrome, Safari and Firefox write them
//! (`tests/fixtures/sdp/`), malformed offers, and mutated offers (property test).

use proptest::prelude::*;
use supernode_signaling::sdp::{
    AcceptedKind, AcceptedMedia, Answer, AnswerParams, Codec, Direction, DtlsRole, H264Delivery,
    H264Level, H264Profile, LineError, MAX_MEDIA_SECTIONS, MAX_SDP_BYTES, MAX_SDP_LINES,
    MediaPolicy, ProfileLevelId, RejectReason, RelayTransport, SdpError, SendStream, Ssrc,
    answer_offer, parse,
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const FINGERPRINT: [u8; 32] = [
    0x3a, 0x91, 0x0c, 0x5e, 0x77, 0x12, 0xd4, 0x8b, 0x60, 0xf3, 0x2e, 0xa9, 0x45, 0xbc, 0x01, 0x9d,
    0x6f, 0x28, 0xe7, 0x53, 0xca, 0x14, 0x8e, 0x39, 0xb0, 0x72, 0x4d, 0xe6, 0x1f, 0x85, 0xa3, 0x5c,
];
const FINGERPRINT_LINE: &str = "a=fingerprint:sha-256 3A:91:0C:5E:77:12:D4:8B:60:F3:2E:A9:45:BC:01:9D:6F:28:E7:53:CA:14:8E:39:B0:72:4D:E6:1F:85:A3:5C\r\n";

fn send(ssrc: u32, rtx: Option<u32>, track: &str) -> SendStream {
    SendStream {
        ssrc: Ssrc(ssrc),
        rtx_ssrc: rtx.map(Ssrc),
        cname: "sn-cname".into(),
        stream_id: "sn-stream".into(),
        track_id: track.into(),
    }
}

fn params() -> AnswerParams {
    AnswerParams {
        session_id: 1234567890,
        transport: RelayTransport {
            ice_ufrag: "SnUf".into(),
            ice_pwd: "SnPwd0123456789abcdefXYZ".into(),
            fingerprint_sha256: FINGERPRINT,
            host: "10.1.2.3:40100".parse().unwrap(),
            public_ip: None,
        },
        policy: MediaPolicy::default(),
        audio_send: vec![send(11, None, "sn-audio")],
        video_send: vec![send(22, Some(23), "sn-video")],
    }
}

fn with_h264(profile: H264Profile, level: H264Level) -> AnswerParams {
    let mut p = params();
    p.policy.h264 = Some(H264Delivery { profile, level });
    p
}

fn answer(offer: &str, params: &AnswerParams) -> Answer {
    answer_offer(offer.as_bytes(), params).unwrap_or_else(|e| panic!("answer failed: {e}"))
}

fn accepted(a: &Answer, kind: AcceptedKind) -> &AcceptedMedia {
    a.accepted()
        .find(|m| m.kind == kind)
        .unwrap_or_else(|| panic!("no accepted {kind:?}: {:?}", a.media))
}

fn h264(m: &AcceptedMedia) -> ProfileLevelId {
    match m.codec {
        Codec::H264(p) => p,
        Codec::Opus => panic!("not H.264"),
    }
}

/// The lines of one m-section of an SDP (the `index`-th), m-line included.
fn section(sdp: &str, index: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut n = None;
    for line in sdp.split("\r\n") {
        if line.starts_with("m=") {
            n = Some(n.map_or(0, |x| x + 1));
        }
        if n == Some(index) {
            out.push(line);
        }
    }
    out
}

/// 1-based number of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    1 + text
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?}"))
}

/// Checks what every answer to a well-formed offer must be: parseable, one m-section per
/// offered one, ICE-lite, and each accepted section complete.
fn check_answer_shape(offer: &str, a: &Answer) {
    let parsed = parse(&a.sdp).unwrap_or_else(|e| panic!("answer does not parse: {e}\n{}", a.sdp));
    let offered = parse(offer).unwrap();
    assert_eq!(parsed.media.len(), offered.media.len());
    assert_eq!(a.media.len(), offered.media.len());
    assert!(parsed.ice_lite);
    for (i, m) in parsed.media.iter().enumerate() {
        assert_eq!(m.kind.as_str(), offered.media[i].kind.as_str());
        assert_eq!(m.mid, offered.media[i].mid);
        match a.accepted().find(|x| x.index == i) {
            Some(acc) => {
                assert_eq!(m.port, 40100);
                assert!(m.rtcp_mux);
                assert_eq!(m.transport.ice_ufrag, Some("SnUf"));
                assert_eq!(m.transport.fingerprints[0].digest, FINGERPRINT);
                assert!(m.end_of_candidates);
                assert_eq!(m.payload_types[0], acc.pt);
                assert_eq!(m.direction, Some(acc.direction));
            }
            None => assert_eq!(m.port, 0, "rejected m-line {i} must have port 0"),
        }
    }
}

#[test]
fn chrome_offer_is_answered_with_opus_and_constrained_baseline() {
    let offer = fixture("chrome.sdp");
    let a = answer(&offer, &params());
    check_answer_shape(&offer, &a);

    let audio = accepted(&a, AcceptedKind::Audio);
    assert_eq!(
        (audio.pt.0, audio.codec, audio.rtx_pt),
        (111, Codec::Opus, None)
    );
    assert_eq!(audio.direction, Direction::SendRecv);
    assert!(audio.feedback.transport_cc && !audio.feedback.nack && !audio.feedback.pli);
    assert_eq!(audio.extensions.audio_level, Some(1));
    assert_eq!(audio.extensions.transport_cc, Some(3));
    assert_eq!(audio.extensions.mid, Some(4));
    assert_eq!(audio.remote_streams.len(), 1);
    assert_eq!(audio.remote_streams[0].ssrc, Ssrc(3735928559));

    // 102 is 42001f (Baseline), 104 packetization-mode 0: the first Constrained Baseline
    // in packetization-mode 1 is 106.
    let video = accepted(&a, AcceptedKind::Video);
    assert_eq!(video.pt.0, 106);
    assert_eq!(video.rtx_pt.map(|p| p.0), Some(107));
    assert_eq!(h264(video).to_string(), "42e01f");
    let fb = video.feedback;
    assert!(fb.nack && fb.pli && fb.fir && fb.transport_cc && !fb.remb);
    assert_eq!(video.extensions.audio_level, None);
    assert_eq!(video.extensions.rid, None, "simulcast is off by default");
    assert_eq!(video.remote_streams.len(), 1);
    assert_eq!(video.remote_streams[0].ssrc, Ssrc(2231627014));
    assert_eq!(video.remote_streams[0].rtx, Some(Ssrc(632943048)));
    assert_eq!(
        video.send.as_ref().map(|s| s.rtx_ssrc),
        Some(Some(Ssrc(23)))
    );

    let rejected: Vec<_> = a.rejected().collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].mid.as_deref(), Some("2"));
    assert_eq!(rejected[0].reason, RejectReason::DataChannel);

    let remote = a.remote.as_ref().unwrap();
    assert_eq!(remote.ice_ufrag, "Kx3b");
    assert_eq!(remote.ice_pwd, "4Ttz3A0yPXfJtGQpBPrJ2Bmd");
    assert_eq!(remote.dtls_role, DtlsRole::Server);
    assert_eq!(remote.fingerprints[0].0, "sha-256");
    assert_eq!(remote.fingerprints[0].1[..3], [0x1c, 0x08, 0x46]);

    let sdp = &a.sdp;
    assert!(
        sdp.starts_with(
            "v=0\r\no=- 1234567890 1 IN IP4 10.1.2.3\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n"
        )
    );
    assert!(sdp.contains("a=group:BUNDLE 0 1\r\n"));
    assert!(sdp.contains("a=extmap-allow-mixed\r\n"));
    assert_eq!(
        section(sdp, 0),
        [
            "m=audio 40100 UDP/TLS/RTP/SAVPF 111",
            "c=IN IP4 10.1.2.3",
            "a=mid:0",
            "a=ice-ufrag:SnUf",
            "a=ice-pwd:SnPwd0123456789abcdefXYZ",
            FINGERPRINT_LINE.trim_end(),
            "a=setup:passive",
            "a=sendrecv",
            "a=rtcp-mux",
            "a=rtcp-rsize",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
            "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
            "a=rtpmap:111 opus/48000/2",
            "a=rtcp-fb:111 transport-cc",
            "a=fmtp:111 minptime=10;useinbandfec=1",
            "a=msid:sn-stream sn-audio",
            "a=ssrc:11 cname:sn-cname",
            "a=ssrc:11 msid:sn-stream sn-audio",
            "a=candidate:1 1 udp 2130706431 10.1.2.3 40100 typ host",
            "a=end-of-candidates",
        ]
    );
    let v = section(sdp, 1);
    assert_eq!(v[0], "m=video 40100 UDP/TLS/RTP/SAVPF 106 107");
    for line in [
        "a=rtpmap:106 H264/90000",
        "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=rtcp-fb:106 nack",
        "a=rtcp-fb:106 nack pli",
        "a=rtcp-fb:106 ccm fir",
        "a=rtcp-fb:106 transport-cc",
        "a=rtpmap:107 rtx/90000",
        "a=fmtp:107 apt=106",
        "a=ssrc-group:FID 22 23",
        "a=ssrc:23 cname:sn-cname",
        "a=end-of-candidates",
    ] {
        assert!(v.contains(&line), "video section lacks {line:?}: {v:#?}");
    }
    assert!(
        !v.iter()
            .any(|l| l.contains("goog-remb") || l.contains("VP8"))
    );
    assert_eq!(
        section(sdp, 2),
        [
            "m=application 0 UDP/DTLS/SCTP webrtc-datachannel",
            "c=IN IP4 0.0.0.0",
            "a=mid:2",
            "a=ice-ufrag:SnUf",
            "a=ice-pwd:SnPwd0123456789abcdefXYZ",
            FINGERPRINT_LINE.trim_end(),
            "a=setup:passive",
            ""
        ]
    );
}

#[test]
fn chrome_h264_variants_follow_the_delivered_profile() {
    let offer = fixture("chrome.sdp");
    use H264Level::*;
    use H264Profile::*;
    for (profile, level, pt, rtx, plid) in [
        (ConstrainedBaseline, L3_1, 106, 107, "42e01f"),
        (ConstrainedBaseline, L3, 106, 107, "42e01e"),
        (Baseline, L3_1, 102, 103, "42001f"),
        (Main, L3_1, 127, 125, "4d001f"),
        (High, L5, 112, 113, "640032"),
        (High, L4, 112, 113, "640028"),
    ] {
        let a = answer(&offer, &with_h264(profile, level));
        check_answer_shape(&offer, &a);
        let video = accepted(&a, AcceptedKind::Video);
        assert_eq!(
            (video.pt.0, video.rtx_pt.map(|p| p.0)),
            (pt, Some(rtx)),
            "{profile}"
        );
        assert_eq!(h264(video).to_string(), plid, "{profile} {level}");
        assert!(a.sdp.contains(&format!("profile-level-id={plid}\r\n")));
    }
    // Not offered: Constrained High; offered only up to level 3.1: Constrained Baseline 4.
    for (profile, level) in [
        (ConstrainedHigh, L3_1),
        (ConstrainedBaseline, L4),
        (High, L5_1),
    ] {
        let a = answer(&offer, &with_h264(profile, level));
        check_answer_shape(&offer, &a);
        let r = a
            .rejected()
            .find(|r| r.kind == "video")
            .expect("video rejected");
        match &r.reason {
            RejectReason::H264NotDeliverable { delivered, offered } => {
                assert_eq!(delivered.profile, profile);
                assert_eq!(offered, &["42001f", "42e01f", "4d001f", "640032"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            r.reason
                .to_string()
                .contains("offered profile-level-ids: 42001f")
        );
        assert!(a.sdp.contains("\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\n"));
        assert!(a.sdp.contains("a=group:BUNDLE 0\r\n"), "{}", a.sdp);
    }
}

#[test]
fn safari_offer_gets_the_profile_that_is_delivered() {
    let offer = fixture("safari.sdp");
    // Constrained Baseline 3.1: Safari's 42e034 (level 5.2) at the delivered level.
    let a = answer(&offer, &params());
    check_answer_shape(&offer, &a);
    let video = accepted(&a, AcceptedKind::Video);
    assert_eq!((video.pt.0, video.rtx_pt.map(|p| p.0)), (98, Some(99)));
    assert_eq!(h264(video).to_string(), "42e01f");
    assert!(a.sdp.contains(
        "a=fmtp:98 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
    ));
    assert_eq!(accepted(&a, AcceptedKind::Audio).pt.0, 111);
    assert_eq!(a.remote.as_ref().unwrap().ice_ufrag, "W2qv");
    assert_eq!(video.remote_streams[0].rtx, Some(Ssrc(2817384210)));

    // Constrained High 5.2: 640c34 itself; at 3.1 the same payload type, level lowered.
    let a = answer(
        &offer,
        &with_h264(H264Profile::ConstrainedHigh, H264Level::L5_2),
    );
    let video = accepted(&a, AcceptedKind::Video);
    assert_eq!(
        (video.pt.0, h264(video).to_string().as_str()),
        (96, "640c34")
    );
    let a = answer(
        &offer,
        &with_h264(H264Profile::ConstrainedHigh, H264Level::L3_1),
    );
    let video = accepted(&a, AcceptedKind::Video);
    assert_eq!(
        (video.pt.0, h264(video).to_string().as_str()),
        (96, "640c1f")
    );
}

/// GStreamer's webrtcbin as a WHIP publisher (its offer, captured): send-only, H.264 from
/// openh264 at Constrained Baseline level 1.2. A sender may offer the delivered profile at a
/// lower level (its stream is forwarded to receivers answered at 3.1); a receiver may not.
#[test]
fn a_send_only_offer_may_send_h264_below_the_delivered_level() {
    let offer = fixture("gstreamer_whip.sdp");
    let a = answer(&offer, &params());
    check_answer_shape(&offer, &a);
    let video = accepted(&a, AcceptedKind::Video);
    assert_eq!(video.pt.0, 102);
    assert_eq!(
        h264(video).to_string(),
        "42c00c",
        "the offered level is kept"
    );
    assert_eq!(video.direction, Direction::RecvOnly);
    assert!(a.sdp.contains("profile-level-id=42c00c\r\n"));
    assert_eq!(
        accepted(&a, AcceptedKind::Audio).direction,
        Direction::RecvOnly
    );

    // The same offer wanting to receive too: the supernode would send it 3.1.
    let both = offer.replace("a=sendonly", "a=sendrecv");
    let a = answer(&both, &params());
    let rejected: Vec<_> = a.rejected().map(|r| r.kind.as_str()).collect();
    assert_eq!(rejected, ["video"]);

    // Above the delivered level, a sender is refused too.
    let high = offer.replace("profile-level-id=42c00c", "profile-level-id=42e034");
    assert_eq!(
        answer(&high, &params())
            .rejected()
            .map(|r| r.kind.as_str())
            .collect::<Vec<_>>(),
        ["video"]
    );
}

#[test]
fn firefox_offer_with_session_level_fingerprint_and_its_own_ordering() {
    let offer = fixture("firefox.sdp");
    let a = answer(&offer, &params());
    check_answer_shape(&offer, &a);
    let audio = accepted(&a, AcceptedKind::Audio);
    assert_eq!(audio.pt.0, 109);
    assert_eq!(audio.extensions.mid, Some(3));
    assert_eq!(audio.remote_streams[0].ssrc, Ssrc(2917512345));
    let video = accepted(&a, AcceptedKind::Video);
    assert_eq!((video.pt.0, video.rtx_pt.map(|p| p.0)), (126, Some(127)));
    assert_eq!(h264(video).to_string(), "42e01f");
    assert_eq!(video.extensions.transport_cc, Some(7));
    assert_eq!(video.remote_streams.len(), 1);
    assert_eq!(video.remote_streams[0].ssrc, Ssrc(1842023651));
    assert_eq!(video.remote_streams[0].rtx, Some(Ssrc(3318420577)));
    let remote = a.remote.as_ref().unwrap();
    assert_eq!(
        (remote.ice_ufrag.as_str(), remote.dtls_role),
        ("7c3e9a1f", DtlsRole::Server)
    );
    assert_eq!(remote.fingerprints[0].1[..2], [0x5a, 0xc3]);
    assert!(a.sdp.contains("a=group:BUNDLE 0 1\r\n"));
    assert!(!a.sdp.contains("extmap-allow-mixed"));
    assert!(!a.sdp.contains("goog-remb"));

    let mut p = params();
    p.policy.remb = true;
    p.policy.transport_cc = false;
    let a = answer(&offer, &p);
    let video = accepted(&a, AcceptedKind::Video);
    assert!(video.feedback.remb && !video.feedback.transport_cc);
    assert_eq!(video.extensions.transport_cc, None);
    assert!(a.sdp.contains("a=rtcp-fb:126 goog-remb\r\n"));
    assert!(!a.sdp.contains("transport-cc"));
}

#[test]
fn dtls_setup_follows_the_offer() {
    let offer = fixture("firefox.sdp");
    let a = answer(
        &offer.replace("a=setup:actpass", "a=setup:active"),
        &params(),
    );
    assert_eq!(a.remote.unwrap().dtls_role, DtlsRole::Server);
    assert!(a.sdp.contains("a=setup:passive\r\n"));
    let a = answer(
        &offer.replace("a=setup:actpass", "a=setup:passive"),
        &params(),
    );
    assert_eq!(a.remote.unwrap().dtls_role, DtlsRole::Client);
    assert!(a.sdp.contains("a=setup:active\r\n") && !a.sdp.contains("passive"));
    let a = answer(&offer.replace("a=setup:actpass\r\n", ""), &params());
    assert_eq!(a.remote.unwrap().dtls_role, DtlsRole::Server);
    let holdconn = offer.replace("a=setup:actpass", "a=setup:holdconn");
    assert_eq!(
        answer_offer(holdconn.as_bytes(), &params()),
        Err(SdpError::SetupHoldconn {
            line: line_of(&offer, "m=audio")
        })
    );
}

#[test]
fn simulcast_rids_are_accepted_only_when_enabled() {
    let offer = fixture("chrome_simulcast_sendonly.sdp");
    let a = answer(&offer, &params());
    check_answer_shape(&offer, &a);
    let video = accepted(&a, AcceptedKind::Video);
    assert_eq!(video.direction, Direction::RecvOnly);
    assert!(video.send.is_none(), "a sendonly offer receives nothing");
    assert!(video.remote_rids.is_empty() && video.remote_streams.is_empty());
    assert!(!a.sdp.contains("a=rid:") && !a.sdp.contains("a=msid:"));
    let audio = accepted(&a, AcceptedKind::Audio);
    assert_eq!(audio.direction, Direction::RecvOnly);
    assert_eq!(audio.remote_streams[0].ssrc, Ssrc(926412300));

    let mut p = params();
    p.policy.simulcast = true;
    let a = answer(&offer, &p);
    check_answer_shape(&offer, &a);
    let video = accepted(&a, AcceptedKind::Video);
    assert_eq!(video.remote_rids, ["h", "m", "l"]);
    assert_eq!(
        (video.extensions.rid, video.extensions.repaired_rid),
        (Some(10), Some(11))
    );
    let v = section(&a.sdp, 1);
    for line in [
        "a=recvonly",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=rid:h recv",
        "a=rid:l recv",
        "a=simulcast:recv h;m;l",
    ] {
        assert!(v.contains(&line), "lacks {line:?}: {v:#?}");
    }
    let parsed = parse(&a.sdp).unwrap();
    assert_eq!(parsed.media[1].simulcast.as_ref().unwrap().recv.len(), 3);
}

#[test]
fn recvonly_offer_gets_sendonly_with_the_supernode_streams() {
    let offer = fixture("chrome.sdp").replace("a=sendrecv", "a=recvonly");
    let a = answer(&offer, &params());
    check_answer_shape(&offer, &a);
    for kind in [AcceptedKind::Audio, AcceptedKind::Video] {
        let m = accepted(&a, kind);
        assert_eq!(m.direction, Direction::SendOnly);
        assert!(m.remote_streams.is_empty());
    }
    assert!(a.sdp.contains("a=ssrc-group:FID 22 23\r\n"));
    // Nothing to send in video: inactive.
    let mut p = params();
    p.video_send.clear();
    let a = answer(&offer, &p);
    assert_eq!(
        accepted(&a, AcceptedKind::Video).direction,
        Direction::Inactive
    );
    // An RTX SSRC is not announced where RTX is not negotiated (audio).
    let mut p = params();
    p.audio_send = vec![send(11, Some(12), "sn-audio")];
    let a = answer(&fixture("firefox.sdp"), &p);
    assert_eq!(
        accepted(&a, AcceptedKind::Audio)
            .send
            .as_ref()
            .unwrap()
            .rtx_ssrc,
        None
    );
    assert!(!section(&a.sdp, 0).iter().any(|l| l.contains("ssrc:12")));
}

#[test]
fn public_ip_is_announced_first() {
    let offer = fixture("safari.sdp");
    let mut p = params();
    p.transport.public_ip = Some("203.0.113.50".parse().unwrap());
    let a = answer(&offer, &p);
    let audio = section(&a.sdp, 0);
    assert_eq!(audio[1], "c=IN IP4 203.0.113.50");
    let candidates: Vec<_> = audio
        .iter()
        .filter(|l| l.starts_with("a=candidate"))
        .collect();
    assert_eq!(
        candidates,
        [
            &"a=candidate:1 1 udp 2130706431 203.0.113.50 40100 typ host",
            &"a=candidate:2 1 udp 2130706175 10.1.2.3 40100 typ host",
        ]
    );
    p.transport.host = "[2001:db8::7]:40200".parse().unwrap();
    p.transport.public_ip = None;
    let a = answer(&offer, &p);
    assert!(a.sdp.contains("c=IN IP6 2001:db8::7\r\n"));
    assert!(
        a.sdp
            .contains("a=candidate:1 1 udp 2130706431 2001:db8::7 40200 typ host\r\n")
    );
}

#[test]
fn offer_without_opus_or_h264_gets_port_zero_m_lines() {
    let offer = fixture("no_opus_no_h264.sdp");
    let a = answer(&offer, &params());
    check_answer_shape(&offer, &a);
    let reasons: Vec<_> = a.rejected().map(|r| r.reason.clone()).collect();
    assert_eq!(reasons, [RejectReason::NoOpus, RejectReason::NoH264]);
    assert!(a.remote.is_none());
    assert!(a.sdp.contains("\r\nm=audio 0 UDP/TLS/RTP/SAVPF 9\r\n"));
    assert!(a.sdp.contains("\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\n"));
    assert!(!a.sdp.contains("a=group:") && !a.sdp.contains("a=candidate"));
    // Each rejected DTLS m-line still carries the transport's ICE credentials and
    // fingerprint (GStreamer's webrtcbin needs them).
    assert_eq!(a.sdp.matches(FINGERPRINT_LINE).count(), 2, "{}", a.sdp);
    assert_eq!(
        a.sdp.matches("a=ice-ufrag:SnUf\r\n").count(),
        2,
        "{}",
        a.sdp
    );

    let mut p = params();
    p.policy.h264 = None;
    let a = answer(&fixture("chrome.sdp"), &p);
    let r = a.rejected().find(|r| r.kind == "video").unwrap();
    assert_eq!(r.reason, RejectReason::VideoNotServed);
    assert_eq!(accepted(&a, AcceptedKind::Audio).pt.0, 111);

    // H.264 only in packetization-mode 0.
    let pm0 = fixture("firefox.sdp").replace("packetization-mode=1", "packetization-mode=0");
    let a = answer(&pm0, &params());
    let r = a.rejected().find(|r| r.kind == "video").unwrap();
    assert_eq!(r.reason, RejectReason::NoH264PacketizationMode1);
}

#[test]
fn m_lines_outside_bundle_or_without_rtcp_mux_are_rejected() {
    let chrome = fixture("chrome.sdp");
    let a = answer(
        &chrome.replace("a=group:BUNDLE 0 1 2", "a=group:BUNDLE 1"),
        &params(),
    );
    let r = a.rejected().find(|r| r.kind == "audio").unwrap();
    assert_eq!(r.reason, RejectReason::NotBundled);
    assert!(a.sdp.contains("a=group:BUNDLE 1\r\n"));

    // Without BUNDLE: one transport, so only the first m-line served.
    let a = answer(&chrome.replace("a=group:BUNDLE 0 1 2\r\n", ""), &params());
    assert_eq!(a.accepted().count(), 1);
    assert_eq!(
        a.rejected().find(|r| r.kind == "video").unwrap().reason,
        RejectReason::NotBundled
    );
    assert!(!a.sdp.contains("a=group:"));

    let no_mux = chrome.replacen("a=rtcp-mux\r\n", "", 1);
    let a = answer(&no_mux, &params());
    assert_eq!(
        a.rejected().find(|r| r.kind == "audio").unwrap().reason,
        RejectReason::NoRtcpMux
    );

    // An m-line the offerer disabled, and an unknown media type.
    let disabled = chrome.replace("m=audio 54400", "m=audio 0");
    let a = answer(&disabled, &params());
    assert_eq!(
        a.rejected().find(|r| r.kind == "audio").unwrap().reason,
        RejectReason::DisabledInOffer
    );
    let text = chrome.replace("m=application 54400 UDP/DTLS/SCTP", "m=text 54400 RTP/AVP");
    let text = text.replace("webrtc-datachannel", "98");
    let a = answer(&text, &params());
    assert_eq!(
        a.rejected().find(|r| r.kind == "text").unwrap().reason,
        RejectReason::UnsupportedMedia("text".into())
    );
    let savp = chrome.replace("m=audio 54400 UDP/TLS/RTP/SAVPF", "m=audio 54400 RTP/AVP");
    let a = answer(&savp, &params());
    assert_eq!(
        a.rejected().find(|r| r.kind == "audio").unwrap().reason,
        RejectReason::UnsupportedProtocol("RTP/AVP".into())
    );
}

/// Replaces the first line starting with `prefix` by `with`; returns the text and the
/// 1-based number of that line.
fn replace_line(text: &str, prefix: &str, with: &str) -> (String, usize) {
    let n = line_of(text, prefix);
    let out: Vec<&str> = text
        .split("\r\n")
        .enumerate()
        .map(|(i, l)| if i + 1 == n { with } else { l })
        .collect();
    (out.join("\r\n"), n)
}

fn line_error(text: &str) -> (usize, LineError) {
    match parse(text) {
        Err(SdpError::Line { line, reason }) => (line, reason),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn malformed_offers_give_typed_errors_with_line_numbers() {
    let chrome = fixture("chrome.sdp");
    let malformed = |what: &'static str| move |r: &LineError| matches!(r, LineError::Malformed { what: w, .. } if *w == what);
    type Check = Box<dyn Fn(&LineError) -> bool>;
    let cases: Vec<(&str, &str, Check)> = vec![
        (
            "a=rtpmap:111",
            "a=rtpmap:111 opus",
            Box::new(malformed("a=rtpmap")),
        ),
        (
            "a=rtpmap:111",
            "a=rtpmap:300 opus/48000/2",
            Box::new(malformed("a=rtpmap")),
        ),
        (
            "a=fingerprint",
            "a=fingerprint:sha-256 1C:08:4",
            Box::new(malformed("a=fingerprint")),
        ),
        (
            "a=fingerprint",
            "a=fingerprint:sha-256 1C:08:46",
            Box::new(malformed("a=fingerprint")),
        ),
        (
            "m=audio",
            "m=audio 9x UDP/TLS/RTP/SAVPF 111",
            Box::new(malformed("m=")),
        ),
        (
            "m=audio",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 opus",
            Box::new(malformed("m=")),
        ),
        ("m=audio", "m=audio 9", Box::new(malformed("m="))),
        (
            "a=ice-ufrag",
            "a=ice-ufrag:ab",
            Box::new(malformed("a=ice-ufrag")),
        ),
        (
            "a=ice-pwd",
            "a=ice-pwd:short",
            Box::new(malformed("a=ice-pwd")),
        ),
        (
            "a=setup",
            "a=setup:sideways",
            Box::new(malformed("a=setup")),
        ),
        (
            "a=candidate",
            "a=candidate:1 1 udp x 1.2.3.4 5 typ host",
            Box::new(malformed("a=candidate")),
        ),
        (
            "a=extmap:1",
            "a=extmap:0 urn:x",
            Box::new(malformed("a=extmap")),
        ),
        (
            "a=ssrc-group",
            "a=ssrc-group:FID one two",
            Box::new(malformed("a=ssrc-group")),
        ),
        (
            "a=ssrc:",
            "a=ssrc:-1 cname:x",
            Box::new(malformed("a=ssrc")),
        ),
        (
            "a=rtcp-fb:96",
            "a=rtcp-fb:96",
            Box::new(malformed("a=rtcp-fb")),
        ),
        ("a=fmtp:111", "a=fmtp:111", Box::new(malformed("a=fmtp"))),
        ("c=IN", "c=IN IP4", Box::new(malformed("c="))),
        ("o=", "o=- 1 2 IN IP4", Box::new(malformed("o="))),
        ("a=mid:0", "a=mid:", Box::new(malformed("a=mid"))),
        (
            "t=0 0",
            "x=unknown",
            Box::new(|r| *r == LineError::UnknownType('x')),
        ),
        (
            "t=0 0",
            "garbage",
            Box::new(|r| *r == LineError::NotTypeValue),
        ),
        ("t=0 0", "A=0", Box::new(|r| *r == LineError::NotTypeValue)),
        (
            "t=0 0",
            "o=- 1 1 IN IP4 1.1.1.1",
            Box::new(|r| *r == LineError::Misplaced { what: "o=" }),
        ),
        (
            "a=rtcp-rsize",
            "t=0 0",
            Box::new(|r| matches!(r, LineError::Misplaced { .. })),
        ),
        (
            "a=sendrecv",
            "a=group:BUNDLE 0",
            Box::new(|r| matches!(r, LineError::Misplaced { .. })),
        ),
        (
            "a=rtpmap:0 PCMU",
            "a=rtpmap:111 PCMU/8000",
            Box::new(|r| {
                *r == LineError::DuplicatePayloadType {
                    what: "a=rtpmap",
                    pt: 111,
                }
            }),
        ),
        (
            "a=ice-pwd",
            "a=ice-ufrag:Kx3b",
            Box::new(|r| {
                *r == LineError::Misplaced {
                    what: "a=ice-ufrag",
                }
            }),
        ),
        ("v=0", "v=1", Box::new(|r| *r == LineError::NotVersionZero)),
        (
            "a=msid-semantic",
            "a=mid:7",
            Box::new(|r| matches!(r, LineError::Misplaced { .. })),
        ),
    ];
    for (prefix, with, check) in cases {
        let (text, n) = replace_line(&chrome, prefix, with);
        let (line, reason) = line_error(&text);
        assert_eq!(line, n, "{with:?}: {reason}");
        assert!(check(&reason), "{with:?}: unexpected {reason:?}");
        let shown = SdpError::Line { line, reason }.to_string();
        assert!(shown.starts_with(&format!("line {n}: ")), "{shown}");
        // The same through the answerer.
        assert!(answer_offer(text.as_bytes(), &params()).is_err());
    }
}

#[test]
fn malformed_offers_as_a_whole() {
    let chrome = fixture("chrome.sdp");
    assert_eq!(parse(""), Err(SdpError::Missing { what: "v= line" }));
    assert_eq!(
        parse("v=0\r\ns=-\r\n"),
        Err(SdpError::Missing { what: "o= line" })
    );
    assert_eq!(
        parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 RTP/AVP 0\r\n"),
        Err(SdpError::Missing { what: "s= line" })
    );
    let header = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
    assert_eq!(
        answer_offer(header.as_bytes(), &params()),
        Err(SdpError::NoMedia)
    );

    // A duplicate mid is reported at the second m-line.
    let dup = chrome.replace("a=mid:1", "a=mid:0");
    assert_eq!(
        line_error(&dup),
        (
            line_of(&chrome, "m=video"),
            LineError::DuplicateMid("0".into())
        )
    );
    let unknown = chrome.replace("a=group:BUNDLE 0 1 2", "a=group:BUNDLE 0 1 7");
    assert_eq!(
        parse(&unknown),
        Err(SdpError::UnknownBundleMid {
            line: 5,
            mid: "7".into()
        })
    );

    let no_ice: String = chrome
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=ice-ufrag"))
        .collect();
    assert_eq!(
        answer_offer(no_ice.as_bytes(), &params()),
        Err(SdpError::MissingIceCredentials {
            line: line_of(&chrome, "m=audio")
        })
    );
    let no_fp: String = chrome
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=fingerprint"))
        .collect();
    assert_eq!(
        answer_offer(no_fp.as_bytes(), &params()),
        Err(SdpError::MissingFingerprint {
            line: line_of(&chrome, "m=audio")
        })
    );
    let lite = chrome.replace("t=0 0\r\n", "t=0 0\r\na=ice-lite\r\n");
    assert_eq!(
        answer_offer(lite.as_bytes(), &params()),
        Err(SdpError::OfferIsIceLite)
    );

    // Not UTF-8 on line 12.
    let mut bytes = chrome.clone().into_bytes();
    let at = chrome.match_indices("\r\n").nth(10).unwrap().0 + 4;
    bytes[at] = 0xff;
    assert_eq!(
        answer_offer(&bytes, &params()),
        Err(SdpError::Line {
            line: 12,
            reason: LineError::NotUtf8
        })
    );

    // Limits.
    let big = format!("{chrome}{}", "a=x-padding\r\n".repeat(MAX_SDP_BYTES / 13));
    assert!(matches!(parse(&big), Err(SdpError::TooLarge { .. })));
    let many = format!("{header}{}", "a=x\r\n".repeat(MAX_SDP_LINES));
    assert_eq!(
        parse(&many),
        Err(SdpError::TooManyLines { max: MAX_SDP_LINES })
    );
    let sections = format!(
        "{header}{}",
        "m=audio 9 RTP/AVP 0\r\n".repeat(MAX_MEDIA_SECTIONS + 1)
    );
    assert_eq!(
        parse(&sections),
        Err(SdpError::TooManyMediaSections {
            line: 5 + MAX_MEDIA_SECTIONS,
            max: MAX_MEDIA_SECTIONS
        })
    );

    // Bad parameters are the caller's error, not the offer's.
    let mut p = params();
    p.transport.ice_pwd = "short".into();
    assert!(matches!(
        answer_offer(chrome.as_bytes(), &p),
        Err(SdpError::InvalidParams { .. })
    ));
    p = params();
    p.video_send[0].cname = "two words".into();
    assert!(matches!(
        answer_offer(chrome.as_bytes(), &p),
        Err(SdpError::InvalidParams { .. })
    ));
}

#[test]
fn lf_line_ends_and_empty_lines_are_accepted() {
    let offer = fixture("firefox.sdp")
        .replace("\r\n", "\n")
        .replace("t=0 0\n", "t=0 0\n\n");
    let a = answer(&offer, &params());
    assert_eq!(a.accepted().count(), 2);
}

const FIXTURES: [&str; 5] = [
    "chrome.sdp",
    "safari.sdp",
    "firefox.sdp",
    "chrome_simulcast_sendonly.sdp",
    "no_opus_no_h264.sdp",
];

#[derive(Debug, Clone)]
enum Mutation {
    SetByte(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    DuplicateLine(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        (any::<usize>(), 0usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    Just(b' '),
                    Just(b':'),
                    Just(b'/'),
                    Just(b'\r'),
                    Just(b'\n'),
                    Just(b'='),
                    Just(b'0'),
                    Just(b'9'),
                    any::<u8>()
                ],
                1..8
            )
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match m {
        Mutation::SetByte(i, b) => {
            if !bytes.is_empty() {
                bytes[i % len] = *b;
            }
        }
        Mutation::Delete(i, n) => {
            let start = (i % len).min(bytes.len());
            let end = (start + n).min(bytes.len());
            bytes.drain(start..end);
        }
        Mutation::Insert(i, v) => {
            let at = (i % len).min(bytes.len());
            bytes.splice(at..at, v.iter().copied());
        }
        Mutation::DuplicateLine(i) => {
            let lines: Vec<Vec<u8>> = bytes
                .split_inclusive(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect();
            if !lines.is_empty() {
                let k = i % lines.len();
                let mut out = Vec::with_capacity(bytes.len() * 2);
                for (j, l) in lines.iter().enumerate() {
                    out.extend_from_slice(l);
                    if j == k {
                        out.extend_from_slice(l);
                    }
                }
                *bytes = out;
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Parsing and answering never panic on mutated browser offers; whatever is answered
    /// parses again and has one m-section per offered one.
    #[test]
    fn mutated_offers_never_panic(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
        simulcast in any::<bool>(),
    ) {
        let mut bytes = fixture(FIXTURES[which]).into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let mut p = params();
        p.policy.simulcast = simulcast;
        if let Ok(a) = answer_offer(&bytes, &p) {
            let reparsed = parse(&a.sdp);
            prop_assert!(reparsed.is_ok(), "answer does not parse: {:?}\n{}", reparsed, a.sdp);
            let offered = supernode_signaling::sdp::parse_bytes(&bytes).unwrap();
            prop_assert_eq!(reparsed.unwrap().media.len(), offered.media.len());
            prop_assert_eq!(a.media.len(), offered.media.len());
        }
    }
}

/// Found by the `sdp_answer` fuzzer (AddressSanitizer run, session 8): an offer whose
/// session-level `a=extmap` gave transport-cc an id that a media section used for another
/// extension got an answer mapping that id twice in the section (which does not parse).
/// A session-level mapping now counts only where the section does not use its id.
#[test]
fn a_session_level_extmap_never_maps_an_id_twice_in_the_answer() {
    const TCC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
    let chrome = fixture("chrome.sdp");
    let without: String = chrome
        .lines()
        .filter(|l| !(l.starts_with("a=extmap:") && l.contains("transport-wide-cc")))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let mut p = params();
    p.policy.transport_cc = true;
    let mut session_level_used = false;
    for id in 1..=14u8 {
        let offer = without.replacen(
            "a=group:BUNDLE",
            &format!("a=extmap:{id} {TCC}\r\na=group:BUNDLE"),
            1,
        );
        let a = answer(&offer, &p);
        let again = parse(&a.sdp);
        assert!(again.is_ok(), "id {id}: the answer parses: {again:?}");
        for i in 0..a.media.len() {
            let ids: Vec<&str> = section(&a.sdp, i)
                .into_iter()
                .filter_map(|l| l.strip_prefix("a=extmap:"))
                .filter_map(|l| l.split(' ').next())
                .collect();
            let mut unique = ids.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), ids.len(), "id {id}, section {i}: {ids:?}");
            session_level_used |= section(&a.sdp, i)
                .iter()
                .any(|l| *l == format!("a=extmap:{id} {TCC}"));
        }
    }
    assert!(
        session_level_used,
        "where the id is free, the session-level mapping is answered"
    );
}
