//! Browser transports through the sans-IO core, on a virtual clock: ICE-lite checks (right
//! and wrong password, the browser's ufrag, USE-CANDIDATE), the DTLS handshake with a fake
//! browser using the same DTLS crate as client, SRTP both ways to an SDES-keyed client leg,
//! early media held until the keys exist, a fingerprint mismatch refused and counted,
//! consent expiry freeing the transport, strangers' STUN/DTLS/SRTP on the shared port
//! dropped and counted, and transport-wide congestion control feedback checked against what
//! the browser sent; a browser keyed after its source started gets a keyframe asked for.

mod harness;

use std::sync::Arc;
use std::time::Duration;

use harness::*;
use supernode_media::packet::rtcp::{RtcpCompound, RtcpPacket, TwccStatus};
use supernode_media::packet::stun::{Class, StunMessage};

const UFRAG: &str = "rlyU";
const PWD: &str = "relay-password-0123456789";

fn no_reports() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

fn identity() -> Arc<DtlsIdentity> {
    Arc::new(DtlsIdentity::generate().expect("relay certificate"))
}

fn spec(relay: &Arc<DtlsIdentity>, browser: &BrowserPeer, twcc: Option<u8>) -> BrowserSpec {
    BrowserSpec {
        identity: relay.clone(),
        remote_fingerprint: browser.fingerprint(),
        remote_ufrag: Some(browser.ufrag.clone()),
        twcc_extension_id: twcc,
        mid_extension_id: None,
        receive_mids: Vec::new(),
        simulcast: None,
    }
}

/// A session of a browser leg and an SRTP client leg, connected both ways.
fn browser_and_client(
    h: &mut Harness,
    relay: &Arc<DtlsIdentity>,
    browser: &BrowserPeer,
    twcc: Option<u8>,
) -> (Leg, Leg, SrtpClient) {
    let (keys, client) = srtp_pair(SrtpProfile::Aes128CmHmacSha1_80, 7);
    let legs = h.session_with([
        LegOpts::browser(UFRAG, PWD, spec(relay, browser, twcc)),
        LegOpts::latching().srtp(keys),
    ]);
    h.connect_both(legs[0], legs[1]);
    (legs[0], legs[1], client)
}

/// A browser and an SRTP client leg connected both ways, the browser's path chosen by ICE
/// (USE-CANDIDATE) and keyed by DTLS: the browser, its leg, the client's leg, the client's
/// SRTP and the browser's.
fn keyed_browser(
    h: &mut Harness,
    twcc: Option<u8>,
) -> (BrowserPeer, Leg, Leg, SrtpClient, SrtpClient) {
    let relay = identity();
    let mut b = h.browser_peer("brwU");
    let (lb, lc, client) = browser_and_client(h, &relay, &b, twcc);
    h.send(b.peer, lb, &ice_check(UFRAG, "brwU", PWD, 1, true));
    let srtp = b.handshake(h, lb, 20).expect("handshake completes");
    (b, lb, lc, client, srtp)
}

fn stun_answers(h: &mut Harness, p: Peer) -> Vec<Datagram> {
    let all = h.take(p);
    all.into_iter().filter(|d| d.is_stun()).collect()
}

