//! Malformed input for every packet type: truncated at every length, wrong version,
//! overrunning lengths, padding longer than the payload, bad attribute lengths. Each gets a
//! typed error, never a panic and never a bogus success.

use std::net::SocketAddr;
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtcp::{self, *};
use supernode_media::packet::rtp::{RtpError, RtpHeader, RtpPacket};
use supernode_media::packet::stun::{self, *};

// ---------------------------------------------------------------- RTP

fn full_rtp() -> Vec<u8> {
    let h = RtpHeader {
        marker: true,
        payload_type: Pt(96),
        sequence_number: 1,
        timestamp: 2,
        ssrc: Ssrc(3),
        csrcs: vec![Ssrc(4), Ssrc(5)],
        extensions: vec![(1, vec![0xaa]), (2, vec![1, 2, 3])],
        padding: 4,
        ..RtpHeader::default()
    };
    let mut out = vec![0u8; 128];
    let n = h.write(b"payload!", &mut out).unwrap();
    out.truncate(n);
    out
}

#[test]
fn rtp_truncated_at_every_length_is_an_error() {
    let pkt = full_rtp();
    let p = RtpPacket::parse(&pkt).unwrap();
    assert_eq!(
        (p.header_len(), p.payload(), p.padding_len()),
        (32, &b"payload!"[..], 4)
    );
    for cut in 0..pkt.len() {
        let err = RtpPacket::parse(&pkt[..cut]).unwrap_err();
        let want = match cut {
            0..12 => RtpError::TooShort,
            12..20 => RtpError::CsrcOverrun,
            20..32 => RtpError::ExtensionOverrun,
            _ => RtpError::BadPadding, // the last byte read as a padding count is wrong
        };
        assert_eq!(err, want, "cut at {cut}");
    }
}

#[test]
fn rtp_wrong_version_and_padding() {
    let pkt = full_rtp();
    for v in [0u8, 1, 3] {
        let mut b = pkt.clone();
        b[0] = (b[0] & 0x3f) | (v << 6);
        assert_eq!(RtpPacket::parse(&b), Err(RtpError::BadVersion(v)));
    }
    let mut b = pkt.clone();
    let last = b.len() - 1;
    b[last] = (b.len() - 32 + 1) as u8; // one more than header-less bytes
    assert_eq!(RtpPacket::parse(&b), Err(RtpError::BadPadding));
    b[last] = (b.len() - 32) as u8; // padding eats the whole payload: allowed
    assert_eq!(RtpPacket::parse(&b).unwrap().payload(), b"");
    b[last] = 0;
    assert_eq!(RtpPacket::parse(&b), Err(RtpError::BadPadding));
    // Extension length field pointing past the end.
    let mut b = pkt.clone();
    b[23] = 200;
    assert_eq!(RtpPacket::parse(&b), Err(RtpError::ExtensionOverrun));
    // CSRC count of 15 in a short packet.
    let mut b = pkt;
    b[0] |= 0x0f;
    assert_eq!(RtpPacket::parse(&b), Err(RtpError::CsrcOverrun));
}

#[test]
fn rtp_extension_element_overruns_its_block() {
    let mut b = full_rtp();
    // One-byte block starts at 20: header at 20..24, elements at 24.
    assert_eq!(&b[20..22], &[0xbe, 0xde]);
    b[26] = 0x2f; // element 2 claims 16 bytes
    assert_eq!(RtpPacket::parse(&b), Err(RtpError::ExtensionElementOverrun));
    let h = RtpHeader {
        extensions: vec![(7, vec![0; 300])],
        ..RtpHeader::default()
    };
    assert_eq!(h.write(&[], &mut [0u8; 512]), Err(RtpError::BadExtension));
}

// ---------------------------------------------------------------- RTCP

fn write(p: RtcpPacket<'_>) -> Vec<u8> {
    let mut out = vec![0u8; 512];
    let n = p.write(&mut out).unwrap();
    out.truncate(n);
    out
}

