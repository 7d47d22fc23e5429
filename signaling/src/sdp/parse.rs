//! The SDP parser: text in, [`SessionDescription`] out, or an [`SdpError`] naming the line.
//!
//! A hand-written parser of the subset WebRTC offers use (RFC 8866 lines, RFC 8839 ICE,
//! RFC 8122 fingerprints, RFC 4145 setup, RFC 8843 BUNDLE, RFC 5576 SSRC attributes, RFC 8851
//! RIDs, RFC 8853 simulcast, RFC 8285 extmap). Every attribute it reads is checked against its
//! grammar, so that an error names the line and the expected syntax; attributes outside the
//! subset are skipped. Input is limited in size ([`MAX_SDP_BYTES`], [`MAX_SDP_LINES`],
//! [`MAX_MEDIA_SECTIONS`]); nothing here panics on any input (a property test and the
//! `sdp_answer` fuzz target check that).

use super::error::{LineError, SdpError};
use super::model::{
    Candidate, Direction, ExtMap, Fingerprint, Fmtp, Group, MediaKind, MediaSection, Msid, Origin,
    Pt, Rid, RtcpFb, RtpMap, SessionDescription, Simulcast, SimulcastRid, Ssrc, SsrcAttr,
    SsrcGroup, TransportAttrs,
};

/// Largest SDP accepted, in bytes (browsers' offers are 3–12 KiB).
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Most lines accepted.
pub const MAX_SDP_LINES: usize = 2048;
/// Most m-lines accepted.
pub const MAX_MEDIA_SECTIONS: usize = 64;

/// Parses SDP from bytes (a WHIP body, a WebSocket field): checks the size, then UTF-8, then
/// parses as [`parse`] does.
pub fn parse_bytes(sdp: &[u8]) -> Result<SessionDescription<'_>, SdpError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge {
            len: sdp.len(),
            max: MAX_SDP_BYTES,
        });
    }
    match std::str::from_utf8(sdp) {
        Ok(text) => parse(text),
        Err(e) => {
            let before = sdp.get(..e.valid_up_to()).unwrap_or_default();
            let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
            Err(SdpError::Line {
                line,
                reason: LineError::NotUtf8,
            })
        }
    }
}

/// Parses SDP text. Lines end in CRLF or LF; empty lines are skipped.
pub fn parse(sdp: &str) -> Result<SessionDescription<'_>, SdpError> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err(SdpError::TooLarge {
            len: sdp.len(),
            max: MAX_SDP_BYTES,
        });
    }
    let mut p = Parser::default();
    for (i, raw) in sdp.split('\n').enumerate() {
        let line = i + 1;
        if line > MAX_SDP_LINES {
            return Err(SdpError::TooManyLines { max: MAX_SDP_LINES });
        }
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        if text.is_empty() {
            continue;
        }
        p.line(line, text)?;
    }
    p.finish()
}

#[derive(Default)]
struct Parser<'a> {
    seen_version: bool,
    origin: Option<Origin<'a>>,
    session_name: Option<&'a str>,
    groups: Vec<Group<'a>>,
    ice_lite: bool,
    defaults: TransportAttrs<'a>,
    direction: Option<Direction>,
    msid_semantic: Option<&'a str>,
    extmap_allow_mixed: bool,
    extmaps: Vec<ExtMap<'a>>,
    media: Vec<MediaSection<'a>>,
}

type LineResult = Result<(), LineError>;