#[test]
fn ice_lite_checks_password_ufrag_and_nomination() {
    let mut h = Harness::new(no_reports());
    let relay = identity();
    let b = h.browser_peer("brwU");
    let (lb, _, _) = browser_and_client(&mut h, &relay, &b, None);

    // Wrong password, wrong browser ufrag: no answer, no latch, counted.
    h.send(
        b.peer,
        lb,
        &ice_check(UFRAG, "brwU", "not-the-password", 1, true),
    );
    h.send(b.peer, lb, &ice_check(UFRAG, "evil", PWD, 2, true));
    assert!(h.take(b.peer).is_empty(), "no answer to a bad check");
    let s = h.stats(lb);
    assert_eq!(s.peer, None);
    assert_eq!(s.drops(DropReason::StunRejected), 2);

    // A valid check: a success response with the browser's address, integrity under the
    // relay's password and a fingerprint; the path is selected.
    h.send(b.peer, lb, &ice_check(UFRAG, "brwU", PWD, 3, false));
    let answers = stun_answers(&mut h, b.peer);
    assert_eq!(answers.len(), 1);
    let m = StunMessage::parse(&answers[0].data).unwrap();
    assert_eq!(m.class(), Class::SuccessResponse);
    assert_eq!(m.transaction_id().0, [3; 12]);
    assert_eq!(m.xor_mapped_address(), Some(b.peer.addr));
    m.verify_integrity(PWD.as_bytes()).expect("integrity");
    m.verify_fingerprint().expect("fingerprint");
    assert_eq!(h.stats(lb).peer, Some(b.peer.addr));

    // Before nomination a check from another candidate moves the path; USE-CANDIDATE from
    // the first selects it for good; later plain checks elsewhere are answered, not followed.
    let other = h.peer();
    h.send(other, lb, &ice_check(UFRAG, "brwU", PWD, 4, false));
    assert_eq!(h.stats(lb).peer, Some(other.addr));
    h.send(b.peer, lb, &ice_check(UFRAG, "brwU", PWD, 5, true));
    assert_eq!(h.stats(lb).peer, Some(b.peer.addr));
    let _ = h.take(other);
    h.send(other, lb, &ice_check(UFRAG, "brwU", PWD, 6, false));
    assert_eq!(stun_answers(&mut h, other).len(), 1, "answered");
    assert_eq!(h.stats(lb).peer, Some(b.peer.addr), "but not followed");
    // A new nomination moves it (the browser switched candidate pairs).
    h.send(other, lb, &ice_check(UFRAG, "brwU", PWD, 7, true));
    assert_eq!(h.stats(lb).peer, Some(other.addr));
    assert_eq!(h.stats(lb).drops(DropReason::StunRejected), 2);
}

#[test]
fn dtls_keys_srtp_both_ways_and_early_media_waits_for_the_keys() {
    let mut h = Harness::new(no_reports());
    let relay = identity();
    let mut b = h.browser_peer("brwU");
    let (lb, lc, mut client) = browser_and_client(&mut h, &relay, &b, None);
    let c = h.peer();
    h.send(b.peer, lb, &ice_check(UFRAG, "brwU", PWD, 1, true));
    let _ = h.take(b.peer);

    // Before the handshake: the client's media is held (never sent in plain), the browser's
    // plain RTP is refused.
    for i in 0..3u16 {
        h.send(
            c,
            lc,
            &client.protect_rtp(&rtp(0xC, i, u32::from(i) * 960, b"early")),
        );
    }
    assert!(
        h.take(b.peer).iter().all(|d| !d.is_rtp()),
        "nothing before the keys"
    );
    h.send_rtp(b.peer, lb, 0xB, 1, 0, b"plain");
    assert_eq!(h.stats(lb).drops(DropReason::NotKeyed), 1);
    assert!(h.take(c).iter().all(|d| !d.is_rtp()));

    let mut srtp = b.handshake(&mut h, lb, 20).expect("handshake completes");
    assert_eq!(h.browser_counters().handshakes, 1);
    assert_eq!(
        b.dtls.as_ref().unwrap().peer_fingerprint(),
        Some(relay.fingerprint()),
        "the relay's certificate is the one its answer announces"
    );
    // The held media went out when the keys came, protected with the browser's key.
    let early: Vec<_> = h.take(b.peer).into_iter().filter(|d| d.is_rtp()).collect();
    assert_eq!(early.len(), 3, "early media replayed after the handshake");
    for (i, d) in early.iter().enumerate() {
        let plain = srtp.unprotect_rtp(&d.data).expect("browser key opens it");
        assert_eq!(fields(&plain).1, i as u16);
        assert_eq!(fields(&plain).3, b"early");
    }

    // Browser -> client, and client -> browser, through the core.
    for i in 0..10u16 {
        h.send(
            b.peer,
            lb,
            &srtp.protect_rtp(&rtp(0xB, 100 + i, 0, &[i as u8; 200])),
        );
        h.send(
            c,
            lc,
            &client.protect_rtp(&rtp(0xC, 10 + i, 0, &[i as u8; 100])),
        );
        h.advance(Duration::from_millis(20));
    }
    let at_c: Vec<_> = h.take(c).into_iter().filter(|d| d.is_rtp()).collect();
    assert_eq!(at_c.len(), 10);
    for (i, d) in at_c.iter().enumerate() {
        let p = client.unprotect_rtp(&d.data).expect("client key");
        assert_eq!(fields(&p).3, vec![i as u8; 200]);
    }
    let at_b: Vec<_> = h.take(b.peer).into_iter().filter(|d| d.is_rtp()).collect();
    assert_eq!(at_b.len(), 10);
    for (i, d) in at_b.iter().enumerate() {
        let p = srtp.unprotect_rtp(&d.data).expect("browser key");
        assert_eq!(fields(&p).3, vec![i as u8; 100]);
    }
    // A packet under no key, or from elsewhere, is refused.
    h.send_rtp(b.peer, lb, 0xB, 200, 0, b"plain after keys");
    assert_eq!(h.stats(lb).drops(DropReason::SrtpAuth), 1);
    let elsewhere = h.peer();
    h.send(
        elsewhere,
        lb,
        &srtp.protect_rtp(&rtp(0xB, 201, 0, b"moved?")),
    );
    assert_eq!(
        h.stats(lb).peer,
        Some(b.peer.addr),
        "SRTP alone does not move a browser"
    );
    assert!(h.take(c).iter().all(|d| !d.is_rtp()));
}