/// One sample of every packet type whose layout fixes its length, with its packet type.
fn samples() -> Vec<(&'static str, u8, Vec<u8>)> {
    let blocks = [ReportBlock {
        ssrc: Ssrc(9),
        ..Default::default()
    }; 2];
    let items = [SdesItem {
        kind: 1,
        text: b"user@host",
    }];
    let chunks = [SdesChunk {
        ssrc: Ssrc(1),
        items: SdesItems::Items(&items),
    }];
    let srcs = [Ssrc(1), Ssrc(2)];
    let pairs = [NackPair { pid: 5, blp: 3 }];
    let firs = [FirEntry {
        ssrc: Ssrc(2),
        seq: 1,
    }];
    let statuses = [
        TwccStatus::Received(4),
        TwccStatus::NotReceived,
        TwccStatus::Received(-400),
    ];
    let mut remb = Remb {
        ssrcs: WireList::Items(&srcs),
        ..Default::default()
    };
    remb.set_bitrate(1_000_000);
    vec![
        (
            "sr",
            PT_SR,
            write(RtcpPacket::SenderReport(SenderReport {
                ssrc: Ssrc(1),
                reports: WireList::Items(&blocks),
                ..Default::default()
            })),
        ),
        (
            "rr",
            PT_RR,
            write(RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: Ssrc(1),
                reports: WireList::Items(&blocks),
                ..Default::default()
            })),
        ),
        (
            "sdes",
            PT_SDES,
            write(RtcpPacket::Sdes(Sdes {
                chunks: SdesChunks::Items(&chunks),
            })),
        ),
        (
            "bye",
            PT_BYE,
            write(RtcpPacket::Bye(Bye {
                sources: WireList::Items(&srcs),
                reason: Some(b"bye"),
            })),
        ),
        (
            "nack",
            PT_RTPFB,
            write(RtcpPacket::Nack(Nack {
                pairs: WireList::Items(&pairs),
                ..Default::default()
            })),
        ),
        ("pli", PT_PSFB, write(RtcpPacket::Pli(Pli::default()))),
        (
            "fir",
            PT_PSFB,
            write(RtcpPacket::Fir(Fir {
                entries: WireList::Items(&firs),
                ..Default::default()
            })),
        ),
        ("remb", PT_PSFB, write(RtcpPacket::Remb(remb))),
        (
            "twcc",
            PT_RTPFB,
            write(RtcpPacket::TransportFeedback(TransportFeedback {
                sender_ssrc: Ssrc(1),
                media_ssrc: Ssrc(2),
                base_seq: 10,
                reference_time: -5,
                fb_pkt_count: 1,
                packets: TwccPackets::Items(&statuses),
            })),
        ),
    ]
}

fn first(buf: &[u8]) -> Result<RtcpPacket<'_>, RtcpError> {
    RtcpCompound::parse(buf).next().expect("one item")
}

#[test]
fn rtcp_truncated_datagram_is_an_error_for_every_type() {
    for (name, _, pkt) in samples() {
        assert!(first(&pkt).is_ok(), "{name} sample parses");
        for cut in 1..pkt.len() {
            let err = first(&pkt[..cut]).unwrap_err();
            let want = if cut < 4 {
                RtcpError::TooShort
            } else {
                RtcpError::LengthOverrun
            };
            assert_eq!(err, want, "{name} cut at {cut}");
            assert!(validate_compound(&pkt[..cut]).is_err());
        }
    }
}