impl<'a> Parser<'a> {
    fn line(&mut self, line: usize, text: &'a str) -> Result<(), SdpError> {
        let at = |reason| SdpError::Line { line, reason };
        let bytes = text.as_bytes();
        if bytes.len() < 2 || bytes[1] != b'=' {
            return Err(at(LineError::NotTypeValue));
        }
        // `bytes[1]` is ASCII, so index 2 is a character boundary.
        let (ty, value) = (bytes[0], &text[2..]);
        if !self.seen_version {
            if ty != b'v' || value != "0" {
                return Err(at(LineError::NotVersionZero));
            }
            self.seen_version = true;
            return Ok(());
        }
        let in_media = !self.media.is_empty();
        let result = match ty {
            b'v' => Err(LineError::Misplaced { what: "v=" }),
            b'o' if in_media || self.origin.is_some() => Err(LineError::Misplaced { what: "o=" }),
            b'o' => parse_origin(value).map(|o| self.origin = Some(o)),
            b's' if in_media || self.session_name.is_some() => {
                Err(LineError::Misplaced { what: "s=" })
            }
            b's' => {
                self.session_name = Some(value);
                Ok(())
            }
            b't' | b'r' | b'z' | b'u' | b'e' | b'p' if in_media => Err(LineError::Misplaced {
                what: "a session-level line (t=, r=, z=, u=, e=, p=)",
            }),
            b't' | b'r' | b'z' | b'u' | b'e' | b'p' | b'i' | b'b' | b'k' => Ok(()),
            b'c' => parse_connection(value).map(|addr| {
                if let Some(m) = self.media.last_mut() {
                    m.connection = Some(addr);
                }
            }),
            b'm' => {
                if self.origin.is_none() {
                    return Err(SdpError::Missing { what: "o= line" });
                }
                if self.session_name.is_none() {
                    return Err(SdpError::Missing { what: "s= line" });
                }
                if self.media.len() == MAX_MEDIA_SECTIONS {
                    return Err(SdpError::TooManyMediaSections {
                        line,
                        max: MAX_MEDIA_SECTIONS,
                    });
                }
                parse_media_line(line, value).map(|m| self.media.push(m))
            }
            b'a' => self.attribute(line, value),
            other if other.is_ascii_lowercase() => Err(LineError::UnknownType(other as char)),
            _ => Err(LineError::NotTypeValue),
        };
        result.map_err(at)
    }

