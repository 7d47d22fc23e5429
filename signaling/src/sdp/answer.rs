//! The answerer: a parsed offer and the relay transport's parameters in, the answer SDP and
//! what it negotiated out.
//!
//! The supernode is ICE-lite, DTLS server for `a=setup:actpass` offers, BUNDLEs every
//! accepted m-line onto one transport with rtcp-mux, and does not trickle: the answer
//! carries its candidates and `a=end-of-candidates`. Audio is Opus 48000/2 with in-band FEC;
//! video is H.264 packetization-mode 1 in the one profile the supernode delivers (RFC 6184
//! profile-level-id matching, see [`H264Delivery`]). An m-line it cannot serve is rejected
//! with port 0 and a [`RejectReason`]; only a malformed offer is an [`SdpError`].

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

use super::error::SdpError;
use super::h264_profile::{H264Delivery, ProfileLevelId};
use super::model::{
    Direction, ExtMap, MediaKind, MediaSection, Pt, SessionDescription, Setup, Ssrc, fmtp_param,
};

/// RFC 8843 mid header extension.
pub const EXT_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// Transport-wide sequence numbers for transport-cc feedback.
pub const EXT_TRANSPORT_CC: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// RFC 6464 audio level.
pub const EXT_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// RFC 8852 RID.
pub const EXT_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// RFC 8852 repaired RID (RTX of a simulcast layer).
pub const EXT_REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// The relay transport a browser will talk to: its ICE-lite credentials, its DTLS
/// certificate's SHA-256 fingerprint and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayTransport {
    /// ICE username fragment (4–256 of `A-Z a-z 0-9 + /`).
    pub ice_ufrag: String,
    /// ICE password (22–256 of the same).
    pub ice_pwd: String,
    /// SHA-256 of the DTLS certificate (DER).
    pub fingerprint_sha256: [u8; 32],
    /// The address the relay's socket is bound to (`relay_ip`:port): a host candidate.
    pub host: SocketAddr,
    /// `relay_public_ip`: the address a NAT'd deployment is reached at. Announced first (a
    /// higher priority), at the host candidate's port.
    pub public_ip: Option<IpAddr>,
}

impl RelayTransport {
    /// The candidate addresses in the answer, most preferred first.
    pub fn candidates(&self) -> Vec<SocketAddr> {
        let mut out = Vec::with_capacity(2);
        if let Some(ip) = self.public_ip {
            out.push(SocketAddr::new(ip, self.host.port()));
        }
        if !out.contains(&self.host) {
            out.push(self.host);
        }
        out
    }
}

/// A stream the supernode will send toward the browser in one m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendStream {
    /// Media SSRC.
    pub ssrc: Ssrc,
    /// RTX SSRC (announced only when RTX is negotiated).
    pub rtx_ssrc: Option<Ssrc>,
    /// RTCP CNAME (visible ASCII).
    pub cname: String,
    /// `a=msid` stream id (visible ASCII).
    pub stream_id: String,
    /// `a=msid` track id (visible ASCII).
    pub track_id: String,
}

/// What the supernode serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPolicy {
    /// The H.264 stream delivered to browsers; `None` rejects every video m-line.
    pub h264: Option<H264Delivery>,
    /// Negotiate transport-cc feedback and its header extension when offered.
    pub transport_cc: bool,
    /// Negotiate `goog-remb` when offered.
    pub remb: bool,
    /// Accept simulcast (RIDs) from browsers that offer it; otherwise they send one layer.
    pub simulcast: bool,
    /// Negotiate the MID header extension when offered. Off for call legs: the relay
    /// forwards packets as their sources sent them and writes no MID, so a browser must tell
    /// the m-lines apart by payload type (unique per m-line in the BUNDLE); an edge client's
    /// packets carry no MID, and with the extension negotiated Chrome drops them.
    pub mid_extension: bool,
}

