//! Fuzz target: compound RTCP walking, compound validation, and every list inside packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supernode_media::packet::rtcp::{RtcpCompound, RtcpPacket, validate_compound};

fuzz_target!(|data: &[u8]| {
    let strict = validate_compound(data);
    let mut all_ok = true;
    let mut n = 0;
    for p in RtcpCompound::parse(data) {
        let Ok(p) = p else {
            all_ok = false;
            break;
        };
        n += 1;
        match p {
            RtcpPacket::SenderReport(sr) => assert_eq!(sr.reports.iter().count(), sr.reports.len()),
            RtcpPacket::ReceiverReport(rr) => {
                assert_eq!(rr.reports.iter().count(), rr.reports.len())
            }
            RtcpPacket::Sdes(s) => {
                assert_eq!(s.chunks.iter().count(), s.chunks.len());
                for c in s.chunks.iter() {
                    for i in c.items.iter() {
                        assert!(i.kind != 0);
                    }
                }
            }
            RtcpPacket::Bye(b) => assert_eq!(b.sources.iter().count(), b.sources.len()),
            RtcpPacket::Nack(nack) => assert!(nack.lost().count() >= nack.pairs.len()),
            RtcpPacket::TransportFeedback(t) => assert_eq!(t.statuses().count(), t.packets.len()),
            RtcpPacket::Fir(f) => assert_eq!(f.entries.iter().count(), f.entries.len()),
            RtcpPacket::Remb(r) => {
                let _ = r.bitrate_bps();
                assert_eq!(r.ssrcs.iter().count(), r.ssrcs.len());
            }
            _ => {}
        }
        let _ = p.wire_len();
    }
    // Strict validation passing implies the lenient walk passes too.
    if strict.is_ok() {
        assert!(all_ok && n > 0);
    }
});