    fn attribute(&mut self, line: usize, value: &'a str) -> LineResult {
        let (name, val) = match value.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (value, None),
        };
        let need = |what: &'static str, expected: &'static str| {
            val.ok_or(LineError::malformed(what, expected))
        };
        // Attributes valid at session level and in m-sections.
        match name {
            "ice-ufrag" => {
                let v = need("a=ice-ufrag", ICE_UFRAG)?;
                if !is_ice_chars(v, 4) {
                    return Err(LineError::malformed("a=ice-ufrag", ICE_UFRAG));
                }
                let t = self.transport_mut();
                return set_once(&mut t.ice_ufrag, v, "a=ice-ufrag");
            }
            "ice-pwd" => {
                let v = need("a=ice-pwd", ICE_PWD)?;
                if !is_ice_chars(v, 22) {
                    return Err(LineError::malformed("a=ice-pwd", ICE_PWD));
                }
                let t = self.transport_mut();
                return set_once(&mut t.ice_pwd, v, "a=ice-pwd");
            }
            "ice-options" => {
                let v = need("a=ice-options", "a=ice-options:<option> ...")?;
                self.transport_mut()
                    .ice_options
                    .extend(v.split_ascii_whitespace());
                return Ok(());
            }
            "fingerprint" => {
                let fp = parse_fingerprint(need("a=fingerprint", FINGERPRINT)?)?;
                self.transport_mut().fingerprints.push(fp);
                return Ok(());
            }
            "setup" => {
                let setup = match val {
                    Some("actpass") => super::model::Setup::Actpass,
                    Some("active") => super::model::Setup::Active,
                    Some("passive") => super::model::Setup::Passive,
                    Some("holdconn") => super::model::Setup::Holdconn,
                    _ => {
                        return Err(LineError::malformed(
                            "a=setup",
                            "a=setup:actpass|active|passive|holdconn",
                        ));
                    }
                };
                return set_once(&mut self.transport_mut().setup, setup, "a=setup");
            }
            "sendrecv" | "sendonly" | "recvonly" | "inactive" => {
                let d = match name {
                    "sendrecv" => Direction::SendRecv,
                    "sendonly" => Direction::SendOnly,
                    "recvonly" => Direction::RecvOnly,
                    _ => Direction::Inactive,
                };
                let slot = match self.media.last_mut() {
                    Some(m) => &mut m.direction,
                    None => &mut self.direction,
                };
                return set_once(slot, d, "a direction attribute");
            }
            "extmap" => {
                let e = parse_extmap(need("a=extmap", EXTMAP)?)?;
                let list = match self.media.last_mut() {
                    Some(m) => &mut m.extmaps,
                    None => &mut self.extmaps,
                };
                if list.iter().any(|x| x.id == e.id) {
                    return Err(LineError::DuplicateExtmapId(e.id));
                }
                list.push(e);
                return Ok(());
            }
            "extmap-allow-mixed" => {
                match self.media.last_mut() {
                    Some(m) => m.extmap_allow_mixed = true,
                    None => self.extmap_allow_mixed = true,
                }
                return Ok(());
            }
            "end-of-candidates" => {
                if let Some(m) = self.media.last_mut() {
                    m.end_of_candidates = true;
                }
                return Ok(());
            }
            _ => {}
        }
        let Some(m) = self.media.last_mut() else {
            // Session level.
            return match name {
                "group" => {
                    let v = need("a=group", "a=group:<semantics> <mid> ...")?;
                    let mut it = v.split_ascii_whitespace();
                    let semantics = it.next().ok_or(LineError::malformed(
                        "a=group",
                        "a=group:<semantics> <mid> ...",
                    ))?;
                    let mids: Vec<&str> = it.collect();
                    if !mids.iter().all(|m| is_token(m)) {
                        return Err(LineError::malformed("a=group", "mids without controls"));
                    }
                    self.groups.push(Group {
                        line,
                        semantics,
                        mids,
                    });
                    Ok(())
                }
                "ice-lite" => {
                    self.ice_lite = true;
                    Ok(())
                }
                "msid-semantic" => {
                    self.msid_semantic = Some(val.unwrap_or_default().trim());
                    Ok(())
                }
                "mid" | "rtpmap" | "fmtp" | "rtcp-fb" | "ssrc" | "ssrc-group" | "rid"
                | "simulcast" | "candidate" | "msid" | "rtcp-mux" | "rtcp-rsize"
                | "bundle-only" => Err(LineError::Misplaced {
                    what: "an m-section attribute at session level",
                }),
                _ => Ok(()),
            };
        };
        // m-section level.
        match name {
            "group" | "ice-lite" | "msid-semantic" => Err(LineError::Misplaced {
                what: "a session-level attribute in an m-section",
            }),
            "mid" => {
                let v = need("a=mid", "a=mid:<token>")?;
                if !is_token(v) {
                    return Err(LineError::malformed("a=mid", "a=mid:<token>"));
                }
                set_once(&mut m.mid, v, "a=mid")
            }
            "rtcp-mux" => {
                m.rtcp_mux = true;
                Ok(())
            }
            "rtcp-rsize" => {
                m.rtcp_rsize = true;
                Ok(())
            }
            "bundle-only" => {
                m.bundle_only = true;
                Ok(())
            }
            "candidate" => {
                let c = parse_candidate(need("a=candidate", CANDIDATE)?)?;
                m.candidates.push(c);
                Ok(())
            }
            "rtpmap" => {
                let v = need("a=rtpmap", RTPMAP)?;
                let Some(r) = parse_rtpmap(v, !m.payload_types.is_empty())? else {
                    return Ok(());
                };
                if m.rtpmaps.iter().any(|x| x.pt == r.pt) {
                    return Err(LineError::DuplicatePayloadType {
                        what: "a=rtpmap",
                        pt: r.pt.0,
                    });
                }
                if m.payload_types.contains(&r.pt) {
                    m.rtpmaps.push(r);
                }
                Ok(())
            }
            "fmtp" => {
                let v = need("a=fmtp", FMTP)?;
                let Some(f) = parse_fmtp(v, !m.payload_types.is_empty())? else {
                    return Ok(());
                };
                if m.fmtps.iter().any(|x| x.pt == f.pt) {
                    return Err(LineError::DuplicatePayloadType {
                        what: "a=fmtp",
                        pt: f.pt.0,
                    });
                }
                if m.payload_types.contains(&f.pt) {
                    m.fmtps.push(f);
                }
                Ok(())
            }
            "rtcp-fb" => {
                let fb = parse_rtcp_fb(need("a=rtcp-fb", RTCP_FB)?)?;
                m.rtcp_fbs.push(fb);
                Ok(())
            }
            "msid" => {
                let v = need("a=msid", "a=msid:<stream id> [<track id>]")?;
                let mut it = v.split_ascii_whitespace();
                let stream = it.next().ok_or(LineError::malformed(
                    "a=msid",
                    "a=msid:<stream id> [<track id>]",
                ))?;
                m.msids.push(Msid {
                    stream,
                    track: it.next(),
                });
                Ok(())
            }
            "ssrc" => {
                let s = parse_ssrc_attr(need("a=ssrc", SSRC)?)?;
                m.ssrcs.push(s);
                Ok(())
            }
            "ssrc-group" => {
                let g = parse_ssrc_group(need("a=ssrc-group", SSRC_GROUP)?)?;
                m.ssrc_groups.push(g);
                Ok(())
            }
            "rid" => {
                let r = parse_rid(need("a=rid", RID)?)?;
                m.rids.push(r);
                Ok(())
            }
            "simulcast" => {
                let s = parse_simulcast(need("a=simulcast", SIMULCAST)?)?;
                set_once(&mut m.simulcast, s, "a=simulcast")
            }
            "sctp-port" => {
                let p = need("a=sctp-port", "a=sctp-port:<port>")?
                    .parse()
                    .map_err(|_| LineError::malformed("a=sctp-port", "a=sctp-port:<port>"))?;
                set_once(&mut m.sctp_port, p, "a=sctp-port")
            }
            "max-message-size" => {
                let expected = "a=max-message-size:<bytes>";
                let n = need("a=max-message-size", expected)?
                    .parse()
                    .map_err(|_| LineError::malformed("a=max-message-size", expected))?;
                set_once(&mut m.max_message_size, n, "a=max-message-size")
            }
            _ => Ok(()),
        }
    }

    fn transport_mut(&mut self) -> &mut TransportAttrs<'a> {
        match self.media.last_mut() {
            Some(m) => &mut m.transport,
            None => &mut self.defaults,
        }
    }

    fn finish(self) -> Result<SessionDescription<'a>, SdpError> {
        if !self.seen_version {
            return Err(SdpError::Missing { what: "v= line" });
        }
        let origin = self.origin.ok_or(SdpError::Missing { what: "o= line" })?;
        let session_name = self
            .session_name
            .ok_or(SdpError::Missing { what: "s= line" })?;
        let mut seen: Vec<&str> = Vec::new();
        for m in &self.media {
            if let Some(mid) = m.mid {
                if seen.contains(&mid) {
                    // Report it on the m-line of the second section.
                    return Err(SdpError::Line {
                        line: m.line,
                        reason: LineError::DuplicateMid(mid.to_owned()),
                    });
                }
                seen.push(mid);
            }
        }
        for g in &self.groups {
            if g.semantics == "BUNDLE"
                && let Some(mid) = g.mids.iter().find(|mid| !seen.contains(mid))
            {
                return Err(SdpError::UnknownBundleMid {
                    line: g.line,
                    mid: (*mid).to_owned(),
                });
            }
        }
        Ok(SessionDescription {
            origin,
            session_name,
            groups: self.groups,
            ice_lite: self.ice_lite,
            defaults: self.defaults,
            direction: self.direction,
            msid_semantic: self.msid_semantic,
            extmap_allow_mixed: self.extmap_allow_mixed,
            extmaps: self.extmaps,
            media: self.media,
        })
    }
}

