//! The typed form of an SDP offer: the subset WebRTC browsers and WHIP/WHEP tools send
//! (unified plan, BUNDLE, rtcp-mux, ICE, DTLS, RTP payload formats, SSRCs, RIDs). Strings
//! borrow from the offer's text.
//!
//! Lines and attributes outside that subset (`b=`, `a=rtcp`, `a=sctpmap`, unknown
//! attributes, ...) are skipped, as RFC 8866 §5.13 asks of unknown attributes.

use std::fmt;

/// RTP synchronisation source identifier (RFC 3550 §3), as `a=ssrc` lines declare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ssrc(pub u32);

/// RTP payload type (7 bits), as m-lines, `a=rtpmap` and `a=fmtp` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pt(pub u8);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Pt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A parsed SDP (in practice an offer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription<'a> {
    /// The `o=` line.
    pub origin: Origin<'a>,
    /// The `s=` line's value.
    pub session_name: &'a str,
    /// `a=group:` lines (`BUNDLE`, ...).
    pub groups: Vec<Group<'a>>,
    /// `a=ice-lite` at session level.
    pub ice_lite: bool,
    /// Session-level ICE, DTLS and direction attributes (m-sections may override them).
    pub defaults: TransportAttrs<'a>,
    /// Session-level direction attribute, if any.
    pub direction: Option<Direction>,
    /// `a=msid-semantic:` value, if any.
    pub msid_semantic: Option<&'a str>,
    /// `a=extmap-allow-mixed` at session level.
    pub extmap_allow_mixed: bool,
    /// Session-level `a=extmap` lines.
    pub extmaps: Vec<ExtMap<'a>>,
    /// The m-sections, in order.
    pub media: Vec<MediaSection<'a>>,
}

impl<'a> SessionDescription<'a> {
    /// The first `BUNDLE` group, if any.
    pub fn bundle(&self) -> Option<&Group<'a>> {
        self.groups.iter().find(|g| g.semantics == "BUNDLE")
    }

    /// The m-section with this mid.
    pub fn media_by_mid(&self, mid: &str) -> Option<&MediaSection<'a>> {
        self.media.iter().find(|m| m.mid == Some(mid))
    }
}

/// The `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin<'a> {
    /// User name (`-` from browsers; Firefox puts its name here).
    pub username: &'a str,
    /// Session id (digits).
    pub session_id: &'a str,
    /// Session version.
    pub session_version: u64,
    /// Unicast address, e.g. `127.0.0.1` (not used for media).
    pub address: &'a str,
}

/// An `a=group:` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    /// 1-based line number.
    pub line: usize,
    /// `BUNDLE`, `LS`, ...
    pub semantics: &'a str,
    /// The mids in the group, in order (the first is the offerer's tagged m-section).
    pub mids: Vec<&'a str>,
}

/// ICE and DTLS attributes, at session level or in an m-section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransportAttrs<'a> {
    /// `a=ice-ufrag`.
    pub ice_ufrag: Option<&'a str>,
    /// `a=ice-pwd`.
    pub ice_pwd: Option<&'a str>,
    /// `a=ice-options` tokens (`trickle`, `renomination`, ...).
    pub ice_options: Vec<&'a str>,
    /// `a=fingerprint` lines.
    pub fingerprints: Vec<Fingerprint<'a>>,
    /// `a=setup`.
    pub setup: Option<Setup>,
}

/// A DTLS certificate fingerprint (`a=fingerprint:sha-256 AB:CD:...`, RFC 8122).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint<'a> {
    /// Hash function name as written (`sha-256`); compare with `eq_ignore_ascii_case`.
    pub algorithm: &'a str,
    /// The digest bytes.
    pub digest: Vec<u8>,
}

/// `a=setup` (RFC 4145, RFC 5763): who opens the DTLS connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// Either (what an offer says; the answerer picks).
    Actpass,
    /// Opens the connection (DTLS client).
    Active,
    /// Waits for it (DTLS server).
    Passive,
    /// No connection now.
    Holdconn,
}

impl Setup {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Actpass => "actpass",
            Self::Active => "active",
            Self::Passive => "passive",
            Self::Holdconn => "holdconn",
        }
    }
}

/// Media direction (RFC 8866 §6.7), from the point of view of the side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sends and receives.
    SendRecv,
    /// Only sends.
    SendOnly,
    /// Only receives.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// From "does send" and "does receive".
    pub fn from_flags(send: bool, recv: bool) -> Self {
        match (send, recv) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }

    /// Whether the writer sends.
    pub fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    /// Whether the writer receives.
    pub fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }
}