impl Default for MediaPolicy {
    /// Constrained Baseline 3.1, transport-cc on, no REMB, no simulcast, MID extension on.
    fn default() -> Self {
        Self {
            h264: Some(H264Delivery::CONSTRAINED_BASELINE_3_1),
            transport_cc: true,
            remb: false,
            simulcast: false,
            mid_extension: true,
        }
    }
}

/// Everything the answer needs besides the offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerParams {
    /// The `o=` line's session id (drawn by the caller: randomness is injected).
    pub session_id: u64,
    /// The relay transport.
    pub transport: RelayTransport,
    /// What is served.
    pub policy: MediaPolicy,
    /// Streams the supernode sends in audio m-lines: the n-th accepted audio m-line gets
    /// the n-th (and is `recvonly` when there is none, or the offer does not receive).
    pub audio_send: Vec<SendStream>,
    /// Likewise for video m-lines.
    pub video_send: Vec<SendStream>,
}

/// The supernode's DTLS role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// It waits for the browser's ClientHello (`a=setup:passive`; offers with `actpass`
    /// or `active`).
    Server,
    /// It sends the ClientHello (`a=setup:active`; offers with `passive`).
    Client,
}

/// The browser's side of the transport, as the answer accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTransport {
    /// The browser's ICE ufrag (the second half of the STUN USERNAME it sends).
    pub ice_ufrag: String,
    /// The browser's ICE password.
    pub ice_pwd: String,
    /// The browser's certificate fingerprints `(hash function, digest)`; the DTLS handshake
    /// must present a certificate matching one of them.
    pub fingerprints: Vec<(String, Vec<u8>)>,
    /// The supernode's DTLS role.
    pub dtls_role: DtlsRole,
}

/// The codec of an accepted m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus 48000/2.
    Opus,
    /// H.264 packetization-mode 1, with the answer's profile-level-id.
    H264(ProfileLevelId),
}

/// RTCP feedback negotiated for the codec's payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Feedback {
    /// Generic NACK.
    pub nack: bool,
    /// Picture loss indication.
    pub pli: bool,
    /// Full intra request.
    pub fir: bool,
    /// Transport-wide congestion control feedback.
    pub transport_cc: bool,
    /// REMB.
    pub remb: bool,
}

/// Header extension ids negotiated in an m-line (the browser's ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extensions {
    /// [`EXT_MID`].
    pub mid: Option<u8>,
    /// [`EXT_TRANSPORT_CC`].
    pub transport_cc: Option<u8>,
    /// [`EXT_AUDIO_LEVEL`].
    pub audio_level: Option<u8>,
    /// [`EXT_RID`] (simulcast accepted).
    pub rid: Option<u8>,
    /// [`EXT_REPAIRED_RID`] (simulcast accepted).
    pub repaired_rid: Option<u8>,
}

/// A stream the browser declared it sends (`a=ssrc`), with its RTX SSRC (`ssrc-group:FID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteStream {
    /// Media SSRC.
    pub ssrc: Ssrc,
    /// RTX SSRC, if grouped.
    pub rtx: Option<Ssrc>,
}

/// Media kind of an accepted m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcceptedKind {
    /// Audio (Opus).
    Audio,
    /// Video (H.264).
    Video,
}

/// An m-line the answer accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedMedia {
    /// Index of the m-line in the offer (and the answer).
    pub index: usize,
    /// Its mid.
    pub mid: Option<String>,
    /// Audio or video.
    pub kind: AcceptedKind,
    /// The answer's direction (the supernode's point of view).
    pub direction: Direction,
    /// The payload type (the browser's number) and codec.
    pub pt: Pt,
    /// The codec.
    pub codec: Codec,
    /// The RTX payload type, when offered for the codec.
    pub rtx_pt: Option<Pt>,
    /// Negotiated RTCP feedback.
    pub feedback: Feedback,
    /// Negotiated header extensions.
    pub extensions: Extensions,
    /// Streams the browser declared for this m-line (empty when it does not send, or sends
    /// simulcast by RID).
    pub remote_streams: Vec<RemoteStream>,
    /// Simulcast RIDs the browser will send (accepted only with [`MediaPolicy::simulcast`]).
    pub remote_rids: Vec<String>,
    /// What the supernode sends here, if anything.
    pub send: Option<SendStream>,
}