const ICE_UFRAG: &str = "a=ice-ufrag:<4-256 of A-Z a-z 0-9 + />";
const ICE_PWD: &str = "a=ice-pwd:<22-256 of A-Z a-z 0-9 + />";
const FINGERPRINT: &str = "a=fingerprint:<hash> <hex bytes separated by :>";
const EXTMAP: &str = "a=extmap:<id 1-255>[/<direction>] <uri>";
const CANDIDATE: &str =
    "a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type>";
const RTPMAP: &str = "a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]";
const FMTP: &str = "a=fmtp:<pt> <parameters>";
const RTCP_FB: &str = "a=rtcp-fb:<pt|*> <type> [<parameter>]";
const SSRC: &str = "a=ssrc:<ssrc> <attribute>[:<value>]";
const SSRC_GROUP: &str = "a=ssrc-group:<semantics> <ssrc> ...";
const RID: &str = "a=rid:<id> send|recv [<restrictions>]";
const SIMULCAST: &str = "a=simulcast:send|recv <rid>[,<rid>][;...] [recv|send ...]";

fn set_once<T>(slot: &mut Option<T>, value: T, what: &'static str) -> LineResult {
    if slot.is_some() {
        return Err(LineError::Misplaced { what });
    }
    *slot = Some(value);
    Ok(())
}