#[test]
fn a_certificate_that_is_not_the_offers_closes_the_transport() {
    let mut h = Harness::new(no_reports());
    let relay = identity();
    let honest = h.browser_peer("brwU");
    let mut impostor = h.browser_peer("brwU");
    // The transport expects the honest browser's fingerprint; the impostor answers ICE
    // (it knows the credentials) but has another certificate.
    let (lb, _, _) = browser_and_client(&mut h, &relay, &honest, None);
    h.send(impostor.peer, lb, &ice_check(UFRAG, "brwU", PWD, 1, true));
    assert!(impostor.handshake(&mut h, lb, 20).is_none());
    assert!(!h.is_live(lb), "freed");
    let c = h.browser_counters();
    assert_eq!((c.fingerprint_mismatches, c.handshakes), (1, 0));
    assert!(
        h.events()
            .iter()
            .any(|e| matches!(e, HarnessEvent::Freed { leg, .. } if *leg == lb.id))
    );
}

#[test]
fn consent_expires_without_checks_even_while_media_flows() {
    let mut h = Harness::new(CoreConfig {
        consent_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(60),
        ..no_reports()
    });
    let (b, lb, _, _, mut srtp) = keyed_browser(&mut h, None);
    // Checks every 5 s and media every 100 ms: alive after 60 s.
    let mut seq = 0u16;
    for k in 0..600u32 {
        if k % 50 == 0 {
            h.send(
                b.peer,
                lb,
                &ice_check(UFRAG, "brwU", PWD, (k / 50) as u8, false),
            );
        }
        seq += 1;
        h.send(b.peer, lb, &srtp.protect_rtp(&rtp(0xB, seq, 0, b"m")));
        h.advance(Duration::from_millis(100));
    }
    assert!(h.is_live(lb));
    // Media keeps flowing, checks stop: freed 30 s after the last check, and counted.
    for _ in 0..400u32 {
        seq += 1;
        if h.is_live(lb) {
            h.send(b.peer, lb, &srtp.protect_rtp(&rtp(0xB, seq, 0, b"m")));
        }
        h.advance(Duration::from_millis(100));
    }
    assert!(!h.is_live(lb), "consent expired");
    assert_eq!(h.browser_counters().consent_expired, 1);
}