#[test]
fn rtcp_body_shortened_with_consistent_length_is_malformed_for_every_type() {
    for (name, pt, pkt) in samples() {
        for len in (4..pkt.len()).step_by(4) {
            if name == "bye" && len == 12 {
                continue; // both sources without the reason: a valid BYE
            }
            if name == "remb" && len < 16 {
                continue; // "REMB" cut off: a generic application-layer feedback, kept opaque
            }
            let mut b = pkt[..len].to_vec();
            b[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
            assert_eq!(
                first(&b),
                Err(RtcpError::Malformed(pt)),
                "{name} shortened to {len}"
            );
        }
    }
}

#[test]
fn rtcp_wrong_version_and_bad_padding_for_every_type() {
    for (name, _, pkt) in samples() {
        for v in [0u8, 1, 3] {
            let mut b = pkt.clone();
            b[0] = (b[0] & 0x3f) | (v << 6);
            assert_eq!(
                first(&b),
                Err(RtcpError::BadVersion(v)),
                "{name} version {v}"
            );
        }
        let mut b = pkt.clone();
        b[0] |= 0x20;
        let last = b.len() - 1;
        b[last] = 0;
        assert_eq!(first(&b), Err(RtcpError::BadPadding), "{name} zero padding");
        b[last] = 255;
        let r = first(&b);
        if pkt.len() - 4 < 255 {
            assert_eq!(
                r,
                Err(RtcpError::BadPadding),
                "{name} padding past the body"
            );
        }
        // Length field overrunning the datagram.
        let mut b = pkt.clone();
        b[2] = 0xff;
        assert_eq!(
            first(&b),
            Err(RtcpError::LengthOverrun),
            "{name} length overrun"
        );
    }
}

#[test]
fn rtcp_compound_rules() {
    let s = samples();
    let rr = &s[1].2;
    let nack = &s[4].2;
    let mut ok = rr.clone();
    ok.extend_from_slice(nack);
    validate_compound(&ok).unwrap();
    let mut bad = nack.clone();
    bad.extend_from_slice(rr);
    assert_eq!(validate_compound(&bad), Err(RtcpError::FirstNotReport));
    // Padding in the first of two packets.
    let mut padded = rr.clone();
    padded.extend_from_slice(&[0, 0, 0, 4]);
    padded[0] |= 0x20;
    let words = (padded.len() / 4 - 1) as u16;
    padded[2..4].copy_from_slice(&words.to_be_bytes());
    validate_compound(&padded).unwrap();
    padded.extend_from_slice(nack);
    assert_eq!(validate_compound(&padded), Err(RtcpError::PaddingNotLast));
    // The lenient walk still reads both.
    assert_eq!(
        RtcpCompound::parse(&padded).filter(Result::is_ok).count(),
        2
    );
    assert_eq!(validate_compound(&[]), Err(RtcpError::Empty));
}

#[test]
fn rtcp_writers_refuse_unrepresentable_values() {
    let blocks = [ReportBlock::default(); 32];
    let rr = ReceiverReport {
        reports: WireList::Items(&blocks),
        ..Default::default()
    };
    assert_eq!(rr.write(&mut [0u8; 1024]), Err(RtcpError::TooMany));
    let app = App {
        data: b"abc",
        ..Default::default()
    };
    assert_eq!(app.write(&mut [0u8; 64]), Err(RtcpError::BadValue));
    let nack = Nack::default();
    assert_eq!(nack.write(&mut [0u8; 64]), Err(RtcpError::BadValue));
    let pli = Pli::default();
    assert_eq!(pli.write(&mut [0u8; 11]), Err(RtcpError::BufferTooSmall));
    let long = [0u8; 256];
    let bye = Bye {
        reason: Some(&long),
        ..Default::default()
    };
    assert_eq!(bye.write(&mut [0u8; 512]), Err(RtcpError::BadValue));
    let _ = rtcp::PT_APP;
}

// ---------------------------------------------------------------- STUN

const PASSWORD: &[u8] = b"secret";

fn stun_request() -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([1; 12]),
    )
    .unwrap();
    w.add(&StunAttr::Username(b"remote:local")).unwrap(); // 20..36
    w.add(&StunAttr::Priority(1)).unwrap(); // 36..44
    w.add(&StunAttr::IceControlling(2)).unwrap(); // 44..56
    w.add(&StunAttr::UseCandidate).unwrap(); // 56..60
    w.add_message_integrity(PASSWORD).unwrap(); // 60..84
    w.add_fingerprint().unwrap(); // 84..92
    let n = w.finish();
    buf.truncate(n);
    buf
}

#[test]
fn stun_truncated_at_every_length_is_an_error() {
    let m = stun_request();
    let boundaries = [20usize, 36, 44, 56, 60, 84, 92];
    for cut in 0..m.len() {
        let err = StunMessage::parse(&m[..cut]).unwrap_err();
        let want = if cut < 20 {
            StunError::TooShort
        } else {
            StunError::BadLength
        };
        assert_eq!(err, want, "cut at {cut}");
        // Same cut with the length field made consistent: only whole attributes parse.
        if cut >= 20 && cut % 4 == 0 {
            let mut b = m[..cut].to_vec();
            b[2..4].copy_from_slice(&((cut - 20) as u16).to_be_bytes());
            let r = StunMessage::parse(&b);
            assert_eq!(
                r.is_ok(),
                boundaries.contains(&cut),
                "consistent cut at {cut}: {r:?}"
            );
            if let Err(e) = r {
                assert_eq!(e, StunError::AttributeOverrun);
            }
        }
    }
}

