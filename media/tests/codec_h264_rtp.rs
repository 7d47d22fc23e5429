//! RFC 6184 packetizer and depacketizer: real encoder output, every MTU, STAP-A, FU-A,
//! missing fragments, SPS/PPS kept across access units, and a property test.

use proptest::prelude::*;
use supernode_media::codec::I420Frame;
use supernode_media::codec::h264::{H264Config, H264Decoder, H264Encoder};
use supernode_media::payload::PayloadError;
use supernode_media::payload::h264::{
    FU_A, H264Depacketizer, H264Packetizer, STAP_A, annex_b, inspect, nal_type,
};

fn packetize(p: &mut H264Packetizer, au: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let mut v = Vec::new();
    p.packetize(au, |pl, m| v.push((pl.to_vec(), m))).unwrap();
    v
}

fn nals(au: &[u8]) -> Vec<Vec<u8>> {
    annex_b(au).map(<[u8]>::to_vec).collect()
}

#[test]
fn real_stream_round_trips_at_every_mtu_and_decodes() {
    let cfg = H264Config {
        width: 320,
        height: 180,
        bitrate_bps: 400_000,
        ..H264Config::default()
    };
    for mtu in [60, 200, 500, 1200, 9000] {
        let mut enc = H264Encoder::new(&cfg).unwrap();
        let mut dec = H264Decoder::new().unwrap();
        let mut pk = H264Packetizer::new(mtu).unwrap();
        let mut de = H264Depacketizer::default();
        let mut au = Vec::new();
        let mut rebuilt = Vec::new();
        let mut pic = I420Frame::new(320, 180).unwrap();
        let mut out = I420Frame::new(2, 2).unwrap();
        let mut saw_stap = false;
        let mut saw_fu = false;
        for n in 0..10 {
            pic.draw_test_pattern(n);
            let info = enc.encode(&pic, &mut au).unwrap();
            let pkts = packetize(&mut pk, &au);
            assert!(pkts.iter().all(|(p, _)| p.len() <= mtu), "mtu {mtu}");
            // exactly the last packet carries the marker
            assert!(pkts.last().unwrap().1);
            assert!(pkts[..pkts.len() - 1].iter().all(|(_, m)| !m));
            // the first packet starts the picture, and keyframe hints agree
            let hints = inspect(&pkts[0].0).unwrap();
            assert!(hints.frame_start, "mtu {mtu} frame {n}");
            let key_hint = pkts.iter().any(|(p, _)| inspect(p).unwrap().keyframe);
            assert_eq!(key_hint, info.keyframe);
            for (p, _) in &pkts {
                saw_stap |= nal_type(p[0]) == STAP_A;
                saw_fu |= nal_type(p[0]) == FU_A;
            }
            // Hand the packets over reversed, with sequence numbers across the wrap.
            let seqd: Vec<(u16, &[u8])> = pkts
                .iter()
                .enumerate()
                .map(|(i, (p, _))| (65530u16.wrapping_add(i as u16), &p[..]))
                .rev()
                .collect();
            let au_info = de.depacketize(seqd, &mut rebuilt).unwrap();
            assert_eq!(nals(&rebuilt), nals(&au), "mtu {mtu} frame {n}");
            assert_eq!(au_info.keyframe, info.keyframe);
            assert!(dec.decode(&rebuilt, &mut out).unwrap());
            assert!(out.psnr(&pic).unwrap() > 30.0);
        }
        // SPS + PPS (a few bytes each) aggregate whenever the MTU allows.
        assert!(saw_stap || mtu < 60, "mtu {mtu}: no STAP-A");
        // 320x180 pictures at 400 kbit/s are ~1.5 kB: fragmented below that.
        assert_eq!(saw_fu, mtu <= 1200, "mtu {mtu}");
    }
}

#[test]
fn missing_or_mixed_fragments_are_detected() {
    let mut pk = H264Packetizer::new(100).unwrap();
    let mut au = vec![0, 0, 0, 1, 0x65];
    au.extend((0..1000).map(|i| (i % 251) as u8 + 1));
    let pkts = packetize(&mut pk, &au);
    assert!(pkts.len() >= 10);
    let mut de = H264Depacketizer::default();
    let mut out = Vec::new();
    let all: Vec<&[u8]> = pkts.iter().map(|(p, _)| &p[..]).collect();
    let with_seq: Vec<(u16, &[u8])> = all
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u16, *p))
        .collect();
    assert!(de.depacketize(with_seq.clone(), &mut out).is_ok());
    // duplicates are harmless
    let mut dup = with_seq.clone();
    dup.push(with_seq[3]);
    assert!(de.depacketize(dup, &mut out).is_ok());
    for missing in [0, 4, all.len() - 1] {
        let mut some = with_seq.clone();
        some.remove(missing);
        assert_eq!(
            de.depacketize(some.iter().copied(), &mut out),
            Err(PayloadError::MissingFragment),
            "fragment {missing} missing"
        );
        // without sequence numbers only the first and last can be spotted
        let ordered = some.iter().map(|(_, p)| *p);
        let r = de.depacketize_ordered(ordered, &mut out);
        assert_eq!(r.is_err(), missing != 4, "fragment {missing}");
    }
    // A hole between whole NAL units.
    assert_eq!(
        de.depacketize([(1, &[0x41u8, 0x9a][..]), (3, &[0x41, 0x11][..])], &mut out),
        Err(PayloadError::SequenceGap)
    );
    // fragments of a different NAL type in the middle of a chain
    let mut bad = all.clone();
    let mut other = all[3].to_vec();
    other[1] = (other[1] & 0xe0) | 1;
    bad[3] = &other;
    assert_eq!(
        de.depacketize_ordered(bad.iter().copied(), &mut out),
        Err(PayloadError::MissingFragment)
    );
    // a single NAL unit inside an open FU-A chain
    let mut bad = all.clone();
    bad.insert(2, &[0x41, 0x9a]);
    assert_eq!(
        de.depacketize_ordered(bad.iter().copied(), &mut out),
        Err(PayloadError::MissingFragment)
    );
    assert_eq!(
        de.depacketize_ordered([&[0x7c, 0xc5, 1][..]], &mut out),
        Err(PayloadError::FuStartAndEnd)
    );
}