/// Why an m-line was rejected (port 0 in the answer). Display gives a line to log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectReason {
    /// The offer already disabled it (port 0, not bundle-only).
    DisabledInOffer,
    /// Not in the offer's BUNDLE group (or, without BUNDLE, not the first m-line served):
    /// the supernode gives a browser one transport.
    NotBundled,
    /// A data channel (`m=application`): not served.
    DataChannel,
    /// A media type other than audio and video.
    UnsupportedMedia(String),
    /// A protocol other than `UDP/TLS/RTP/SAVPF`.
    UnsupportedProtocol(String),
    /// No `a=rtcp-mux`.
    NoRtcpMux,
    /// An audio m-line without `opus/48000/2`.
    NoOpus,
    /// Video is not served ([`MediaPolicy::h264`] is `None`).
    VideoNotServed,
    /// A video m-line without H.264.
    NoH264,
    /// H.264 only in packetization-mode 0.
    NoH264PacketizationMode1,
    /// H.264 packetization-mode 1, but in no profile and level the supernode delivers.
    H264NotDeliverable {
        /// What is delivered.
        delivered: H264Delivery,
        /// The profile-level-ids the offer has for packetization-mode 1.
        offered: Vec<String>,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DisabledInOffer => f.write_str("disabled in the offer (port 0)"),
            Self::NotBundled => f.write_str("not in the BUNDLE group (one transport per browser)"),
            Self::DataChannel => f.write_str("data channels are not served"),
            Self::UnsupportedMedia(k) => write!(f, "media type {k:?} is not served"),
            Self::UnsupportedProtocol(p) => {
                write!(f, "protocol {p:?} is not served (UDP/TLS/RTP/SAVPF only)")
            }
            Self::NoRtcpMux => f.write_str("no a=rtcp-mux"),
            Self::NoOpus => f.write_str("no opus/48000/2 payload type"),
            Self::VideoNotServed => f.write_str("video is not served by this supernode"),
            Self::NoH264 => f.write_str("no H264/90000 payload type"),
            Self::NoH264PacketizationMode1 => {
                f.write_str("H.264 offered only without packetization-mode=1")
            }
            Self::H264NotDeliverable { delivered, offered } => write!(
                f,
                "H.264 is delivered as {} level {}, offered profile-level-ids: {}",
                delivered.profile,
                delivered.level,
                offered.join(", ")
            ),
        }
    }
}

/// An m-line the answer rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMedia {
    /// Index of the m-line.
    pub index: usize,
    /// Its mid.
    pub mid: Option<String>,
    /// Its media type token.
    pub kind: String,
    /// Why.
    pub reason: RejectReason,
}

/// The outcome of one m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaAnswer {
    /// Served.
    Accepted(AcceptedMedia),
    /// Port 0.
    Rejected(RejectedMedia),
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer SDP (CRLF line ends).
    pub sdp: String,
    /// The browser's transport; `None` when every m-line was rejected (nothing to set up).
    pub remote: Option<RemoteTransport>,
    /// One outcome per m-line of the offer, in order.
    pub media: Vec<MediaAnswer>,
}

impl Answer {
    /// The accepted m-lines.
    pub fn accepted(&self) -> impl Iterator<Item = &AcceptedMedia> {
        self.media.iter().filter_map(|m| match m {
            MediaAnswer::Accepted(a) => Some(a),
            MediaAnswer::Rejected(_) => None,
        })
    }

    /// The rejected m-lines.
    pub fn rejected(&self) -> impl Iterator<Item = &RejectedMedia> {
        self.media.iter().filter_map(|m| match m {
            MediaAnswer::Rejected(r) => Some(r),
            MediaAnswer::Accepted(_) => None,
        })
    }
}

/// Parses an offer and answers it.
pub fn answer_offer(offer: &[u8], params: &AnswerParams) -> Result<Answer, SdpError> {
    answer(&super::parse::parse_bytes(offer)?, params)
}

