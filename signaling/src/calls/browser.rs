//! A browser endpoint's side of a call: its SDP offer, checked when it arrives (`invite`,
//! `accept`), turned into the relay's [`BrowserOffer`] for `AddTransport{Browser}`, and
//! answered with [`crate::sdp`] once the relay granted the transport.
//!
//! Drive it in two steps:
//! 1. [`CheckedOffer::check`] the offer text: a malformed offer, or one with nothing the
//!    supernode serves (no Opus, no H.264 in the delivered profile), is refused with
//!    `invalid_sdp` and a message naming the line or the reasons. The check answers the
//!    offer once with placeholder transport parameters, which yields what the relay needs
//!    ([`CheckedOffer::relay_offer`]: the browser's ICE ufrag, DTLS fingerprint,
//!    transport-cc extension id, clock rates, and what the relay sends where).
//! 2. [`CheckedOffer::answer`] with the relay's [`TransportGrant`]: the same answer, now with
//!    the relay transport's ICE-lite credentials, certificate fingerprint and address (and
//!    `relay_public_ip`), which the endpoint receives in its `media` message.
//!
//! The answer is a pure function of the offer, the policy, the transport and the transport
//! id (which seeds the `o=` session id and the SSRCs the supernode sends), so both steps
//! agree on every m-line.

use std::net::{IpAddr, SocketAddr};

use supernode_proto::relay_ops::{
    BrowserOffer, BrowserSend, BrowserSimulcast, DtlsFingerprint, MediaKindOfLine, TransportGrant,
};

use super::core::CallError;
use crate::ids::TransportId;
use crate::protocol::ErrorCode;
use crate::sdp::{
    AcceptedKind, Answer, AnswerParams, Codec, MediaPolicy, RelayTransport, SendStream, Ssrc,
    answer_offer,
};

/// A browser's offer that the supernode can answer.
#[derive(Debug, Clone)]
pub struct CheckedOffer {
    sdp: String,
    trial: Answer,
}

/// Most video m-lines of one offer that get a stream to receive (a conference browser's
/// slots; a call's offer has one).
pub const MAX_VIDEO_RECEIVE: usize = 32;

/// What the answer announces and the relay must send under (derived from the transport id):
/// the audio stream and [`MAX_VIDEO_RECEIVE`] video streams (the n-th receiving video
/// m-line gets the n-th; a call's one video m-line the first).
fn send_streams(transport: &TransportId) -> (SendStream, Vec<SendStream>) {
    // FNV-1a over the id text: random ids give random-looking, reproducible SSRCs.
    let mut h: u32 = 0x811c_9dc5;
    for b in transport.as_str().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let base = h | 1;
    let stream = |ssrc: u32, rtx: Option<u32>, track: &str| SendStream {
        ssrc: Ssrc(ssrc),
        rtx_ssrc: rtx.map(Ssrc),
        cname: "supernode".into(),
        stream_id: "peer".into(),
        track_id: track.into(),
    };
    let video = (0..MAX_VIDEO_RECEIVE as u32)
        .map(|n| {
            let mut s = stream(
                base.wrapping_add(2 + 4 * n),
                Some(base.wrapping_add(4 + 4 * n)),
                "peer-video",
            );
            if n > 0 {
                // Each further video is its own stream and track (one picture per slot).
                s.stream_id = format!("peer-{n}");
                s.track_id = format!("peer-video-{n}");
            }
            s
        })
        .collect();
    (stream(base, None, "peer-audio"), video)
}

fn session_id(transport: &TransportId) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in transport.as_str().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h >> 1
}

fn params(
    transport_id: &TransportId,
    transport: RelayTransport,
    policy: &MediaPolicy,
) -> AnswerParams {
    let (audio, video) = send_streams(transport_id);
    AnswerParams {
        session_id: session_id(transport_id),
        transport,
        policy: *policy,
        audio_send: vec![audio],
        video_send: video,
    }
}

fn placeholder() -> RelayTransport {
    RelayTransport {
        ice_ufrag: "check".into(),
        ice_pwd: "checkcheckcheckcheckcheck".into(),
        fingerprint_sha256: [0; 32],
        host: SocketAddr::from(([0, 0, 0, 0], 9)),
        public_ip: None,
    }
}

fn invalid(message: String) -> CallError {
    CallError {
        code: ErrorCode::InvalidSdp,
        message,
    }
}