/// Visible ASCII, no spaces: safe to write back into an answer.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// RFC 8839 `ice-char`s, `min..=256` of them.
fn is_ice_chars(s: &str, min: usize) -> bool {
    (min..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn parse_pt(s: &str) -> Option<Pt> {
    match s.parse::<u8>() {
        Ok(n) if n <= 127 && s.bytes().all(|b| b.is_ascii_digit()) => Some(Pt(n)),
        _ => None,
    }
}

fn parse_u32(s: &str) -> Option<u32> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn parse_origin(value: &str) -> Result<Origin<'_>, LineError> {
    const EXPECTED: &str = "o=<username> <session id> <version> IN <IP4|IP6> <address>";
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    let [username, session_id, version, "IN", _, address] = f[..] else {
        return Err(LineError::malformed("o=", EXPECTED));
    };
    let session_version = version
        .parse()
        .map_err(|_| LineError::malformed("o=", EXPECTED))?;
    Ok(Origin {
        username,
        session_id,
        session_version,
        address,
    })
}

fn parse_connection(value: &str) -> Result<&str, LineError> {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    match f[..] {
        ["IN", "IP4" | "IP6", addr] => Ok(addr),
        _ => Err(LineError::malformed("c=", "c=IN <IP4|IP6> <address>")),
    }
}

fn parse_media_line(line: usize, value: &str) -> Result<MediaSection<'_>, LineError> {
    const EXPECTED: &str = "m=<media> <port> <protocol> <format> ...";
    let mut it = value.split_ascii_whitespace();
    let (Some(kind), Some(port), Some(protocol)) = (it.next(), it.next(), it.next()) else {
        return Err(LineError::malformed("m=", EXPECTED));
    };
    let formats: Vec<&str> = it.collect();
    if formats.is_empty() || ![kind, protocol].iter().chain(&formats).all(|t| is_token(t)) {
        return Err(LineError::malformed("m=", EXPECTED));
    }
    // `<port>/<number of ports>` is allowed by the grammar; only the port matters.
    let port = port.split_once('/').map_or(port, |(p, _)| p);
    let port = parse_u32(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or(LineError::malformed("m=", EXPECTED))?;
    let kind = match kind {
        "audio" => MediaKind::Audio,
        "video" => MediaKind::Video,
        "application" => MediaKind::Application,
        other => MediaKind::Other(other),
    };
    let payload_types = if protocol.contains("RTP/") {
        formats
            .iter()
            .map(|f| parse_pt(f))
            .collect::<Option<Vec<Pt>>>()
            .ok_or(LineError::malformed(
                "m=",
                "payload type numbers 0-127 after an RTP protocol",
            ))?
    } else {
        Vec::new()
    };
    Ok(MediaSection::new(
        line,
        kind,
        port,
        protocol,
        formats,
        payload_types,
    ))
}

fn parse_fingerprint(v: &str) -> Result<Fingerprint<'_>, LineError> {
    let bad = || LineError::malformed("a=fingerprint", FINGERPRINT);
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    let [algorithm, hex] = f[..] else {
        return Err(bad());
    };
    let digest = hex
        .split(':')
        .map(|byte| {
            if byte.len() == 2 && byte.bytes().all(|b| b.is_ascii_hexdigit()) {
                u8::from_str_radix(byte, 16).ok()
            } else {
                None
            }
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let expected_len = match algorithm.to_ascii_lowercase().as_str() {
        "sha-1" => Some(20),
        "sha-224" => Some(28),
        "sha-256" => Some(32),
        "sha-384" => Some(48),
        "sha-512" => Some(64),
        "md5" | "md2" => Some(16),
        _ => None,
    };
    let len_ok = match expected_len {
        Some(n) => digest.len() == n,
        None => (1..=64).contains(&digest.len()),
    };
    if !len_ok || !is_token(algorithm) {
        return Err(LineError::malformed(
            "a=fingerprint",
            "as many digest bytes as the hash function gives",
        ));
    }
    Ok(Fingerprint { algorithm, digest })
}

fn parse_direction(s: &str) -> Option<Direction> {
    match s {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    }
}

fn parse_extmap(v: &str) -> Result<ExtMap<'_>, LineError> {
    let bad = || LineError::malformed("a=extmap", EXTMAP);
    let mut it = v.split_ascii_whitespace();
    let (Some(id), Some(uri)) = (it.next(), it.next()) else {
        return Err(bad());
    };
    let (id, direction) = match id.split_once('/') {
        Some((id, d)) => (id, Some(parse_direction(d).ok_or_else(bad)?)),
        None => (id, None),
    };
    let id = parse_u32(id)
        .and_then(|n| u8::try_from(n).ok())
        .filter(|&n| n != 0)
        .ok_or_else(bad)?;
    Ok(ExtMap { id, direction, uri })
}

fn parse_candidate(v: &str) -> Result<Candidate<'_>, LineError> {
    let bad = || LineError::malformed("a=candidate", CANDIDATE);
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    let [
        foundation,
        component,
        transport,
        priority,
        address,
        port,
        "typ",
        typ,
        ..,
    ] = f[..]
    else {
        return Err(bad());
    };
    Ok(Candidate {
        foundation,
        component: parse_u32(component)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(bad)?,
        transport,
        priority: parse_u32(priority).ok_or_else(bad)?,
        address,
        port: parse_u32(port)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(bad)?,
        typ,
    })
}