/// Answers a parsed offer.
pub fn answer(offer: &SessionDescription<'_>, params: &AnswerParams) -> Result<Answer, SdpError> {
    check_params(params)?;
    if offer.media.is_empty() {
        return Err(SdpError::NoMedia);
    }
    if offer.ice_lite {
        return Err(SdpError::OfferIsIceLite);
    }
    let bundle = offer.bundle();
    let mut outcomes = Vec::with_capacity(offer.media.len());
    let (mut audio_sends, mut video_sends) = (params.audio_send.iter(), params.video_send.iter());
    let mut any_accepted = false;
    for (index, m) in offer.media.iter().enumerate() {
        let outcome = match accept(offer, m, &params.policy, bundle.is_some(), any_accepted) {
            Ok(mut a) => {
                a.index = index;
                let offer_dir = m
                    .direction
                    .or(offer.direction)
                    .unwrap_or(Direction::SendRecv);
                let sends = match a.kind {
                    AcceptedKind::Audio => &mut audio_sends,
                    AcceptedKind::Video => &mut video_sends,
                };
                a.send = if offer_dir.receives() {
                    sends.next().cloned()
                } else {
                    None
                };
                if let (None, Some(s)) = (a.rtx_pt, &mut a.send) {
                    s.rtx_ssrc = None;
                }
                a.direction = Direction::from_flags(a.send.is_some(), offer_dir.sends());
                if !offer_dir.sends() {
                    a.remote_streams.clear();
                    a.remote_rids.clear();
                }
                any_accepted = true;
                MediaAnswer::Accepted(a)
            }
            Err(reason) => MediaAnswer::Rejected(RejectedMedia {
                index,
                mid: m.mid.map(str::to_owned),
                kind: m.kind.as_str().to_owned(),
                reason,
            }),
        };
        outcomes.push(outcome);
    }
    let remote = match outcomes.iter().find_map(|o| match o {
        MediaAnswer::Accepted(a) => Some(a.index),
        MediaAnswer::Rejected(_) => None,
    }) {
        Some(i) => Some(remote_transport(offer, &offer.media[i])?),
        None => None,
    };
    let sdp = write_answer(offer, params, remote.as_ref(), &outcomes, bundle.is_some());
    Ok(Answer {
        sdp,
        remote,
        media: outcomes,
    })
}

