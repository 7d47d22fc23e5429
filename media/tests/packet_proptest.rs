//! Write-then-parse round trips (proptest) for RTP, every RTCP packet type and STUN.

use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtcp::*;
use supernode_media::packet::rtp::{ExtensionForm, RtpHeader, RtpPacket};
use supernode_media::packet::stun::{self, *};

// ---------------------------------------------------------------- RTP

fn extensions() -> impl Strategy<Value = (Vec<(u8, Vec<u8>)>, ExtensionForm)> {
    prop_oneof![
        prop::collection::vec((1u8..=14, prop::collection::vec(any::<u8>(), 1..=16)), 0..6)
            .prop_map(|e| (e, ExtensionForm::Auto)),
        prop::collection::vec(
            (1u8..=255, prop::collection::vec(any::<u8>(), 0..=40)),
            1..6
        )
        .prop_map(|e| (e, ExtensionForm::TwoByte)),
    ]
}

fn rtp_header() -> impl Strategy<Value = RtpHeader> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u32>(), 0..=15),
        extensions(),
        any::<u8>(),
    )
        .prop_map(
            |(marker, pt, seq, ts, ssrc, csrcs, (extensions, form), padding)| RtpHeader {
                marker,
                payload_type: Pt(pt),
                sequence_number: seq,
                timestamp: ts,
                ssrc: Ssrc(ssrc),
                csrcs: csrcs.into_iter().map(Ssrc).collect(),
                extensions,
                extension_form: form,
                padding,
            },
        )
}

proptest! {
    #[test]
    fn rtp_write_then_parse(h in rtp_header(), payload in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut out = vec![0u8; 2048];
        let n = h.write(&payload, &mut out).unwrap();
        prop_assert_eq!(n, h.header_len().unwrap() + payload.len() + h.padding as usize);
        let p = RtpPacket::parse(&out[..n]).unwrap();
        prop_assert_eq!(p.payload(), &payload[..]);
        let mut back = RtpHeader::from_packet(&p);
        prop_assert_eq!(back.extension_form == ExtensionForm::TwoByte,
            h.extension_form == ExtensionForm::TwoByte && !h.extensions.is_empty());
        back.extension_form = h.extension_form;
        prop_assert_eq!(back, h);
    }
}

// ---------------------------------------------------------------- RTCP

/// Owned data from which every RTCP packet type is built (packets borrow it).
#[derive(Debug, Clone)]
struct Owned {
    ssrcs: Vec<Ssrc>,
    blocks: Vec<ReportBlock>,
    ext: Vec<u8>,
    texts: Vec<(u8, Vec<u8>)>,
    reason: Option<Vec<u8>>,
    pairs: Vec<NackPair>,
    firs: Vec<FirEntry>,
    twcc: Vec<TwccStatus>,
    app_data: Vec<u8>,
    unknown_body: Vec<u8>,
    words: [u32; 6],
    small: [u8; 4],
    reference_time: i32,
}

fn owned() -> impl Strategy<Value = Owned> {
    let block = (
        any::<u32>(),
        any::<u8>(),
        -(1i32 << 23)..(1 << 23),
        any::<[u32; 4]>(),
    )
        .prop_map(|(s, f, c, w)| ReportBlock {
            ssrc: Ssrc(s),
            fraction_lost: f,
            cumulative_lost: c,
            extended_highest_seq: w[0],
            jitter: w[1],
            last_sr: w[2],
            delay_since_last_sr: w[3],
        });
    let twcc = prop_oneof![
        Just(TwccStatus::NotReceived),
        (0i16..=255).prop_map(TwccStatus::Received),
        any::<i16>().prop_map(TwccStatus::Received),
    ];
    (
        (
            prop::collection::vec(any::<u32>().prop_map(Ssrc), 0..=31),
            prop::collection::vec(block, 0..=31),
            prop::collection::vec(any::<[u8; 4]>(), 0..4).prop_map(|v| v.concat()),
            prop::collection::vec(
                (1u8..=255, prop::collection::vec(any::<u8>(), 0..=255)),
                0..4,
            ),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..=255)),
        ),
        (
            prop::collection::vec(
                (any::<u16>(), any::<u16>()).prop_map(|(pid, blp)| NackPair { pid, blp }),
                1..20,
            ),
            prop::collection::vec(
                (any::<u32>(), any::<u8>()).prop_map(|(s, seq)| FirEntry { ssrc: Ssrc(s), seq }),
                1..5,
            ),
            // Runs of equal statuses, so run-length and both vector chunk kinds all appear.
            prop::collection::vec((twcc, 1usize..20), 0..40).prop_map(|runs| {
                runs.into_iter()
                    .flat_map(|(s, n)| std::iter::repeat_n(s, n))
                    .collect()
            }),
            prop::collection::vec(any::<[u8; 4]>(), 0..4).prop_map(|v| v.concat()),
            prop::collection::vec(any::<u8>(), 0..40),
            any::<[u32; 6]>(),
            any::<[u8; 4]>(),
            -(1i32 << 23)..(1 << 23),
        ),
    )
        .prop_map(
            |(
                (ssrcs, blocks, ext, texts, reason),
                (pairs, firs, twcc, app_data, unknown_body, words, small, reference_time),
            )| Owned {
                ssrcs,
                blocks,
                ext,
                texts,
                reason,
                pairs,
                firs,
                twcc,
                app_data,
                unknown_body,
                words,
                small,
                reference_time,
            },
        )
}