/// `Ok(None)`: a non-numeric format in a non-RTP m-section (skipped).
fn parse_rtpmap(v: &str, rtp: bool) -> Result<Option<RtpMap<'_>>, LineError> {
    let bad = || LineError::malformed("a=rtpmap", RTPMAP);
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    let [pt, codec] = f[..] else {
        return Err(bad());
    };
    let Some(pt) = parse_pt(pt) else {
        return if rtp { Err(bad()) } else { Ok(None) };
    };
    let mut parts = codec.split('/');
    let (Some(encoding), Some(rate)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    let clock_rate = parse_u32(rate).filter(|&r| r > 0).ok_or_else(bad)?;
    let channels = match parts.next() {
        Some(c) => Some(
            parse_u32(c)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or_else(bad)?,
        ),
        None => None,
    };
    if parts.next().is_some() || encoding.is_empty() {
        return Err(bad());
    }
    Ok(Some(RtpMap {
        pt,
        encoding,
        clock_rate,
        channels,
    }))
}

fn parse_fmtp(v: &str, rtp: bool) -> Result<Option<Fmtp<'_>>, LineError> {
    let bad = || LineError::malformed("a=fmtp", FMTP);
    let (pt, params) = v.split_once([' ', '\t']).ok_or_else(bad)?;
    let Some(pt) = parse_pt(pt) else {
        return if rtp { Err(bad()) } else { Ok(None) };
    };
    let params = params.trim();
    if params.is_empty() {
        return Err(bad());
    }
    Ok(Some(Fmtp { pt, params }))
}