#[test]
fn strangers_stun_dtls_and_srtp_on_the_shared_port_are_dropped_and_counted() {
    let mut h = Harness::new(no_reports());
    let (b, lb, _, _, mut srtp) = keyed_browser(&mut h, None);
    let before = h.shared_strangers();

    let mut stranger = h.browser_peer("strg");
    // DTLS from an address no transport selected: a ClientHello gets nothing back.
    let mut dtls = supernode_relay::core::dtls::DtlsClient::new(&stranger.identity, {
        // The harness's clock is what the core sees; the client only needs a start.
        std::time::Instant::now()
    });
    dtls.handle_timeout(std::time::Instant::now());
    for d in dtls.drain() {
        h.send(stranger.peer, lb, &d);
    }
    // STUN for an unknown ufrag, and SRTP/RTP from the stranger's address.
    h.send(
        stranger.peer,
        lb,
        &ice_check("nobody", "strg", PWD, 9, true),
    );
    h.send(
        stranger.peer,
        lb,
        &srtp.protect_rtp(&rtp(0xB, 500, 0, b"replayed")),
    );
    h.send_rtp(stranger.peer, lb, 0xB, 501, 0, b"plain");
    assert_eq!(h.shared_strangers(), before + 4);
    // STUN with the transport's ufrag but a guessed password: counted on the transport.
    h.send(
        stranger.peer,
        lb,
        &ice_check(UFRAG, "brwU", "guess", 10, true),
    );
    assert_eq!(h.stats(lb).drops(DropReason::StunRejected), 1);
    assert!(
        h.take(stranger.peer).is_empty(),
        "nothing answers a stranger"
    );
    assert_eq!(h.stats(lb).peer, Some(b.peer.addr));
    // The stranger's own handshake attempt through the harness fails the same way.
    assert!(stranger.handshake(&mut h, lb, 3).is_none());
    assert!(h.is_live(lb), "the transport is untouched");
}

#[test]
fn twcc_feedback_reports_the_browsers_packets_and_arrival_times() {
    let mut h = Harness::new(no_reports());
    let (b, lb, _, _, mut srtp) = keyed_browser(&mut h, Some(5));
    let _ = h.take(b.peer);
    // 20 packets 10 ms apart carrying transport-wide seq 65530.. (wrapping), one lost.
    let lost = 65535u16;
    let mut sent = Vec::new();
    for i in 0..20u16 {
        let tw = 65530u16.wrapping_add(i);
        if tw != lost {
            let p = rtp_twcc(0xB, i, u32::from(i) * 3000, 5, tw, &[0u8; 300]);
            h.send(b.peer, lb, &srtp.protect_rtp(&p));
            sent.push((tw, h.elapsed()));
        }
        h.advance(Duration::from_millis(10));
    }
    h.advance(Duration::from_millis(200));
    // Feedback arrives as SRTCP on the transport; together the packets cover every seq.
    let mut statuses = Vec::new();
    let mut feedbacks = 0;
    for d in h.take(b.peer).iter().filter(|d| d.is_rtcp()) {
        let plain = srtp
            .unprotect_rtcp(&d.data)
            .expect("SRTCP under the browser's key");
        for p in RtcpCompound::parse(&plain) {
            if let Ok(RtcpPacket::TransportFeedback(f)) = p {
                feedbacks += 1;
                let mut at = i64::from(f.reference_time) * 64_000;
                for (seq, s) in f.statuses() {
                    match s {
                        TwccStatus::Received(d) => {
                            at += i64::from(d) * 250;
                            statuses.push((seq, Some(at)));
                        }
                        TwccStatus::NotReceived => statuses.push((seq, None)),
                    }
                }
            }
        }
    }
    assert!(feedbacks >= 2, "feedback every 100 ms: {feedbacks}");
    let received: Vec<_> = statuses.iter().filter(|(_, a)| a.is_some()).collect();
    assert_eq!(received.len(), sent.len());
    // Arrival times as the relay saw them (its epoch is the harness start), to the tick.
    for ((seq, at), (tw, t)) in received.iter().zip(&sent) {
        assert_eq!(seq, tw);
        let want = t.as_micros() as i64;
        assert!(
            (at.unwrap() - want).abs() < 250,
            "seq {seq}: {at:?} vs {want}"
        );
    }
    assert!(
        statuses.contains(&(lost, None)),
        "the lost packet is reported lost"
    );
    assert!(
        statuses.iter().all(|(s, a)| a.is_some() || *s == lost),
        "nothing else reported lost"
    );
}

