//! Fuzz target: RFC 7983 classification, then the parser the class selects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supernode_media::packet::demux::{PacketKind, classify};
use supernode_media::packet::{rtcp, rtp, stun};

fuzz_target!(|data: &[u8]| {
    match classify(data) {
        PacketKind::Rtp => {
            assert!((128..=191).contains(&data[0]));
            let _ = rtp::RtpPacket::parse(data);
        }
        PacketKind::Rtcp => {
            assert!((192..=223).contains(&data[1]));
            for p in rtcp::RtcpCompound::parse(data) {
                if p.is_err() {
                    break;
                }
            }
        }
        PacketKind::Stun => {
            assert!(data[0] < 4);
            let _ = stun::StunMessage::parse(data);
        }
        PacketKind::Unknown => {
            // RTP needs version 2, which is exactly the RTP/RTCP first-byte range.
            if data.first().is_none_or(|b| !(128..=191).contains(b)) {
                assert!(rtp::RtpPacket::parse(data).is_err());
            }
        }
        _ => {}
    }
});