/// The media type of an m-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind<'a> {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `application` (data channels).
    Application,
    /// Anything else (`text`, `message`, ...).
    Other(&'a str),
}

impl MediaKind<'_> {
    /// The m-line's media token.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Application => "application",
            Self::Other(s) => s,
        }
    }
}

/// One m-section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection<'a> {
    /// 1-based line number of the m-line.
    pub line: usize,
    /// Media type.
    pub kind: MediaKind<'a>,
    /// Port (0: the offerer disables the m-section, unless `a=bundle-only`).
    pub port: u16,
    /// Transport protocol, e.g. `UDP/TLS/RTP/SAVPF`.
    pub protocol: &'a str,
    /// The format list as written (payload type numbers for RTP, `webrtc-datachannel`, ...).
    pub formats: Vec<&'a str>,
    /// The formats as payload types, when the protocol is RTP (empty otherwise).
    pub payload_types: Vec<Pt>,
    /// The `c=` line's address, if any.
    pub connection: Option<&'a str>,
    /// `a=mid`.
    pub mid: Option<&'a str>,
    /// Direction attribute in this section, if any.
    pub direction: Option<Direction>,
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// `a=rtcp-rsize`.
    pub rtcp_rsize: bool,
    /// `a=bundle-only`.
    pub bundle_only: bool,
    /// `a=extmap-allow-mixed` in this section.
    pub extmap_allow_mixed: bool,
    /// ICE and DTLS attributes of this section.
    pub transport: TransportAttrs<'a>,
    /// `a=candidate` lines.
    pub candidates: Vec<Candidate<'a>>,
    /// `a=end-of-candidates`.
    pub end_of_candidates: bool,
    /// `a=rtpmap` lines.
    pub rtpmaps: Vec<RtpMap<'a>>,
    /// `a=fmtp` lines.
    pub fmtps: Vec<Fmtp<'a>>,
    /// `a=rtcp-fb` lines.
    pub rtcp_fbs: Vec<RtcpFb<'a>>,
    /// `a=extmap` lines.
    pub extmaps: Vec<ExtMap<'a>>,
    /// `a=msid` lines.
    pub msids: Vec<Msid<'a>>,
    /// `a=ssrc` lines.
    pub ssrcs: Vec<SsrcAttr<'a>>,
    /// `a=ssrc-group` lines.
    pub ssrc_groups: Vec<SsrcGroup<'a>>,
    /// `a=rid` lines.
    pub rids: Vec<Rid<'a>>,
    /// `a=simulcast`.
    pub simulcast: Option<Simulcast<'a>>,
    /// `a=sctp-port` (data channels).
    pub sctp_port: Option<u16>,
    /// `a=max-message-size` (data channels).
    pub max_message_size: Option<u64>,
}

impl<'a> MediaSection<'a> {
    /// A new m-section with nothing but its m-line.
    pub(crate) fn new(
        line: usize,
        kind: MediaKind<'a>,
        port: u16,
        protocol: &'a str,
        formats: Vec<&'a str>,
        payload_types: Vec<Pt>,
    ) -> Self {
        Self {
            line,
            kind,
            port,
            protocol,
            formats,
            payload_types,
            connection: None,
            mid: None,
            direction: None,
            rtcp_mux: false,
            rtcp_rsize: false,
            bundle_only: false,
            extmap_allow_mixed: false,
            transport: TransportAttrs::default(),
            candidates: Vec::new(),
            end_of_candidates: false,
            rtpmaps: Vec::new(),
            fmtps: Vec::new(),
            rtcp_fbs: Vec::new(),
            extmaps: Vec::new(),
            msids: Vec::new(),
            ssrcs: Vec::new(),
            ssrc_groups: Vec::new(),
            rids: Vec::new(),
            simulcast: None,
            sctp_port: None,
            max_message_size: None,
        }
    }

    /// The `a=rtpmap` of a payload type.
    pub fn rtpmap(&self, pt: Pt) -> Option<&RtpMap<'a>> {
        self.rtpmaps.iter().find(|r| r.pt == pt)
    }

    /// The `a=fmtp` parameters of a payload type (`""` when it has none).
    pub fn fmtp(&self, pt: Pt) -> &'a str {
        self.fmtps
            .iter()
            .find(|f| f.pt == pt)
            .map_or("", |f| f.params)
    }

    /// The `a=rtcp-fb` lines that apply to a payload type (its own and `*`).
    pub fn rtcp_fb_for(&self, pt: Pt) -> impl Iterator<Item = &RtcpFb<'a>> {
        self.rtcp_fbs
            .iter()
            .filter(move |fb| fb.pt.is_none_or(|p| p == pt))
    }

    /// The distinct SSRCs declared by `a=ssrc` lines, in order of first appearance.
    pub fn declared_ssrcs(&self) -> Vec<Ssrc> {
        let mut out: Vec<Ssrc> = Vec::new();
        for s in &self.ssrcs {
            if !out.contains(&s.ssrc) {
                out.push(s.ssrc);
            }
        }
        out
    }
}