#[test]
fn parameter_sets_are_kept_and_put_before_a_bare_idr() {
    let mut de = H264Depacketizer::default();
    let mut out = Vec::new();
    // An IDR with no parameter sets ever seen: not a usable keyframe.
    let idr = [0x65u8, 0x88, 0x84];
    let info = de.depacketize_ordered([&idr[..]], &mut out).unwrap();
    assert!(!info.keyframe && !info.parameter_sets_inserted);
    // STAP-A with SPS and PPS, then an IDR in the same frame.
    let stap = [0x78u8, 0, 3, 0x67, 0x42, 0x1f, 0, 2, 0x68, 0xce];
    let info = de
        .depacketize_ordered([&stap[..], &idr[..]], &mut out)
        .unwrap();
    assert!(info.keyframe && !info.parameter_sets_inserted);
    assert_eq!(info.nal_units, 3);
    assert_eq!(de.sps(), Some(&[0x67, 0x42, 0x1f][..]));
    assert_eq!(de.pps(), Some(&[0x68, 0xce][..]));
    // A later bare IDR gets them in front.
    let info = de.depacketize_ordered([&idr[..]], &mut out).unwrap();
    assert!(info.keyframe && info.parameter_sets_inserted);
    assert_eq!(
        nals(&out),
        vec![vec![0x67, 0x42, 0x1f], vec![0x68, 0xce], idr.to_vec()]
    );
    // P slices are not keyframes.
    let info = de
        .depacketize_ordered([&[0x41u8, 0x9a, 1][..]], &mut out)
        .unwrap();
    assert!(!info.keyframe);
}

#[test]
fn malformed_payloads_are_typed_errors() {
    let mut de = H264Depacketizer::default();
    let mut out = Vec::new();
    let cases: &[(&[u8], PayloadError)] = &[
        (&[], PayloadError::Empty),
        (&[0x79, 1, 2], PayloadError::NalType(25)),
        (&[0x7a, 1], PayloadError::NalType(26)),
        (&[0x7d, 1], PayloadError::NalType(29)),
        (&[0x60], PayloadError::NalType(0)),
        (
            &[0x78, 0, 5, 1],
            PayloadError::H264Malformed("STAP-A unit size"),
        ),
        (&[0x78, 0], PayloadError::Truncated),
        (&[0x78], PayloadError::H264Malformed("empty STAP-A")),
        (&[0x7c], PayloadError::Truncated),
        (
            &[0xe5, 1],
            PayloadError::H264Malformed("forbidden_zero_bit set"),
        ),
    ];
    for (payload, err) in cases {
        assert_eq!(
            de.depacketize_ordered([*payload], &mut out),
            Err(*err),
            "{payload:?}"
        );
    }
    let mut small = H264Depacketizer::new(50);
    let big = [0x41u8; 100];
    assert_eq!(
        small.depacketize_ordered([&big[..]], &mut out),
        Err(PayloadError::TooLarge(50))
    );
    // The packetizer refuses NAL units an encoder never emits, aggregated ones included
    // (found by fuzzing: a STAP-A once carried a NAL unit with the forbidden bit).
    let mut pk = H264Packetizer::new(1200).unwrap();
    for bad in [0xe1u8, 0x7c, 0x78, 0x60] {
        let au = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, bad, 1, 2];
        assert!(pk.packetize(&au, |_, _| {}).is_err(), "{bad:#x}");
    }
    assert_eq!(
        H264Packetizer::new(2).unwrap_err(),
        PayloadError::MtuTooSmall(2)
    );
}

fn nal_strategy() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![1u8, 5, 6, 7, 8, 9]),
        0u8..4,
        prop::collection::vec(1u8..=255, 1..3000),
    )
        .prop_map(|(t, nri, body)| {
            let mut v = vec![(nri << 5) | t];
            v.extend(body);
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn packetize_depacketize_round_trip(
        units in prop::collection::vec(nal_strategy(), 1..8),
        mtu in 3usize..1500,
    ) {
        let mut au = Vec::new();
        for u in &units {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(u);
        }
        let mut pk = H264Packetizer::new(mtu).unwrap();
        let pkts = packetize(&mut pk, &au);
        prop_assert!(pkts.iter().all(|(p, _)| p.len() <= mtu));
        prop_assert_eq!(pkts.iter().filter(|(_, m)| *m).count(), 1);
        let mut de = H264Depacketizer::default();
        let mut out = Vec::new();
        de.depacketize_ordered(pkts.iter().map(|(p, _)| &p[..]), &mut out).unwrap();
        prop_assert_eq!(nals(&out), units);
    }
}