/// `AB:CD:…` (upper-case hex, RFC 8122) of a digest.
fn hex_colon(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// The 32 bytes of a `sha-256` fingerprint written `AB:CD:…`.
fn sha256_of(f: &DtlsFingerprint) -> Option<[u8; 32]> {
    if !f.algorithm.eq_ignore_ascii_case("sha-256") {
        return None;
    }
    let mut out = [0u8; 32];
    let mut n = 0;
    for part in f.value.split(':') {
        if n == 32 || part.len() != 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 32).then_some(out)
}

impl CheckedOffer {
    /// Checks a browser's offer against what the supernode serves.
    pub fn check(sdp: &str, policy: &MediaPolicy) -> Result<Self, CallError> {
        let probe = TransportId::from_bytes([0; 16]);
        let trial = answer_offer(sdp.as_bytes(), &params(&probe, placeholder(), policy))
            .map_err(|e| invalid(format!("SDP offer refused: {e}")))?;
        let Some(remote) = &trial.remote else {
            let reasons: Vec<String> = trial
                .rejected()
                .map(|r| format!("{} m-line {}: {}", r.kind, r.index, r.reason))
                .collect();
            return Err(invalid(format!(
                "the offer has nothing the supernode serves (Opus, H.264 packetization-mode 1 \
                 in its profile): {}",
                reasons.join("; ")
            )));
        };
        if !remote
            .fingerprints
            .iter()
            .any(|(alg, d)| alg == "sha-256" && d.len() == 32)
        {
            return Err(invalid(
                "the offer has no a=fingerprint:sha-256 (the only hash the relay checks)".into(),
            ));
        }
        Ok(Self {
            sdp: sdp.to_owned(),
            trial,
        })
    }

    /// Whether the offer sends or receives video the supernode accepted.
    pub fn has_video(&self) -> bool {
        self.trial.accepted().any(|a| a.kind == AcceptedKind::Video)
    }

    /// How many accepted m-lines of each kind receive from the supernode: (audio, video).
    pub fn receiving(&self) -> (usize, usize) {
        let n = |k| {
            self.trial
                .accepted()
                .filter(|a| a.kind == k && a.send.is_some())
                .count()
        };
        (n(AcceptedKind::Audio), n(AcceptedKind::Video))
    }

    /// Checks an offer for a conference (the offer shape of `docs/protocol.md`,
    /// "Conferences"): what [`Self::check`] asks, and exactly one accepted audio m-line,
    /// which receives (the mix comes back there). Its receiving video m-lines are the slots
    /// the others' videos go to (at most [`MAX_VIDEO_RECEIVE`]; none: audio only).
    pub fn check_conference(sdp: &str, policy: &MediaPolicy) -> Result<Self, CallError> {
        let c = Self::check(sdp, policy)?;
        let (receiving, video) = c.receiving();
        let audio = c
            .trial
            .accepted()
            .filter(|a| a.kind == AcceptedKind::Audio)
            .count();
        if audio != 1 || receiving != 1 {
            return Err(invalid(format!(
                "a conference offer needs exactly one audio m-line (Opus), which receives \
                 the mix; this one has {audio} audio m-lines, {receiving} receiving"
            )));
        }
        if video > MAX_VIDEO_RECEIVE {
            return Err(invalid(format!(
                "a conference offer receives at most {MAX_VIDEO_RECEIVE} videos; this one \
                 offers {video} receiving video m-lines"
            )));
        }
        if !c
            .trial
            .accepted()
            .any(|a| a.kind == AcceptedKind::Audio && a.mid.is_some())
        {
            return Err(invalid(
                "the conference offer's audio m-line has no a=mid".into(),
            ));
        }
        Ok(c)
    }

    /// What `AddTransport{Browser}` for transport `transport` carries.
    pub fn relay_offer(&self, transport: &TransportId, policy: &MediaPolicy) -> BrowserOffer {
        // The trial used a fixed probe id; redo it under the real id for the SSRCs.
        let answer = answer_offer(
            self.sdp.as_bytes(),
            &params(transport, placeholder(), policy),
        )
        .unwrap_or_else(|_| self.trial.clone());
        let remote = answer
            .remote
            .as_ref()
            .or(self.trial.remote.as_ref())
            .cloned();
        let (ice_ufrag, fingerprint) = match remote {
            Some(r) => {
                let digest = r
                    .fingerprints
                    .iter()
                    .find(|(alg, _)| alg == "sha-256")
                    .map(|(_, d)| hex_colon(d))
                    .unwrap_or_default();
                (r.ice_ufrag, digest)
            }
            None => (String::new(), String::new()),
        };
        let mut clock_rates = Vec::new();
        let mut send = Vec::new();
        let mut twcc = None;
        let mut mid_ext = None;
        let mut simulcast = None;
        for a in answer.accepted() {
            if let (Some(rid), false, None) =
                (a.extensions.rid, a.remote_rids.is_empty(), &simulcast)
            {
                simulcast = Some(BrowserSimulcast {
                    rid_extension_id: rid,
                    repaired_rid_extension_id: a.extensions.repaired_rid,
                    rids: a.remote_rids.clone(),
                });
            }
            let rate = match a.codec {
                Codec::Opus => 48_000,
                Codec::H264(_) => 90_000,
            };
            clock_rates.push((a.pt.0, rate));
            if let Some(rtx) = a.rtx_pt {
                clock_rates.push((rtx.0, 90_000));
            }
            twcc = twcc.or(a.extensions.transport_cc);
            mid_ext = mid_ext.or(a.extensions.mid);
            if let Some(s) = &a.send {
                send.push(BrowserSend {
                    kind: match a.kind {
                        AcceptedKind::Audio => MediaKindOfLine::Audio,
                        AcceptedKind::Video => MediaKindOfLine::Video,
                    },
                    mid: a.mid.clone(),
                    pt: a.pt.0,
                    ssrc: s.ssrc.0,
                    rtx: a.rtx_pt.zip(s.rtx_ssrc).map(|(pt, ssrc)| (pt.0, ssrc.0)),
                });
            }
        }
        BrowserOffer {
            ice_ufrag,
            fingerprint: DtlsFingerprint {
                algorithm: "sha-256".into(),
                value: fingerprint,
            },
            twcc_extension_id: twcc,
            mid_extension_id: mid_ext,
            clock_rates,
            send,
            simulcast,
        }
    }

    /// The SDP answer for the relay's grant of transport `grant.transport`.
    pub fn answer(
        &self,
        grant: &TransportGrant,
        public_ip: Option<IpAddr>,
        policy: &MediaPolicy,
    ) -> Result<String, String> {
        let Some(b) = &grant.browser else {
            return Err("the relay granted no browser transport parameters".into());
        };
        let fingerprint_sha256 = sha256_of(&b.fingerprint).ok_or_else(|| {
            format!(
                "the relay's fingerprint is not a sha-256 digest: {}",
                b.fingerprint.value
            )
        })?;
        let host: SocketAddr = grant
            .address
            .parse()
            .map_err(|_| format!("the relay's address is not IP:PORT: {}", grant.address))?;
        let transport = RelayTransport {
            ice_ufrag: b.ice_ufrag.clone(),
            ice_pwd: b.ice_pwd.clone(),
            fingerprint_sha256,
            host,
            public_ip,
        };
        answer_offer(
            self.sdp.as_bytes(),
            &params(&grant.transport, transport, policy),
        )
        .map(|a| unsignal_ssrcs(&a.sdp))
        .map_err(|e| format!("answering the offer failed: {e}"))
    }
}

/// The answer without its `a=ssrc`/`a=ssrc-group` lines (the `a=msid` stays): the relay
/// forwards each source stream under its own SSRC, so the browser must take the first SSRC
/// that arrives on each m-line (by MID or payload type) as that m-line's track. An answer
/// announcing SSRCs the packets do not carry leaves the browser decoding into a stream no
/// track is bound to. (Once the relay rewrites toward a browser to the SSRCs of
/// [`BrowserOffer::send`], announce them again.)
fn unsignal_ssrcs(sdp: &str) -> String {
    sdp.split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=ssrc:") && !l.starts_with("a=ssrc-group:"))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use supernode_proto::relay_ops::BrowserGrant;

    /// [`CHROME_OFFER`] shaped for a conference: its sendrecv audio and video m-lines and
    /// `k` recvonly video m-lines (MIDs 2, 3, ...), all in the BUNDLE.
    pub(crate) fn conference_offer(k: usize) -> String {
        let mids: Vec<String> = (0..k + 2).map(|i| i.to_string()).collect();
        let mut sdp = CHROME_OFFER.replace(
            "a=group:BUNDLE 0 1\r\n",
            &format!("a=group:BUNDLE {}\r\n", mids.join(" ")),
        );
        let video = &CHROME_OFFER[CHROME_OFFER.find("m=video").expect("a video m-line")..];
        for mid in 2..k + 2 {
            let line: String = video
                .split_inclusive("\r\n")
                .filter(|l| !l.starts_with("a=ssrc") && !l.starts_with("a=msid"))
                .map(|l| match l {
                    "a=mid:1\r\n" => format!("a=mid:{mid}\r\n"),
                    "a=sendrecv\r\n" => "a=recvonly\r\n".to_owned(),
                    other => other.to_owned(),
                })
                .collect();
            sdp.push_str(&line);
        }
        sdp
    }

    /// A conference offer: one audio m-line receiving the mix, video m-lines as slots (an
    /// answer with one send stream and one MID each); offers without the audio m-line, or
    /// with two, are refused.
    #[test]
    fn conference_offers_have_one_audio_line_and_video_slots() {
        let policy = MediaPolicy::default();
        let c = CheckedOffer::check_conference(&conference_offer(3), &policy).unwrap();
        assert_eq!(c.receiving(), (1, 4));
        let tr = TransportId::from_bytes([7; 16]);
        let op = c.relay_offer(&tr, &policy);
        let mids: Vec<(MediaKindOfLine, Option<String>)> =
            op.send.iter().map(|s| (s.kind, s.mid.clone())).collect();
        assert_eq!(
            mids,
            vec![
                (MediaKindOfLine::Audio, Some("0".into())),
                (MediaKindOfLine::Video, Some("1".into())),
                (MediaKindOfLine::Video, Some("2".into())),
                (MediaKindOfLine::Video, Some("3".into())),
                (MediaKindOfLine::Video, Some("4".into())),
            ]
        );
        assert_eq!(op.mid_extension_id, Some(4));
        let sdp = c.answer(&grant(&tr), None, &policy).unwrap();
        assert!(sdp.contains("a=group:BUNDLE 0 1 2 3 4\r\n"), "{sdp}");
        assert_eq!(sdp.matches("a=sendonly\r\n").count(), 3, "{sdp}");
        assert!(sdp.contains("a=msid:peer-3 peer-video-3\r\n"), "{sdp}");
        // No audio m-line; two of them.
        let video_only = conference_offer(1).replace("m=audio 9", "m=audio 0");
        let e = CheckedOffer::check_conference(&video_only, &policy).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSdp, "{}", e.message);
        let audio = &CHROME_OFFER
            [CHROME_OFFER.find("m=audio").unwrap()..CHROME_OFFER.find("m=video").unwrap()];
        let audio: String = audio
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with("a=ssrc") && !l.starts_with("a=msid"))
            .collect();
        let two_audio = format!(
            "{}{}",
            conference_offer(0),
            audio.replace("a=mid:0", "a=mid:9")
        )
        .replace("BUNDLE 0 1", "BUNDLE 0 1 9");
        let e = CheckedOffer::check_conference(&two_audio, &policy).unwrap_err();
        assert!(e.message.contains("exactly one audio"), "{}", e.message);
        // The plain 1:1 offer is a conference offer with one slot.
        let c = CheckedOffer::check_conference(CHROME_OFFER, &policy).unwrap();
        assert_eq!(c.receiving(), (1, 1));
    }

    /// Chrome 156's offer (Debian's headless chromium, fake devices), trimmed to what
    /// matters: audio and video in one BUNDLE, H.264 and VP8, RTX, transport-cc.
    pub(crate) const CHROME_OFFER: &str = "v=0\r\n\
        o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
        s=-\r\n\
        t=0 0\r\n\
        a=group:BUNDLE 0 1\r\n\
        a=msid-semantic: WMS\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=rtcp:9 IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:Kx3b\r\n\
        a=ice-pwd:4Ttz3A0yPXfJtGQpBPrJ2Bmd\r\n\
        a=ice-options:trickle\r\n\
        a=fingerprint:sha-256 1C:08:46:CC:FA:2E:94:64:D1:42:99:A3:CF:55:63:B5:50:37:7B:8A:E6:FB:9E:3B:18:7D:2D:D1:39:4A:2F:5E\r\n\
        a=setup:actpass\r\n\
        a=mid:0\r\n\
        a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
        a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=sendrecv\r\n\
        a=msid:s1 a1\r\n\
        a=rtcp-mux\r\n\
        a=rtpmap:111 opus/48000/2\r\n\
        a=rtcp-fb:111 transport-cc\r\n\
        a=fmtp:111 minptime=10;useinbandfec=1\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=ssrc:1001 cname:abc\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 108 109\r\n\
        c=IN IP4 0.0.0.0\r\n\
        a=ice-ufrag:Kx3b\r\n\
        a=ice-pwd:4Ttz3A0yPXfJtGQpBPrJ2Bmd\r\n\
        a=fingerprint:sha-256 1C:08:46:CC:FA:2E:94:64:D1:42:99:A3:CF:55:63:B5:50:37:7B:8A:E6:FB:9E:3B:18:7D:2D:D1:39:4A:2F:5E\r\n\
        a=setup:actpass\r\n\
        a=mid:1\r\n\
        a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
        a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
        a=sendrecv\r\n\
        a=msid:s1 v1\r\n\
        a=rtcp-mux\r\n\
        a=rtcp-rsize\r\n\
        a=rtpmap:96 VP8/90000\r\n\
        a=rtpmap:97 rtx/90000\r\n\
        a=fmtp:97 apt=96\r\n\
        a=rtpmap:108 H264/90000\r\n\
        a=rtcp-fb:108 nack\r\n\
        a=rtcp-fb:108 nack pli\r\n\
        a=rtcp-fb:108 transport-cc\r\n\
        a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
        a=rtpmap:109 rtx/90000\r\n\
        a=fmtp:109 apt=108\r\n\
        a=ssrc-group:FID 2001 2002\r\n\
        a=ssrc:2001 cname:abc\r\n\
        a=ssrc:2002 cname:abc\r\n";

    fn grant(transport: &TransportId) -> TransportGrant {
        TransportGrant {
            transport: transport.clone(),
            address: "127.0.0.1:40010".into(),
            srtp: None,
            browser: Some(BrowserGrant {
                ice_ufrag: "rly1".into(),
                ice_pwd: "0123456789abcdefABCDEF".into(),
                fingerprint: DtlsFingerprint {
                    algorithm: "sha-256".into(),
                    value: hex_colon(&[0xab; 32]),
                },
                candidates: vec![],
            }),
        }
    }

    #[test]
    fn a_chrome_offer_becomes_a_relay_offer_and_an_answer_that_agree() {
        let policy = MediaPolicy::default();
        let checked = CheckedOffer::check(CHROME_OFFER, &policy).unwrap();
        assert!(checked.has_video());
        let tr = TransportId::from_bytes([9; 16]);
        let op = checked.relay_offer(&tr, &policy);
        assert_eq!(op.ice_ufrag, "Kx3b");
        assert!(op.fingerprint.value.starts_with("1C:08:46"), "{op:?}");
        assert_eq!(op.twcc_extension_id, Some(3));
        assert_eq!(
            op.clock_rates,
            vec![(111, 48_000), (108, 90_000), (109, 90_000)]
        );
        assert_eq!(op.send.len(), 2);
        let sdp = checked.answer(&grant(&tr), None, &policy).unwrap();
        assert!(sdp.contains("a=ice-ufrag:rly1\r\n"), "{sdp}");
        assert!(sdp.contains("a=ice-lite\r\n"), "{sdp}");
        assert!(sdp.contains("127.0.0.1 40010 typ host"), "{sdp}");
        assert!(sdp.contains("a=fingerprint:sha-256 AB:AB:"), "{sdp}");
        // What the relay is told to send under is what the answer announces.
        for s in &op.send {
            assert!(sdp.contains(&format!("a=rtpmap:{} ", s.pt)), "{sdp}");
        }
        // The relay forwards under the sources' SSRCs: the answer announces none.
        assert!(!sdp.contains("a=ssrc"), "{sdp}");
        assert!(sdp.contains("a=msid:peer peer-video\r\n"), "{sdp}");
        assert_eq!(op.send[1].rtx.map(|r| r.0), Some(109));
        // The same transport gives the same answer; another one other SSRCs.
        assert_eq!(checked.answer(&grant(&tr), None, &policy).unwrap(), sdp);
        let other = TransportId::from_bytes([10; 16]);
        assert_ne!(checked.relay_offer(&other, &policy).send, op.send);
    }

    /// A conference participant's camera as three RID layers: with simulcast on, the relay
    /// is told the RID extension ids and the layers low to high, and the answer receives
    /// them; with it off, neither.
    #[test]
    fn a_simulcast_conference_offer_tells_the_relay_its_layers() {
        let video_at = |sdp: &str| sdp.find("m=video").expect("a video m-line");
        let base = conference_offer(1);
        // The sendrecv video m-line (the first) sends q;h;f by RID instead of SSRCs.
        let first = video_at(&base);
        let end = first + 1 + base[first + 1..].find("m=video").expect("a slot");
        let camera: String = base[first..end]
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with("a=ssrc"))
            .collect();
        let camera = camera.replace(
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
             a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n\
             a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n",
        ) + "a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n";
        let sdp = format!("{}{}{}", &base[..first], camera, &base[end..]);
        let tr = TransportId::from_bytes([5; 16]);
        let on = MediaPolicy {
            simulcast: true,
            ..MediaPolicy::default()
        };
        let c = CheckedOffer::check_conference(&sdp, &on).unwrap();
        let op = c.relay_offer(&tr, &on);
        assert_eq!(
            op.simulcast,
            Some(BrowserSimulcast {
                rid_extension_id: 10,
                repaired_rid_extension_id: Some(11),
                rids: vec!["q".into(), "h".into(), "f".into()],
            })
        );
        let answer = c.answer(&grant(&tr), None, &on).unwrap();
        assert!(answer.contains("a=simulcast:recv q;h;f\r\n"), "{answer}");
        let off = MediaPolicy::default();
        let c = CheckedOffer::check_conference(&sdp, &off).unwrap();
        assert_eq!(c.relay_offer(&tr, &off).simulcast, None);
        assert!(
            !c.answer(&grant(&tr), None, &off)
                .unwrap()
                .contains("simulcast")
        );
    }

    /// Call legs answer without the MID header extension (the relay writes none, and an
    /// edge client's packets carry none), keeping `a=mid` and BUNDLE: the browser demuxes by
    /// payload type. The policy's default (WHIP/WHEP) still negotiates it.
    #[test]
    fn call_answers_do_not_negotiate_the_mid_extension() {
        let calls = crate::calls::CallConfig::default().browser_media;
        assert!(!calls.mid_extension);
        let checked = CheckedOffer::check(CHROME_OFFER, &calls).unwrap();
        let tr = TransportId::from_bytes([9; 16]);
        let sdp = checked.answer(&grant(&tr), None, &calls).unwrap();
        assert!(!sdp.contains("sdes:mid"), "{sdp}");
        assert!(
            sdp.contains("a=mid:0\r\n") && sdp.contains("a=mid:1\r\n"),
            "{sdp}"
        );
        assert!(sdp.contains("a=group:BUNDLE 0 1\r\n"), "{sdp}");
        assert!(sdp.contains("transport-wide-cc"), "{sdp}");
        let default = MediaPolicy::default();
        let sdp = checked.answer(&grant(&tr), None, &default).unwrap();
        assert!(sdp.contains("urn:ietf:params:rtp-hdrext:sdes:mid"), "{sdp}");
    }

    #[test]
    fn bad_offers_are_refused_with_a_reason() {
        let policy = MediaPolicy::default();
        let e = CheckedOffer::check("v=0\r\nnonsense\r\n", &policy).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSdp);
        assert!(e.message.contains("line"), "{}", e.message);
        let no_codec = CHROME_OFFER
            .replace("opus/48000/2", "G722/8000")
            .replace("H264/90000", "VP9/90000");
        let e = CheckedOffer::check(&no_codec, &policy).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidSdp);
        assert!(
            e.message.contains("nothing the supernode serves"),
            "{}",
            e.message
        );
        // Audio only when H.264 is missing: still a call.
        let audio_only = CHROME_OFFER.replace("H264/90000", "VP9/90000");
        let c = CheckedOffer::check(&audio_only, &policy).unwrap();
        assert!(!c.has_video());
    }

    #[test]
    fn a_grant_without_browser_parameters_is_not_answered() {
        let policy = MediaPolicy::default();
        let checked = CheckedOffer::check(CHROME_OFFER, &policy).unwrap();
        let tr = TransportId::from_bytes([9; 16]);
        let mut g = grant(&tr);
        g.browser = None;
        assert!(checked.answer(&g, None, &policy).is_err());
        let mut g = grant(&tr);
        if let Some(b) = &mut g.browser {
            b.fingerprint.value = "AB:CD".into();
        }
        assert!(checked.answer(&g, None, &policy).is_err());
    }
}