/// An `a=candidate` line (RFC 8839 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Foundation.
    pub foundation: &'a str,
    /// Component id (1 = RTP).
    pub component: u16,
    /// Transport (`udp`, `tcp`), as written.
    pub transport: &'a str,
    /// Priority.
    pub priority: u32,
    /// Address: an IP literal or an mDNS `.local` name.
    pub address: &'a str,
    /// Port.
    pub port: u16,
    /// Candidate type (`host`, `srflx`, `prflx`, `relay`).
    pub typ: &'a str,
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// Payload type.
    pub pt: Pt,
    /// Encoding name as written (`opus`, `H264`, `rtx`, ...); compare case-insensitively.
    pub encoding: &'a str,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channel count (audio), if written.
    pub channels: Option<u16>,
}

/// `a=fmtp:<pt> <parameters>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fmtp<'a> {
    /// Payload type.
    pub pt: Pt,
    /// The parameters as written.
    pub params: &'a str,
}

/// The `key=value` pairs of an `a=fmtp` parameter string (separated by `;`, spaces around
/// them ignored). A parameter without `=` comes out with an empty value.
pub fn fmtp_params(params: &str) -> impl Iterator<Item = (&str, &str)> {
    params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (p, ""),
        })
}

/// The value of one `a=fmtp` parameter (the key compared case-insensitively).
pub fn fmtp_param<'p>(params: &'p str, key: &str) -> Option<&'p str> {
    fmtp_params(params)
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// `a=rtcp-fb:<pt|*> <type> [<parameter>]` (RFC 4585).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpFb<'a> {
    /// Payload type; `None` for `*` (all).
    pub pt: Option<Pt>,
    /// Feedback type (`nack`, `ccm`, `transport-cc`, `goog-remb`, ...).
    pub kind: &'a str,
    /// Its parameter (`pli`, `fir`, ...), if any.
    pub param: Option<&'a str>,
}

/// `a=extmap:<id>[/<direction>] <uri> [<attributes>]` (RFC 8285).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtMap<'a> {
    /// Extension id (1–14 one-byte, up to 255 two-byte).
    pub id: u8,
    /// Direction, if written.
    pub direction: Option<Direction>,
    /// Extension URI.
    pub uri: &'a str,
}

/// `a=msid:<stream id> [<track id>]` (RFC 8830).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msid<'a> {
    /// Media stream id (`-` for none).
    pub stream: &'a str,
    /// Track id, if written.
    pub track: Option<&'a str>,
}

/// `a=ssrc:<ssrc> <attribute>[:<value>]` (RFC 5576).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SsrcAttr<'a> {
    /// The SSRC.
    pub ssrc: Ssrc,
    /// Attribute name (`cname`, `msid`, ...).
    pub attribute: &'a str,
    /// Its value, if any.
    pub value: Option<&'a str>,
}

/// `a=ssrc-group:<semantics> <ssrc>...` (`FID` pairs media and RTX, `SIM` lists simulcast
/// layers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup<'a> {
    /// `FID`, `SIM`, `FEC-FR`, ...
    pub semantics: &'a str,
    /// The SSRCs in order.
    pub ssrcs: Vec<Ssrc>,
}

/// `a=rid:<id> <send|recv> [<restrictions>]` (RFC 8851).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rid<'a> {
    /// The RID.
    pub id: &'a str,
    /// `true` for `send`, `false` for `recv`.
    pub send: bool,
    /// Restrictions (`pt=...;max-width=...`) as written, if any.
    pub restrictions: Option<&'a str>,
}

/// `a=simulcast:` (RFC 8853): the simulcast streams per direction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Simulcast<'a> {
    /// The streams the writer sends; each stream is a list of alternative RIDs.
    pub send: Vec<Vec<SimulcastRid<'a>>>,
    /// The streams the writer receives.
    pub recv: Vec<Vec<SimulcastRid<'a>>>,
}

/// One RID in an `a=simulcast` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulcastRid<'a> {
    /// The RID.
    pub id: &'a str,
    /// Written with `~`: paused.
    pub paused: bool,
}