fn check_params(p: &AnswerParams) -> Result<(), SdpError> {
    let ice = |s: &str, min: usize| {
        (min..=256).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    if !ice(&p.transport.ice_ufrag, 4) {
        return Err(SdpError::InvalidParams {
            what: "ICE ufrag (4-256 ice-chars)",
        });
    }
    if !ice(&p.transport.ice_pwd, 22) {
        return Err(SdpError::InvalidParams {
            what: "ICE password (22-256 ice-chars)",
        });
    }
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    for s in p.audio_send.iter().chain(&p.video_send) {
        if !token(&s.cname) || !token(&s.stream_id) || !token(&s.track_id) {
            return Err(SdpError::InvalidParams {
                what: "send stream cname/stream id/track id (visible ASCII)",
            });
        }
    }
    Ok(())
}

/// Decides one m-line; `index`, `direction` and `send` are filled in by the caller.
fn accept(
    offer: &SessionDescription<'_>,
    m: &MediaSection<'_>,
    policy: &MediaPolicy,
    bundled: bool,
    any_accepted: bool,
) -> Result<AcceptedMedia, RejectReason> {
    if m.port == 0 && !m.bundle_only {
        return Err(RejectReason::DisabledInOffer);
    }
    if let Some(b) = offer.bundle()
        && !m.mid.is_some_and(|mid| b.mids.contains(&mid))
    {
        return Err(RejectReason::NotBundled);
    }
    let kind = match m.kind {
        MediaKind::Audio => AcceptedKind::Audio,
        MediaKind::Video => AcceptedKind::Video,
        MediaKind::Application => return Err(RejectReason::DataChannel),
        MediaKind::Other(k) => return Err(RejectReason::UnsupportedMedia(k.to_owned())),
    };
    if !m.protocol.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF") {
        return Err(RejectReason::UnsupportedProtocol(m.protocol.to_owned()));
    }
    if !m.rtcp_mux {
        return Err(RejectReason::NoRtcpMux);
    }
    let (pt, codec) = match kind {
        AcceptedKind::Audio => (choose_opus(m).ok_or(RejectReason::NoOpus)?, Codec::Opus),
        AcceptedKind::Video => {
            let delivery = policy.h264.ok_or(RejectReason::VideoNotServed)?;
            let offer_dir = m
                .direction
                .or(offer.direction)
                .unwrap_or(Direction::SendRecv);
            let (pt, plid) = choose_h264(m, delivery, !offer_dir.receives())?;
            (pt, Codec::H264(plid))
        }
    };
    if !bundled && any_accepted {
        return Err(RejectReason::NotBundled);
    }
    let clock = if kind == AcceptedKind::Audio {
        48_000
    } else {
        90_000
    };
    let rtx_pt = m.payload_types.iter().copied().find(|&rtx| {
        m.rtpmap(rtx)
            .is_some_and(|r| r.encoding.eq_ignore_ascii_case("rtx") && r.clock_rate == clock)
            && fmtp_param(m.fmtp(rtx), "apt").and_then(|a| a.parse::<u8>().ok()) == Some(pt.0)
    });
    let mut feedback = Feedback::default();
    for fb in m.rtcp_fb_for(pt) {
        match (fb.kind, fb.param) {
            ("nack", None) => feedback.nack = true,
            ("nack", Some("pli")) if kind == AcceptedKind::Video => feedback.pli = true,
            ("ccm", Some("fir")) if kind == AcceptedKind::Video => feedback.fir = true,
            ("transport-cc", _) if policy.transport_cc => feedback.transport_cc = true,
            ("goog-remb", _) if policy.remb => feedback.remb = true,
            _ => {}
        }
    }
    // The section's own mappings first; a session-level one only when the section does not
    // use its id for another extension (else the answer would map one id twice).
    let find_ext = |uri: &str| {
        m.extmaps
            .iter()
            .find(|e: &&ExtMap<'_>| e.uri == uri)
            .or_else(|| {
                offer
                    .extmaps
                    .iter()
                    .filter(|e| !m.extmaps.iter().any(|x| x.id == e.id))
                    .find(|e| e.uri == uri)
            })
            .map(|e| e.id)
    };
    let mut extensions = Extensions {
        mid: find_ext(EXT_MID).filter(|_| policy.mid_extension),
        transport_cc: find_ext(EXT_TRANSPORT_CC).filter(|_| policy.transport_cc),
        audio_level: find_ext(EXT_AUDIO_LEVEL).filter(|_| kind == AcceptedKind::Audio),
        rid: None,
        repaired_rid: None,
    };
    // Simulcast: the browser's send streams, by their first alternative, when each has an
    // `a=rid ... send` line and the RID extension is offered.
    let mut remote_rids = Vec::new();
    if let (true, Some(sim), Some(rid_ext)) = (policy.simulcast, &m.simulcast, find_ext(EXT_RID)) {
        let rids: Vec<&str> = sim
            .send
            .iter()
            .filter_map(|alts| alts.first())
            .map(|r| r.id)
            .filter(|id| m.rids.iter().any(|r| r.send && r.id == *id))
            .collect();
        if rids.len() > 1 {
            extensions.rid = Some(rid_ext);
            extensions.repaired_rid = find_ext(EXT_REPAIRED_RID);
            remote_rids = rids.into_iter().map(str::to_owned).collect();
        }
    }
    let remote_streams = if remote_rids.is_empty() {
        remote_streams(m)
    } else {
        Vec::new()
    };
    Ok(AcceptedMedia {
        index: 0,
        mid: m.mid.map(str::to_owned),
        kind,
        direction: Direction::Inactive,
        pt,
        codec,
        rtx_pt,
        feedback,
        extensions,
        remote_streams,
        remote_rids,
        send: None,
    })
}

fn choose_opus(m: &MediaSection<'_>) -> Option<Pt> {
    m.payload_types.iter().copied().find(|&pt| {
        m.rtpmap(pt).is_some_and(|r| {
            r.encoding.eq_ignore_ascii_case("opus")
                && r.clock_rate == 48_000
                && r.channels == Some(2)
        })
    })
}

/// The first H.264 payload type of `m` that fits `delivery`: as a receiver of the delivered
/// stream, or (`sender_only`: the offerer only sends) as a source forwarded to such
/// receivers ([`H264Delivery::answer_for_sender`]).
fn choose_h264(
    m: &MediaSection<'_>,
    delivery: H264Delivery,
    sender_only: bool,
) -> Result<(Pt, ProfileLevelId), RejectReason> {
    let mut any_h264 = false;
    let mut offered = Vec::new();
    for &pt in &m.payload_types {
        let Some(r) = m.rtpmap(pt) else { continue };
        if !r.encoding.eq_ignore_ascii_case("H264") || r.clock_rate != 90_000 {
            continue;
        }
        any_h264 = true;
        let fmtp = m.fmtp(pt);
        if fmtp_param(fmtp, "packetization-mode") != Some("1") {
            continue;
        }
        let plid = fmtp_param(fmtp, "profile-level-id");
        offered.push(plid.unwrap_or("(absent)").to_owned());
        let plid = match plid {
            None => ProfileLevelId::ABSENT,
            Some(s) => match ProfileLevelId::parse(s) {
                Ok(p) => p,
                Err(_) => continue,
            },
        };
        let answer = if sender_only {
            delivery.answer_for_sender(plid)
        } else {
            delivery.answer_for(plid)
        };
        if let Ok(answer) = answer {
            return Ok((pt, answer));
        }
    }
    Err(match (any_h264, offered.is_empty()) {
        (false, _) => RejectReason::NoH264,
        (true, true) => RejectReason::NoH264PacketizationMode1,
        (true, false) => RejectReason::H264NotDeliverable {
            delivered: delivery,
            offered,
        },
    })
}

/// The browser's declared streams: `a=ssrc` SSRCs, RTX SSRCs folded in by `FID`.
fn remote_streams(m: &MediaSection<'_>) -> Vec<RemoteStream> {
    let fid: Vec<(Ssrc, Ssrc)> = m
        .ssrc_groups
        .iter()
        .filter(|g| g.semantics == "FID")
        .filter_map(|g| match g.ssrcs[..] {
            [primary, rtx, ..] => Some((primary, rtx)),
            _ => None,
        })
        .collect();
    m.declared_ssrcs()
        .into_iter()
        .filter(|s| !fid.iter().any(|(_, rtx)| rtx == s))
        .map(|ssrc| RemoteStream {
            ssrc,
            rtx: fid.iter().find(|(p, _)| *p == ssrc).map(|(_, rtx)| *rtx),
        })
        .collect()
}

fn remote_transport(
    offer: &SessionDescription<'_>,
    m: &MediaSection<'_>,
) -> Result<RemoteTransport, SdpError> {
    let (t, d) = (&m.transport, &offer.defaults);
    let (Some(ufrag), Some(pwd)) = (t.ice_ufrag.or(d.ice_ufrag), t.ice_pwd.or(d.ice_pwd)) else {
        return Err(SdpError::MissingIceCredentials { line: m.line });
    };
    let fingerprints = if t.fingerprints.is_empty() {
        &d.fingerprints
    } else {
        &t.fingerprints
    };
    if fingerprints.is_empty() {
        return Err(SdpError::MissingFingerprint { line: m.line });
    }
    let dtls_role = match t.setup.or(d.setup) {
        // RFC 4145: an offer without a=setup means active.
        None | Some(Setup::Actpass) | Some(Setup::Active) => DtlsRole::Server,
        Some(Setup::Passive) => DtlsRole::Client,
        Some(Setup::Holdconn) => return Err(SdpError::SetupHoldconn { line: m.line }),
    };
    Ok(RemoteTransport {
        ice_ufrag: ufrag.to_owned(),
        ice_pwd: pwd.to_owned(),
        fingerprints: fingerprints
            .iter()
            .map(|f| (f.algorithm.to_ascii_lowercase(), f.digest.clone()))
            .collect(),
        dtls_role,
    })
}

/// RFC 8445 §5.1.2.1 priority of a host candidate, component 1; `rank` 0 is preferred.
fn host_priority(rank: usize) -> u32 {
    let local_pref = 65_535u32.saturating_sub(u32::try_from(rank).unwrap_or(u32::MAX));
    (126 << 24) | (local_pref << 8) | 255
}

fn ip_kind(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

fn write_answer(
    offer: &SessionDescription<'_>,
    params: &AnswerParams,
    remote: Option<&RemoteTransport>,
    outcomes: &[MediaAnswer],
    bundled: bool,
) -> String {
    let mut s = String::with_capacity(2048);
    // `write!` to a String cannot fail; the results are ignored below for that reason.
    let t = &params.transport;
    let candidates = t.candidates();
    let first = candidates.first().copied().unwrap_or(t.host);
    let _ = write!(
        s,
        "v=0\r\no=- {} 1 IN {} {}\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n",
        params.session_id,
        ip_kind(first.ip()),
        first.ip()
    );
    let accepted_mids: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| match o {
            MediaAnswer::Accepted(a) => a.mid.as_deref(),
            MediaAnswer::Rejected(_) => None,
        })
        .collect();
    if bundled && !accepted_mids.is_empty() {
        let _ = write!(s, "a=group:BUNDLE {}\r\n", accepted_mids.join(" "));
    }
    let mixed = offer.extmap_allow_mixed || offer.media.iter().any(|m| m.extmap_allow_mixed);
    if mixed {
        s.push_str("a=extmap-allow-mixed\r\n");
    }
    s.push_str("a=msid-semantic: WMS *\r\n");
    let fingerprint = t
        .fingerprint_sha256
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let setup = match remote.map(|r| r.dtls_role) {
        Some(DtlsRole::Client) => "active",
        _ => "passive",
    };
    for (m, outcome) in offer.media.iter().zip(outcomes) {
        match outcome {
            MediaAnswer::Rejected(_) => {
                let _ = write!(
                    s,
                    "m={} 0 {} {}\r\nc=IN IP4 0.0.0.0\r\n",
                    m.kind.as_str(),
                    m.protocol,
                    m.formats.first().copied().unwrap_or("0")
                );
                if let Some(mid) = m.mid {
                    let _ = write!(s, "a=mid:{mid}\r\n");
                }
                // The transport's ICE credentials and DTLS fingerprint on a rejected DTLS
                // m-line too, as Chrome writes them: GStreamer's webrtcbin (1.22) refuses a
                // whole answer whose rejected m-line lacks them, so a publisher whose video
                // is refused could not publish its audio.
                if m.protocol.to_ascii_uppercase().contains("TLS") {
                    let _ = write!(
                        s,
                        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {fingerprint}\r\na=setup:{setup}\r\n",
                        t.ice_ufrag, t.ice_pwd
                    );
                }
            }
            MediaAnswer::Accepted(a) => {
                write_accepted(&mut s, m, a, t, &candidates, &fingerprint, setup);
            }
        }
    }
    s
}

fn write_accepted(
    s: &mut String,
    m: &MediaSection<'_>,
    a: &AcceptedMedia,
    t: &RelayTransport,
    candidates: &[SocketAddr],
    fingerprint: &str,
    setup: &str,
) {
    let first = candidates.first().copied().unwrap_or(t.host);
    let _ = write!(
        s,
        "m={} {} UDP/TLS/RTP/SAVPF {}",
        m.kind.as_str(),
        first.port(),
        a.pt
    );
    if let Some(rtx) = a.rtx_pt {
        let _ = write!(s, " {rtx}");
    }
    let _ = write!(s, "\r\nc=IN {} {}\r\n", ip_kind(first.ip()), first.ip());
    if let Some(mid) = &a.mid {
        let _ = write!(s, "a=mid:{mid}\r\n");
    }
    let _ = write!(
        s,
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {fingerprint}\r\na=setup:{setup}\r\n",
        t.ice_ufrag, t.ice_pwd
    );
    let _ = write!(s, "a={}\r\na=rtcp-mux\r\n", a.direction.as_str());
    if m.rtcp_rsize {
        s.push_str("a=rtcp-rsize\r\n");
    }
    let e = &a.extensions;
    for (id, uri) in [
        (e.mid, EXT_MID),
        (e.audio_level, EXT_AUDIO_LEVEL),
        (e.transport_cc, EXT_TRANSPORT_CC),
        (e.rid, EXT_RID),
        (e.repaired_rid, EXT_REPAIRED_RID),
    ] {
        if let Some(id) = id {
            let _ = write!(s, "a=extmap:{id} {uri}\r\n");
        }
    }
    let pt = a.pt;
    match a.codec {
        Codec::Opus => {
            let _ = write!(s, "a=rtpmap:{pt} opus/48000/2\r\n");
        }
        Codec::H264(_) => {
            let _ = write!(s, "a=rtpmap:{pt} H264/90000\r\n");
        }
    }
    let f = &a.feedback;
    for (on, fb) in [
        (f.remb, "goog-remb"),
        (f.transport_cc, "transport-cc"),
        (f.fir, "ccm fir"),
        (f.nack, "nack"),
        (f.pli, "nack pli"),
    ] {
        if on {
            let _ = write!(s, "a=rtcp-fb:{pt} {fb}\r\n");
        }
    }
    match a.codec {
        Codec::Opus => {
            let _ = write!(s, "a=fmtp:{pt} minptime=10;useinbandfec=1\r\n");
        }
        Codec::H264(plid) => {
            let asym = fmtp_param(m.fmtp(pt), "level-asymmetry-allowed") == Some("1");
            let _ = write!(
                s,
                "a=fmtp:{pt} {}packetization-mode=1;profile-level-id={plid}\r\n",
                if asym {
                    "level-asymmetry-allowed=1;"
                } else {
                    ""
                }
            );
        }
    }
    if let Some(rtx) = a.rtx_pt {
        let rate = if a.kind == AcceptedKind::Audio {
            48_000
        } else {
            90_000
        };
        let _ = write!(s, "a=rtpmap:{rtx} rtx/{rate}\r\na=fmtp:{rtx} apt={pt}\r\n");
    }
    if !a.remote_rids.is_empty() {
        for rid in &a.remote_rids {
            let _ = write!(s, "a=rid:{rid} recv\r\n");
        }
        let _ = write!(s, "a=simulcast:recv {}\r\n", a.remote_rids.join(";"));
    }
    if let Some(send) = &a.send {
        let _ = write!(s, "a=msid:{} {}\r\n", send.stream_id, send.track_id);
        if let Some(rtx) = send.rtx_ssrc {
            let _ = write!(s, "a=ssrc-group:FID {} {rtx}\r\n", send.ssrc);
        }
        for ssrc in std::iter::once(send.ssrc).chain(send.rtx_ssrc) {
            let _ = write!(
                s,
                "a=ssrc:{ssrc} cname:{}\r\na=ssrc:{ssrc} msid:{} {}\r\n",
                send.cname, send.stream_id, send.track_id
            );
        }
    }
    for (rank, c) in candidates.iter().enumerate() {
        let _ = write!(
            s,
            "a=candidate:{} 1 udp {} {} {} typ host\r\n",
            rank + 1,
            host_priority(rank),
            c.ip(),
            c.port()
        );
    }
    s.push_str("a=end-of-candidates\r\n");
}