#[test]
fn a_browser_keyed_after_its_source_started_gets_a_keyframe_asked_for() {
    let mut h = Harness::new(no_reports());
    let relay = identity();
    let mut b = h.browser_peer("brwU");
    let (keys, mut client) = srtp_pair(SrtpProfile::Aes128CmHmacSha1_80, 7);
    let legs = h.session_with([
        LegOpts::browser(UFRAG, PWD, spec(&relay, &b, None)),
        LegOpts::latching().srtp(keys).clock_rate(90_000),
    ]);
    let (lb, lc) = (legs[0], legs[1]);
    // A viewer: it receives the source's video, sends nothing back.
    h.connect(lc, lb);
    let c = h.peer();
    for i in 0..3u16 {
        let frame = rtp(0xC, i, u32::from(i) * 3000, b"frame");
        h.send(c, lc, &client.protect_rtp(&frame));
        h.advance(Duration::from_millis(33));
    }
    let plis = |h: &mut Harness, client: &mut SrtpClient| {
        h.take(c)
            .into_iter()
            .filter(|d| d.is_rtcp())
            .filter_map(|d| client.unprotect_rtcp(&d.data))
            .filter(|p| {
                p.len() >= 12 && p[0] & 0x1f == 1 && p[1] == 206 && p[8..12] == 0xCu32.to_be_bytes()
            })
            .count()
    };
    assert_eq!(plis(&mut h, &mut client), 0, "nobody asked yet");
    h.send(b.peer, lb, &ice_check(UFRAG, "brwU", PWD, 1, true));
    let _ = h.take(b.peer);
    let mut srtp = b.handshake(&mut h, lb, 20).expect("handshake completes");
    assert_eq!(
        plis(&mut h, &mut client),
        1,
        "once keyed, the browser's source is asked for a keyframe of its video stream"
    );
    // The browser's own request right after is coalesced with it.
    h.advance(Duration::from_millis(10));
    h.send(b.peer, lb, &srtp.protect_rtcp(&pli(0xB, 0xC)));
    assert_eq!(plis(&mut h, &mut client), 0);
    h.advance(Duration::from_millis(400));
    h.send(b.peer, lb, &srtp.protect_rtcp(&pli(0xB, 0xC)));
    assert_eq!(plis(&mut h, &mut client), 1, "a later one goes through");
}

