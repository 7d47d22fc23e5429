//! Fuzz target: RTP parsing and every accessor; checks the parser's length invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supernode_media::packet::rtp::RtpPacket;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(data) {
        assert_eq!(p.version(), 2);
        assert_eq!(
            p.header_len() + p.payload().len() + p.padding_len(),
            data.len()
        );
        assert_eq!(p.csrcs().count(), p.csrc_count());
        let mut ext_bytes = 0;
        for (id, value) in p.extensions() {
            assert!(id != 0);
            ext_bytes += value.len();
        }
        if let Some((_, block)) = p.extension_block() {
            assert!(ext_bytes <= block.len());
        }
        let _ = (
            p.marker(),
            p.payload_type(),
            p.sequence_number(),
            p.timestamp(),
            p.ssrc(),
        );
        // In-place rewrites of a valid packet keep it valid.
        let mut v = data.to_vec();
        supernode_media::packet::rtp::set_sequence_number(&mut v, 1).unwrap();
        supernode_media::packet::rtp::set_ssrc(&mut v, supernode_media::ids::Ssrc(2)).unwrap();
        let q = RtpPacket::parse(&v).unwrap();
        assert_eq!(q.payload(), p.payload());
    }
});