#[test]
fn stun_header_errors() {
    let m = stun_request();
    let mut b = m.clone();
    b[0] |= 0x80;
    assert_eq!(StunMessage::parse(&b), Err(StunError::NotStun));
    let mut b = m.clone();
    b[4] ^= 1;
    assert_eq!(StunMessage::parse(&b), Err(StunError::BadMagic));
    let mut b = m.clone();
    b[3] += 2;
    assert_eq!(StunMessage::parse(&b), Err(StunError::BadLength));
    let mut b = m;
    b.extend_from_slice(&[0; 4]);
    assert_eq!(StunMessage::parse(&b), Err(StunError::BadLength));
}

/// A message holding one raw attribute.
fn with_attr(typ: u16, value: &[u8]) -> Vec<u8> {
    let mut attr = Vec::new();
    attr.extend_from_slice(&typ.to_be_bytes());
    attr.extend_from_slice(&(value.len() as u16).to_be_bytes());
    attr.extend_from_slice(value);
    attr.resize(4 + value.len().div_ceil(4) * 4, 0);
    let mut m = vec![0, 1];
    m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
    m.extend_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&attr);
    m
}

#[test]
fn stun_bad_attribute_lengths_are_typed_errors() {
    use stun::attr_type::*;
    let cases: &[(u16, &[u8])] = &[
        (XOR_MAPPED_ADDRESS, &[0, 1, 0, 0, 1, 2, 3]),
        (XOR_MAPPED_ADDRESS, &[0, 3, 0, 0, 1, 2, 3, 4]),
        (XOR_MAPPED_ADDRESS, &[0, 2, 0, 0, 1, 2, 3, 4]),
        (MAPPED_ADDRESS, &[0, 1, 0]),
        (MESSAGE_INTEGRITY, &[0; 19]),
        (MESSAGE_INTEGRITY_SHA256, &[0; 12]),
        (MESSAGE_INTEGRITY_SHA256, &[0; 18]),
        (FINGERPRINT, &[0; 5]),
        (PRIORITY, &[0; 3]),
        (USE_CANDIDATE, &[0]),
        (ICE_CONTROLLED, &[0; 7]),
        (ICE_CONTROLLING, &[0; 9]),
        (ERROR_CODE, &[0, 0, 4]),
        (ERROR_CODE, &[0, 0, 7, 1]),
        (ERROR_CODE, &[0, 0, 4, 100]),
        (USERNAME, &[b'a'; 513]),
    ];
    for &(typ, value) in cases {
        assert_eq!(
            StunMessage::parse(&with_attr(typ, value)),
            Err(StunError::BadAttribute(typ)),
            "attribute {typ:#06x} with {} bytes",
            value.len()
        );
    }
    // An attribute length running past the message.
    let mut m = with_attr(PRIORITY, &[0; 4]);
    m[22..24].copy_from_slice(&8u16.to_be_bytes());
    assert_eq!(StunMessage::parse(&m), Err(StunError::AttributeOverrun));
    // Unknown attributes of any length are kept.
    let m = with_attr(0x7777, &[1, 2, 3]);
    let parsed = StunMessage::parse(&m).unwrap();
    assert_eq!(
        parsed.attributes().next(),
        Some(StunAttr::Unknown {
            typ: 0x7777,
            value: &[1, 2, 3]
        })
    );
}

#[test]
fn stun_fingerprint_must_be_last_and_late_attributes_are_ignored() {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([1; 12]),
    )
    .unwrap();
    w.add(&StunAttr::Priority(1)).unwrap();
    w.add_message_integrity(PASSWORD).unwrap();
    w.add(&StunAttr::Username(b"late")).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    let m = StunMessage::parse(&buf[..n]).unwrap();
    assert_eq!(
        m.username(),
        None,
        "USERNAME after MESSAGE-INTEGRITY is ignored"
    );
    m.verify_fingerprint().unwrap();
    // The HMAC covers only what precedes it, so it still verifies.
    m.verify_integrity(PASSWORD).unwrap();
    let mut more = buf[..n].to_vec();
    more.extend_from_slice(&[0x00, 0x24, 0, 4, 0, 0, 0, 1]);
    let len = (more.len() - 20) as u16;
    more[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        StunMessage::parse(&more),
        Err(StunError::FingerprintNotLast)
    );
    let addr: SocketAddr = "10.0.0.1:9".parse().unwrap();
    let plain = with_attr(0x0020, &[0, 1, 0, 9, 10, 0, 0, 1]);
    assert_ne!(
        StunMessage::parse(&plain).unwrap().xor_mapped_address(),
        Some(addr)
    );
    assert_eq!(
        StunMessage::parse(&plain).unwrap().verify_fingerprint(),
        Err(StunError::NoFingerprint)
    );
}