/// A WHIP publisher and a WHEP viewer that number everything differently: the viewer gets
/// the publisher's audio and video under its own payload types, its own MID extension id
/// and its own m-lines' MIDs (the publisher's MID element removed, others kept), the
/// payload untouched; early media held before the viewer's keys is rewritten the same way.
#[test]
fn a_viewer_gets_its_own_payload_types_and_mids_whatever_the_publishers_numbering() {
    let mut h = Harness::new(no_reports());
    let relay = identity();
    let mut p = h.browser_peer("pubU");
    let mut v = h.browser_peer("viwU");
    let publisher = BrowserSpec {
        mid_extension_id: Some(4),
        receive_mids: Vec::new(),
        ..spec(&relay, &p, None)
    };
    let viewer = BrowserSpec {
        mid_extension_id: Some(9),
        receive_mids: vec![(48_000, "a0".into()), (90_000, "video1".into())],
        ..spec(&relay, &v, None)
    };
    let legs = h.session_with([
        LegOpts::browser("rlyP", PWD, publisher).clock_rates(&[(111, 48_000), (102, 90_000)]),
        LegOpts::browser("rlyV", PWD, viewer).clock_rates(&[(109, 48_000), (127, 90_000)]),
    ]);
    let (lp, lv) = (legs[0], legs[1]);
    h.connect(lp, lv);
    h.send(p.peer, lp, &ice_check("rlyP", "pubU", PWD, 1, true));
    h.send(v.peer, lv, &ice_check("rlyV", "viwU", PWD, 2, true));
    let _ = (h.take(p.peer), h.take(v.peer));
    let mut ps = p.handshake(&mut h, lp, 20).expect("publisher keyed");

    // Before the viewer is keyed: held, then replayed with the viewer's numbering.
    let early = rtp_ext(
        102,
        0xB1D,
        1,
        960,
        &[(4, b"1"), (3, &[0, 7])],
        b"early video",
    );
    h.send(p.peer, lp, &ps.protect_rtp(&early));
    let mut vs = v.handshake(&mut h, lv, 20).expect("viewer keyed");
    h.advance(Duration::from_millis(10));
    // Then one of each kind, the video also carrying an element under the viewer's MID id
    // (the publisher's abs-send-time, say), which must not reach the viewer as a MID.
    let audio = rtp_ext(111, 0xA0D, 2, 2 * 960, &[(4, b"0")], b"opus frame");
    let video = rtp_ext(
        102,
        0xB1D,
        3,
        3 * 960,
        &[(9, &[1, 2, 3]), (4, b"1"), (3, &[0, 8])],
        b"h264 nal",
    );
    h.send(p.peer, lp, &ps.protect_rtp(&audio));
    h.send(p.peer, lp, &ps.protect_rtp(&video));
    let got: Vec<Vec<u8>> = h
        .take(v.peer)
        .into_iter()
        .filter(|d| d.is_rtp())
        .map(|d| vs.unprotect_rtp(&d.data).expect("viewer key opens it"))
        .collect();
    assert_eq!(got.len(), 3, "early video, audio, video");
    let by_seq = |seq: u16| {
        got.iter()
            .find(|g| fields(g).1 == seq)
            .unwrap_or_else(|| panic!("seq {seq} reached the viewer"))
    };
    let (e, a, vd) = (by_seq(1), by_seq(2), by_seq(3));
    assert_eq!(e[1] & 0x7f, 127, "H.264 under the viewer's payload type");
    assert_eq!(
        extensions(e),
        vec![(3, vec![0, 7]), (9, b"video1".to_vec())]
    );
    assert_eq!(fields(e).3, b"early video");
    assert_eq!(a[1] & 0x7f, 109, "Opus under the viewer's payload type");
    assert_eq!(extensions(a), vec![(9, b"a0".to_vec())]);
    assert_eq!(fields(a).3, b"opus frame");
    assert_eq!(vd[1] & 0x7f, 127);
    assert_eq!(
        extensions(vd),
        vec![(3, vec![0, 8]), (9, b"video1".to_vec())]
    );
    assert_eq!(fields(vd).3, b"h264 nal");
}