fn all_packets<'a>(o: &'a Owned, chunks: &'a [SdesChunk<'a>]) -> Vec<RtcpPacket<'a>> {
    let w = o.words;
    let mut remb = Remb {
        sender_ssrc: Ssrc(w[0]),
        media_ssrc: Ssrc(w[1]),
        ssrcs: WireList::Items(&o.ssrcs),
        ..Default::default()
    };
    remb.set_bitrate(((w[2] as u64) << 20) | w[3] as u64);
    vec![
        RtcpPacket::SenderReport(SenderReport {
            ssrc: Ssrc(w[0]),
            ntp_time: ((w[1] as u64) << 32) | w[2] as u64,
            rtp_time: w[3],
            packet_count: w[4],
            octet_count: w[5],
            reports: WireList::Items(&o.blocks),
            profile_extension: &o.ext,
        }),
        RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: Ssrc(w[1]),
            reports: WireList::Items(&o.blocks),
            profile_extension: &o.ext,
        }),
        RtcpPacket::Sdes(Sdes {
            chunks: SdesChunks::Items(chunks),
        }),
        RtcpPacket::Sdes(Sdes {
            chunks: SdesChunks::Items(&chunks[..0]),
        }),
        RtcpPacket::Bye(Bye {
            sources: WireList::Items(&o.ssrcs),
            reason: o.reason.as_deref(),
        }),
        RtcpPacket::App(App {
            subtype: o.small[0] & 0x1f,
            ssrc: Ssrc(w[2]),
            name: o.small,
            data: &o.app_data,
        }),
        RtcpPacket::Nack(Nack {
            sender_ssrc: Ssrc(w[0]),
            media_ssrc: Ssrc(w[1]),
            pairs: WireList::Items(&o.pairs),
        }),
        RtcpPacket::Pli(Pli {
            sender_ssrc: Ssrc(w[3]),
            media_ssrc: Ssrc(w[4]),
        }),
        RtcpPacket::Fir(Fir {
            sender_ssrc: Ssrc(w[5]),
            media_ssrc: Ssrc(0),
            entries: WireList::Items(&o.firs),
        }),
        RtcpPacket::Remb(remb),
        RtcpPacket::TransportFeedback(TransportFeedback {
            sender_ssrc: Ssrc(w[0]),
            media_ssrc: Ssrc(w[1]),
            base_seq: w[2] as u16,
            reference_time: o.reference_time,
            fb_pkt_count: o.small[1],
            packets: TwccPackets::Items(&o.twcc),
        }),
        RtcpPacket::Unknown(UnknownPacket {
            // 207..=255: no type this module parses.
            packet_type: 207 + o.small[2] % 49,
            count: o.small[3] & 0x1f,
            body: &o.unknown_body,
        }),
    ]
}

proptest! {
    #[test]
    fn rtcp_every_type_write_then_parse(o in owned()) {
        let items: Vec<SdesItem<'_>> = o.texts.iter().map(|(k, t)| SdesItem { kind: *k, text: t }).collect();
        let chunks: Vec<SdesChunk<'_>> = o.ssrcs.iter().map(|s| SdesChunk { ssrc: *s, items: SdesItems::Items(&items) }).collect();
        let packets = all_packets(&o, &chunks);
        let mut out = vec![0u8; 64 * 1024];
        // Each packet alone, then all of them as one compound.
        for p in &packets {
            let n = p.write(&mut out).unwrap();
            prop_assert_eq!(n, p.wire_len());
            let back: Vec<_> = RtcpCompound::parse(&out[..n]).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(&back, &vec![*p]);
        }
        let n = write_compound(&packets, &mut out).unwrap();
        let back: Vec<_> = RtcpCompound::parse(&out[..n]).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&back, &packets);
        validate_compound(&out[..n]).unwrap();
    }

    #[test]
    fn nack_pack_expands_to_the_same_set(mut lost in prop::collection::vec(any::<u16>(), 1..100)) {
        lost.sort_unstable();
        lost.dedup();
        let mut pairs = vec![NackPair::default(); lost.len()];
        let n = Nack::pack(lost.iter().copied(), &mut pairs).unwrap();
        let nack = Nack { pairs: WireList::Items(&pairs[..n]), ..Default::default() };
        let mut got: Vec<u16> = nack.lost().collect();
        got.sort_unstable();
        got.dedup();
        prop_assert_eq!(got, lost);
    }
}

