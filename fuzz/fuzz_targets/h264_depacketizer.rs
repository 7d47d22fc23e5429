//! Fuzz target: the H.264 RTP payload format (RFC 6184).
//!
//! The input is cut into packets (`[len][seq-step][payload…]`). Each payload goes through
//! `inspect`; the whole set through `depacketize` (with sequence numbers, any order) and
//! `depacketize_ordered`, with one depacketizer kept across rounds so SPS/PPS state carries
//! over. Then the input is read as an Annex B access unit: when the packetizer accepts it at
//! the MTU the first byte picks, the payloads must fit that MTU, carry exactly one marker,
//! and depacketize back to the same NAL units.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supernode_media::payload::h264::{H264Depacketizer, H264Packetizer, annex_b, inspect};

fuzz_target!(|data: &[u8]| {
    let mut de = H264Depacketizer::new(1 << 16);
    let mut out = Vec::new();

    // Part 1: arbitrary payload sequences.
    let mut packets: Vec<(u16, &[u8])> = Vec::new();
    let mut rest = data;
    let mut seq = 0u16;
    while let [len, step, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, tail) = tail.split_at(n);
        seq = seq.wrapping_add(u16::from(*step % 4)); // 0 = duplicate, >1 = hole
        let _ = inspect(payload);
        packets.push((seq, payload));
        rest = tail;
    }
    for round in 0..2 {
        let r = de.depacketize(packets.iter().copied(), &mut out);
        if r.is_ok() {
            assert!(out.starts_with(&[0, 0, 0, 1]));
        }
        let r2 = de.depacketize_ordered(packets.iter().map(|(_, p)| *p), &mut out);
        if let Ok(info) = r2 {
            assert!(info.nal_units >= 1);
        }
        packets.reverse();
        let _ = round;
    }

    // Part 2: packetize → depacketize round trip.
    let Some((&m, au)) = data.split_first() else {
        return;
    };
    let mtu = 3 + usize::from(m) * 4;
    let mut pk = H264Packetizer::new(mtu).unwrap();
    let mut pkts: Vec<(Vec<u8>, bool)> = Vec::new();
    if pk
        .packetize(au, |p, marker| pkts.push((p.to_vec(), marker)))
        .is_ok()
        && !pkts.is_empty()
    {
        assert!(pkts.iter().all(|(p, _)| p.len() <= mtu));
        assert_eq!(pkts.iter().filter(|(_, mk)| *mk).count(), 1);
        assert!(pkts.last().unwrap().1);
        let mut de = H264Depacketizer::new(usize::MAX);
        de.depacketize_ordered(pkts.iter().map(|(p, _)| &p[..]), &mut out)
            .expect("our own payloads depacketize");
        let want: Vec<&[u8]> = annex_b(au).collect();
        let got: Vec<&[u8]> = annex_b(&out).collect();
        assert_eq!(got, want);
    }
});