fn parse_rtcp_fb(v: &str) -> Result<RtcpFb<'_>, LineError> {
    let bad = || LineError::malformed("a=rtcp-fb", RTCP_FB);
    let mut it = v.split_ascii_whitespace();
    let (Some(pt), Some(kind)) = (it.next(), it.next()) else {
        return Err(bad());
    };
    let pt = match pt {
        "*" => None,
        pt => Some(parse_pt(pt).ok_or_else(bad)?),
    };
    Ok(RtcpFb {
        pt,
        kind,
        param: it.next(),
    })
}

fn parse_ssrc(s: &str) -> Option<Ssrc> {
    parse_u32(s).map(Ssrc)
}

fn parse_ssrc_attr(v: &str) -> Result<SsrcAttr<'_>, LineError> {
    let bad = || LineError::malformed("a=ssrc", SSRC);
    let (ssrc, rest) = v.split_once(' ').ok_or_else(bad)?;
    let ssrc = parse_ssrc(ssrc).ok_or_else(bad)?;
    let rest = rest.trim();
    let (attribute, value) = match rest.split_once(':') {
        Some((a, v)) => (a, Some(v)),
        None => (rest, None),
    };
    if !is_token(attribute) {
        return Err(bad());
    }
    Ok(SsrcAttr {
        ssrc,
        attribute,
        value,
    })
}

fn parse_ssrc_group(v: &str) -> Result<SsrcGroup<'_>, LineError> {
    let bad = || LineError::malformed("a=ssrc-group", SSRC_GROUP);
    let mut it = v.split_ascii_whitespace();
    let semantics = it.next().ok_or_else(bad)?;
    let ssrcs = it
        .map(parse_ssrc)
        .collect::<Option<Vec<Ssrc>>>()
        .ok_or_else(bad)?;
    if ssrcs.is_empty() {
        return Err(bad());
    }
    Ok(SsrcGroup { semantics, ssrcs })
}

fn parse_rid(v: &str) -> Result<Rid<'_>, LineError> {
    let bad = || LineError::malformed("a=rid", RID);
    let mut it = v.split_ascii_whitespace();
    let (Some(id), Some(dir)) = (it.next(), it.next()) else {
        return Err(bad());
    };
    let send = match dir {
        "send" => true,
        "recv" => false,
        _ => return Err(bad()),
    };
    if !is_rid_id(id) {
        return Err(bad());
    }
    Ok(Rid {
        id,
        send,
        restrictions: it.next(),
    })
}