/// A browser as a conference participant: its audio goes to the mixer (the processor
/// transport), its mix comes back under its own Opus payload type and audio MID; the other
/// participants' videos reach its video m-lines one source per MID in the order they were
/// routed to it, a source beyond its slots is not forwarded, and a freed slot goes to the
/// one waiting (a new SSRC, not the leaver's continued); a PLI from the browser reaches the
/// video's sender.
#[test]
fn a_conference_browser_gets_the_mix_and_one_video_per_mid_slot() {
    let mut h = Harness::new(no_reports());
    let relay = identity();
    let mut b = h.browser_peer("cnfU");
    let spec = BrowserSpec {
        mid_extension_id: Some(4),
        // One sendrecv video m-line ("1") and one recvonly ("2"): two slots.
        receive_mids: vec![
            (48_000, "0".into()),
            (90_000, "1".into()),
            (90_000, "2".into()),
        ],
        ..spec(&relay, &b, None)
    };
    let session = h.session();
    let (mixer, queue) = h.add_processor(session, 64);
    let lb = h.add_leg(
        session,
        LegOpts::browser(UFRAG, PWD, spec).clock_rates(&[(109, 48_000), (127, 90_000)]),
    );
    h.connect_kind(lb, mixer, StreamKind::Audio);
    h.add_stream(mixer, 0x4D01, 48_000).unwrap();
    h.subscribe_stream(mixer, 0x4D01, lb).unwrap();
    // Three edge participants (PT 96 for H.264), routed to the browser in join order.
    let mut edges = Vec::new();
    for i in 0..3u32 {
        let (keys, client) = srtp_pair(SrtpProfile::Aes128CmHmacSha1_80, 10 + i as u8);
        let leg = h.add_leg(
            session,
            LegOpts::latching()
                .srtp(keys)
                .clock_rates(&[(111, 48_000), (96, 90_000)]),
        );
        h.connect_kind(leg, lb, StreamKind::Video);
        h.connect_kind(lb, leg, StreamKind::Video);
        let peer = h.peer();
        edges.push((leg, peer, client));
    }
    h.send(b.peer, lb, &ice_check(UFRAG, "cnfU", PWD, 1, true));
    let _ = h.take(b.peer);
    let mut bs = b.handshake(&mut h, lb, 20).expect("browser keyed");

    // The last joiner sends first: it still gets no slot.
    for round in 0..3u16 {
        for (i, (leg, peer, client)) in edges.iter_mut().enumerate().rev() {
            let ssrc = 0xE0 + i as u32;
            let pkt = rtp_pt(96, ssrc, round, u32::from(round) * 3000, b"nal");
            h.send(*peer, *leg, &client.protect_rtp(&pkt));
        }
        h.advance(Duration::from_millis(33));
    }
    let got = |h: &mut Harness, bs: &mut SrtpClient| -> Vec<Vec<u8>> {
        h.take(b.peer)
            .into_iter()
            .filter(|d| d.is_rtp())
            .filter_map(|d| bs.unprotect_rtp(&d.data))
            .collect()
    };
    let video = got(&mut h, &mut bs);
    let mid_of = |p: &[u8]| {
        extensions(p)
            .into_iter()
            .find(|(id, _)| *id == 4)
            .map(|(_, v)| String::from_utf8(v).unwrap())
    };
    let by_ssrc = |pkts: &[Vec<u8>], ssrc: u32| -> Vec<(u8, Option<String>)> {
        pkts.iter()
            .filter(|p| fields(p).0 == ssrc)
            .map(|p| (p[1] & 0x7f, mid_of(p)))
            .collect()
    };
    assert_eq!(by_ssrc(&video, 0xE0), vec![(127, Some("1".into())); 3]);
    assert_eq!(by_ssrc(&video, 0xE1), vec![(127, Some("2".into())); 3]);
    assert!(
        by_ssrc(&video, 0xE2).is_empty(),
        "no slot left: not forwarded"
    );

    // The browser's audio reaches the mixer tagged with its transport; its mix comes back
    // under its own Opus payload type and audio MID.
    h.send(
        b.peer,
        lb,
        &bs.protect_rtp(&rtp_ext(109, 0xBA, 1, 960, &[(4, b"0")], b"me")),
    );
    let q = queue.take();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].0, lb.id);
    h.processed(mixer, &rtp_pt(111, 0x4D01, 1, 960, b"mix"))
        .unwrap();
    let mix = got(&mut h, &mut bs);
    assert_eq!(mix.len(), 1);
    assert_eq!(fields(&mix[0]).0, 0x4D01);
    assert_eq!((mix[0][1] & 0x7f, mid_of(&mix[0])), (109, Some("0".into())));

    // A PLI from the browser for the second slot's stream reaches its sender.
    h.send(b.peer, lb, &bs.protect_rtcp(&pli(0xBB, 0xE1)));
    let (_, p1, c1) = &mut edges[1];
    let plis = h
        .take(*p1)
        .into_iter()
        .filter(|d| d.is_rtcp())
        .filter_map(|d| c1.unprotect_rtcp(&d.data))
        .filter(|p| p.len() >= 12 && p[1] == 206 && p[8..12] == 0xE1u32.to_be_bytes())
        .count();
    assert_eq!(plis, 1, "the PLI reached the second participant");

    // The first participant leaves: its slot goes to the third, under the third's SSRC.
    let (l0, _, _) = edges.remove(0);
    h.remove_leg(l0);
    h.drop_orphans(lb, StreamKind::Video);
    for (i, (leg, peer, client)) in edges.iter_mut().enumerate() {
        let ssrc = 0xE1 + i as u32;
        let pkt = rtp_pt(96, ssrc, 10, 30_000, b"nal");
        h.send(*peer, *leg, &client.protect_rtp(&pkt));
    }
    let video = got(&mut h, &mut bs);
    assert_eq!(by_ssrc(&video, 0xE1), vec![(127, Some("2".into()))]);
    assert_eq!(by_ssrc(&video, 0xE2), vec![(127, Some("1".into()))]);
    assert!(by_ssrc(&video, 0xE0).is_empty());
}

