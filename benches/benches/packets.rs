//! Criterion benches of the packet layer: RTP header parse and write, compound RTCP parse
//! (SR + RR + SDES), STUN parse with the MESSAGE-INTEGRITY (HMAC-SHA1) check.
//!
//! Run with `cargo bench -p supernode-benches --bench packets`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtcp::{
    ReceiverReport, ReportBlock, RtcpCompound, RtcpPacket, Sdes, SdesChunk, SdesChunks, SdesItem,
    SdesItems, SenderReport, WireList, write_compound,
};
use supernode_media::packet::rtp::{RtpHeader, RtpPacket};
use supernode_media::packet::stun::{
    Class, Method, StunAttr, StunMessage, StunWriter, TransactionId,
};

fn rtp_header() -> RtpHeader {
    RtpHeader {
        marker: true,
        payload_type: Pt(111),
        sequence_number: 4711,
        timestamp: 960_000,
        ssrc: Ssrc(0x1234_5678),
        // audio level (RFC 6464) and transport-wide sequence number, as browsers send.
        extensions: vec![(1, vec![0x80 | 30]), (3, vec![0x12, 0x34])],
        ..RtpHeader::default()
    }
}

fn bench_rtp(c: &mut Criterion) {
    let payload = [0x5au8; 160];
    let mut buf = [0u8; 1500];
    let h = rtp_header();
    let n = h.write(&payload, &mut buf).unwrap();
    let pkt = buf[..n].to_vec();

    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_header", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&pkt)).unwrap();
            black_box((
                p.ssrc(),
                p.sequence_number(),
                p.timestamp(),
                p.payload().len(),
            ))
        })
    });
    g.bench_function("parse_header_and_extensions", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&pkt)).unwrap();
            let mut sum = 0usize;
            for (id, v) in p.extensions() {
                sum += id as usize + v.len();
            }
            black_box((p.ssrc(), sum))
        })
    });
    g.bench_function("write", |b| {
        let mut out = [0u8; 1500];
        b.iter(|| black_box(h.write(black_box(&payload), &mut out).unwrap()))
    });
    g.bench_function("rewrite_in_place", |b| {
        let mut v = pkt.clone();
        let mut seq = 0u16;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            supernode_media::packet::rtp::set_ssrc(&mut v, Ssrc(9)).unwrap();
            supernode_media::packet::rtp::set_sequence_number(&mut v, seq).unwrap();
            supernode_media::packet::rtp::set_timestamp(&mut v, seq as u32 * 960).unwrap();
            black_box(&v);
        })
    });
    g.finish();
}

fn compound() -> Vec<u8> {
    let block = [ReportBlock {
        ssrc: Ssrc(2),
        fraction_lost: 3,
        cumulative_lost: 40,
        extended_highest_seq: 70_000,
        jitter: 12,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 6554,
    }];
    let items = [SdesItem {
        kind: SdesItem::CNAME,
        text: b"4TOk42mSjXCkVIa6",
    }];
    let chunks = [SdesChunk {
        ssrc: Ssrc(1),
        items: SdesItems::Items(&items),
    }];
    let packets = [
        RtcpPacket::SenderReport(SenderReport {
            ssrc: Ssrc(1),
            ntp_time: 0xe8f1_2345_6789_abcd,
            rtp_time: 960_000,
            packet_count: 5000,
            octet_count: 800_000,
            reports: WireList::Items(&block),
            profile_extension: &[],
        }),
        RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: Ssrc(1),
            reports: WireList::Items(&block),
            profile_extension: &[],
        }),
        RtcpPacket::Sdes(Sdes {
            chunks: SdesChunks::Items(&chunks),
        }),
    ];
    let mut out = vec![0u8; 512];
    let n = write_compound(&packets, &mut out).unwrap();
    out.truncate(n);
    out
}

fn bench_rtcp(c: &mut Criterion) {
    let buf = compound();
    let mut g = c.benchmark_group("rtcp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_compound_sr_rr_sdes", |b| {
        b.iter(|| {
            let mut acc = 0u64;
            for p in RtcpCompound::parse(black_box(&buf)) {
                match p.unwrap() {
                    RtcpPacket::SenderReport(sr) => {
                        acc += sr.packet_count as u64;
                        for rb in sr.reports.iter() {
                            acc += rb.jitter as u64;
                        }
                    }
                    RtcpPacket::ReceiverReport(rr) => {
                        for rb in rr.reports.iter() {
                            acc += rb.extended_highest_seq as u64;
                        }
                    }
                    RtcpPacket::Sdes(s) => {
                        for ch in s.chunks.iter() {
                            for item in ch.items.iter() {
                                acc += item.text.len() as u64;
                            }
                        }
                    }
                    _ => {}
                }
            }
            black_box(acc)
        })
    });
    g.finish();
}

fn stun_request() -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut w = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([3; 12]),
    )
    .unwrap();
    w.add(&StunAttr::Username(b"abcd1234:efgh5678")).unwrap();
    w.add(&StunAttr::Priority(0x6e00_01ff)).unwrap();
    w.add(&StunAttr::IceControlling(0x932f_f9b1_5126_3b36))
        .unwrap();
    w.add(&StunAttr::UseCandidate).unwrap();
    w.add_message_integrity(b"VOkJxbRl1RmTxUk/WvJxBt").unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

fn bench_stun(c: &mut Criterion) {
    let msg = stun_request();
    let key = b"VOkJxbRl1RmTxUk/WvJxBt";
    let mut g = c.benchmark_group("stun");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse", |b| {
        b.iter(|| black_box(StunMessage::parse(black_box(&msg)).unwrap().username()))
    });
    g.bench_function("parse_verify_integrity_sha1", |b| {
        b.iter(|| {
            let m = StunMessage::parse(black_box(&msg)).unwrap();
            m.verify_integrity(black_box(key)).unwrap();
            black_box(m.username())
        })
    });
    g.bench_function("parse_verify_integrity_sha1_and_fingerprint", |b| {
        b.iter(|| {
            let m = StunMessage::parse(black_box(&msg)).unwrap();
            m.verify_integrity(black_box(key)).unwrap();
            m.verify_fingerprint().unwrap();
            black_box(m.username())
        })
    });
    g.bench_function("build_with_integrity_and_fingerprint", |b| {
        let mut out = [0u8; 512];
        b.iter(|| {
            let mut w = StunWriter::new(
                &mut out,
                Class::SuccessResponse,
                Method::BINDING,
                TransactionId([3; 12]),
            )
            .unwrap();
            w.add(&StunAttr::XorMappedAddress(
                "192.0.2.1:32853".parse().unwrap(),
            ))
            .unwrap();
            w.add_message_integrity(key).unwrap();
            w.add_fingerprint().unwrap();
            black_box(w.finish())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_rtp, bench_rtcp, bench_stun);
criterion_main!(benches);