/// RFC 8851 `rid-id`: alphanumerics, `-` and `_`.
fn is_rid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn parse_simulcast(v: &str) -> Result<Simulcast<'_>, LineError> {
    let bad = || LineError::malformed("a=simulcast", SIMULCAST);
    let f: Vec<&str> = v.split_ascii_whitespace().collect();
    if f.is_empty() || !f.len().is_multiple_of(2) || f.len() > 4 {
        return Err(bad());
    }
    let mut out = Simulcast::default();
    let (mut saw_send, mut saw_recv) = (false, false);
    for pair in f.chunks(2) {
        let [dir, list] = pair else {
            return Err(bad());
        };
        let streams = list
            .split(';')
            .map(|stream| {
                stream
                    .split(',')
                    .map(|alt| {
                        let (paused, id) = match alt.strip_prefix('~') {
                            Some(id) => (true, id),
                            None => (false, alt),
                        };
                        is_rid_id(id).then_some(SimulcastRid { id, paused })
                    })
                    .collect::<Option<Vec<_>>>()
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?;
        match *dir {
            "send" if !saw_send => {
                saw_send = true;
                out.send = streams;
            }
            "recv" if !saw_recv => {
                saw_recv = true;
                out.recv = streams;
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::model::fmtp_params;

    #[test]
    fn attribute_grammars() {
        let c = parse_candidate(
            "842163049 1 udp 1677729535 198.51.100.77 54400 typ srflx raddr 0.0.0.0 rport 0 generation 0",
        )
        .unwrap();
        assert_eq!(
            (c.foundation, c.component, c.transport, c.priority),
            ("842163049", 1, "udp", 1677729535)
        );
        assert_eq!(
            (c.address, c.port, c.typ),
            ("198.51.100.77", 54400, "srflx")
        );
        assert!(parse_candidate("1 1 udp 1 a.local 70000 typ host").is_err());
        assert!(parse_candidate("1 1 udp 1 a.local 9 type host").is_err());

        let s = parse_simulcast("send 1,2;~3 recv 4").unwrap();
        assert_eq!(s.send.len(), 2);
        assert_eq!(
            s.send[0].iter().map(|r| r.id).collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert!(s.send[1][0].paused && s.send[1][0].id == "3");
        assert_eq!(s.recv[0][0].id, "4");
        for bad in [
            "send",
            "send a send b",
            "sideways a",
            "send a;;b",
            "send ~",
            "send a b c",
        ] {
            assert!(parse_simulcast(bad).is_err(), "{bad}");
        }

        let e = parse_extmap("2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level").unwrap();
        assert_eq!((e.id, e.direction), (2, Some(Direction::RecvOnly)));
        assert!(parse_extmap("256 urn:x").is_err() && parse_extmap("1/up urn:x").is_err());

        let a = parse_ssrc_attr("2231627014 msid:stream track").unwrap();
        assert_eq!(
            (a.ssrc, a.attribute, a.value),
            (Ssrc(2231627014), "msid", Some("stream track"))
        );
        assert!(parse_ssrc_attr("4294967296 cname:x").is_err());

        let r = parse_rtpmap("111 opus/48000/2", true).unwrap().unwrap();
        assert_eq!(
            (r.pt, r.encoding, r.clock_rate, r.channels),
            (Pt(111), "opus", 48000, Some(2))
        );
        assert_eq!(parse_rtpmap("webrtc-datachannel x/1", false), Ok(None));
        assert!(parse_rtpmap("96 VP8/0", true).is_err());
        assert!(parse_rtpmap("96 VP8/90000/1/2", true).is_err());

        let params: Vec<_> = fmtp_params(
            " level-asymmetry-allowed=1; packetization-mode=1 ;profile-level-id=42e01f;x",
        )
        .collect();
        assert_eq!(
            params,
            [
                ("level-asymmetry-allowed", "1"),
                ("packetization-mode", "1"),
                ("profile-level-id", "42e01f"),
                ("x", "")
            ]
        );
        let fp =
            parse_fingerprint("SHA-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33")
                .unwrap();
        assert_eq!((fp.algorithm, fp.digest.len()), ("SHA-1", 20));
        assert!(parse_fingerprint("sha-256 00:11").is_err());
        assert!(parse_fingerprint("x-new 0G").is_err());
    }

    #[test]
    fn duplicate_extmap_ids_are_malformed() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 RTP/AVP 0\r\n\
                   a=extmap:1 urn:a\r\na=extmap:1 urn:b\r\n";
        assert_eq!(
            parse(sdp),
            Err(SdpError::Line {
                line: 6,
                reason: LineError::DuplicateExtmapId(1)
            })
        );
        let ok = sdp.replace("extmap:1 urn:b", "extmap:2 urn:b");
        assert_eq!(parse(&ok).unwrap().media[0].extmaps.len(), 2);
    }
}