/// Warming a shared-port batch (`Core::warm_lookup` and the `Core::warm` stages the worker
/// prefetches with) follows the packet's real path: a keyed browser's media is looked up and
/// every stage hints something while it has a subscriber with SRTP; the sending stages hint
/// nothing once it has none; a stranger's RTP of an unknown SSRC, STUN and DTLS are not
/// warmed.
#[test]
fn warming_follows_a_browser_packets_path() {
    let mut h = Harness::new(no_reports());
    let (b, lb, lc, _client, mut srtp) = keyed_browser(&mut h, None);
    let check = ice_check(UFRAG, "brwU", PWD, 2, true);
    let media = |srtp: &mut SrtpClient, seq: u16| srtp.protect_rtp(&rtp(0xB, seq, 960, b"voice"));
    let first = media(&mut srtp, 1);
    h.send(b.peer, lb, &first);

    let next = media(&mut srtp, 2);
    let stages = h
        .warm_hints(b.peer, lb, &next)
        .expect("a keyed browser's RTP is warmed");
    assert_eq!(stages.len(), 6, "the lookup and five stages");
    assert_eq!(stages[0], 1, "the lookup hints the transport");
    for (i, n) in stages.iter().enumerate() {
        assert!(
            *n > 0,
            "stage {i} hints the next link of the path: {stages:?}"
        );
    }

    // Not warmed: what is not RTP, and RTP from an unknown address with an unknown SSRC.
    // From an unknown address with the browser's SSRC it is: the core looks the transport
    // up by SSRC to check the packet as a possible move (and drops it if SRTP fails).
    assert_eq!(h.warm_hints(b.peer, lb, &check), None, "STUN");
    assert_eq!(
        h.warm_hints(b.peer, lb, &[22, 254, 253, 0, 0]),
        None,
        "DTLS"
    );
    let stranger = h.peer();
    let unknown = srtp.protect_rtp(&rtp(0x5EED, 3, 960, b"noise"));
    assert_eq!(
        h.warm_hints(stranger, lb, &unknown),
        None,
        "a stranger's RTP"
    );
    assert!(
        h.warm_hints(stranger, lb, &next).is_some(),
        "a possible move"
    );

    // Without a subscriber the sending side has nothing to hint.
    h.disconnect(lb, lc);
    let stages = h.warm_hints(b.peer, lb, &next).expect("still looked up");
    assert!(
        stages[1] > 0 && stages[2] > 0,
        "the receiving side still: {stages:?}"
    );
    assert_eq!(
        &stages[3..],
        &[0, 0, 0],
        "no destination to warm: {stages:?}"
    );
}