// ---------------------------------------------------------------- STUN

#[derive(Debug, Clone)]
enum OwnedAttr {
    Username(Vec<u8>),
    Software(Vec<u8>),
    Priority(u32),
    UseCandidate,
    Controlled(u64),
    Controlling(u64),
    Xor(SocketAddr),
    Mapped(SocketAddr),
    Error(u16, Vec<u8>),
    Unknown(u16, Vec<u8>),
}

impl OwnedAttr {
    fn view(&self) -> StunAttr<'_> {
        match self {
            OwnedAttr::Username(v) => StunAttr::Username(v),
            OwnedAttr::Software(v) => StunAttr::Software(v),
            OwnedAttr::Priority(p) => StunAttr::Priority(*p),
            OwnedAttr::UseCandidate => StunAttr::UseCandidate,
            OwnedAttr::Controlled(t) => StunAttr::IceControlled(*t),
            OwnedAttr::Controlling(t) => StunAttr::IceControlling(*t),
            OwnedAttr::Xor(a) => StunAttr::XorMappedAddress(*a),
            OwnedAttr::Mapped(a) => StunAttr::MappedAddress(*a),
            OwnedAttr::Error(c, r) => StunAttr::ErrorCode {
                code: *c,
                reason: r,
            },
            OwnedAttr::Unknown(t, v) => StunAttr::Unknown { typ: *t, value: v },
        }
    }
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(a, p)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), p)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(a, p)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), p)),
    ]
}

fn stun_attr() -> impl Strategy<Value = OwnedAttr> {
    use stun::attr_type::*;
    let known = [
        MAPPED_ADDRESS,
        USERNAME,
        MESSAGE_INTEGRITY,
        ERROR_CODE,
        MESSAGE_INTEGRITY_SHA256,
        XOR_MAPPED_ADDRESS,
        PRIORITY,
        USE_CANDIDATE,
        SOFTWARE,
        FINGERPRINT,
        ICE_CONTROLLED,
        ICE_CONTROLLING,
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=512).prop_map(OwnedAttr::Username),
        prop::collection::vec(any::<u8>(), 0..=100).prop_map(OwnedAttr::Software),
        any::<u32>().prop_map(OwnedAttr::Priority),
        Just(OwnedAttr::UseCandidate),
        any::<u64>().prop_map(OwnedAttr::Controlled),
        any::<u64>().prop_map(OwnedAttr::Controlling),
        socket_addr().prop_map(OwnedAttr::Xor),
        socket_addr().prop_map(OwnedAttr::Mapped),
        (300u16..=699, prop::collection::vec(any::<u8>(), 0..=100))
            .prop_map(|(c, r)| OwnedAttr::Error(c, r)),
        (
            any::<u16>().prop_filter("unknown type", move |t| !known.contains(t)),
            prop::collection::vec(any::<u8>(), 0..=64)
        )
            .prop_map(|(t, v)| OwnedAttr::Unknown(t, v)),
    ]
}

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::SuccessResponse),
        Just(Class::ErrorResponse)
    ]
}

proptest! {
    #[test]
    fn stun_write_then_parse(
        class in class(),
        method in 0u16..0x1000,
        tid in any::<[u8; 12]>(),
        attrs in prop::collection::vec(stun_attr(), 0..8),
        key in prop::collection::vec(any::<u8>(), 1..40),
        sha1 in any::<bool>(),
        sha256 in any::<bool>(),
        fingerprint in any::<bool>(),
        pad in any::<u8>(),
    ) {
        let mut buf = vec![0u8; 8192];
        let mut w = StunWriter::new(&mut buf, class, Method(method), TransactionId(tid)).unwrap();
        w.set_padding_byte(pad);
        for a in &attrs {
            w.add(&a.view()).unwrap();
        }
        if sha1 { w.add_message_integrity(&key).unwrap(); }
        if sha256 { w.add_message_integrity_sha256(&key).unwrap(); }
        if fingerprint { w.add_fingerprint().unwrap(); }
        let n = w.finish();
        let m = StunMessage::parse(&buf[..n]).unwrap();
        prop_assert_eq!((m.class(), m.method(), m.transaction_id()), (class, Method(method), TransactionId(tid)));
        let got: Vec<_> = m.attributes().filter(|a| !matches!(a,
            StunAttr::MessageIntegrity(_) | StunAttr::MessageIntegritySha256(_) | StunAttr::Fingerprint(_))).collect();
        let want: Vec<_> = attrs.iter().map(OwnedAttr::view).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(m.verify_integrity(&key).is_ok(), sha1);
        prop_assert_eq!(m.verify_integrity_sha256(&key).is_ok(), sha256);
        prop_assert_eq!(m.verify_fingerprint().is_ok(), fingerprint);
        if sha1 {
            let mut wrong = key.clone();
            wrong[0] ^= 1;
            prop_assert_eq!(m.verify_integrity(&wrong), Err(StunError::IntegrityMismatch));
        }
    }
}
