//! Properties of `supernode_media::srtp`: protect then unprotect is the identity for any
//! RTP/RTCP packet, any change to a protected packet is refused, and unprotecting arbitrary
//! bytes never panics (a typed error, or an authentic packet).

use proptest::prelude::*;
use supernode_media::srtp::{SrtpKey, SrtpProfile, SrtpSession};

fn profile() -> impl Strategy<Value = SrtpProfile> {
    prop_oneof![
        Just(SrtpProfile::Aes128CmHmacSha1_80),
        Just(SrtpProfile::AeadAes128Gcm)
    ]
}

fn session(p: SrtpProfile, seed: u8) -> SrtpSession {
    SrtpSession::new(&SrtpKey::new(p, &[seed; 16], &vec![seed ^ 0x5a; p.salt_len()]).unwrap())
        .unwrap()
}

prop_compose! {
    fn rtp_packet()(csrcs in 0u8..4, marker in any::<bool>(), seq in any::<u16>(),
                    ts in any::<u32>(), ssrc in any::<u32>(),
                    payload in proptest::collection::vec(any::<u8>(), 0..1300)) -> Vec<u8> {
        let mut p = vec![0x80 | csrcs, if marker { 0x80 | 96 } else { 96 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        for c in 0..csrcs {
            p.extend_from_slice(&u32::from(c).to_be_bytes());
        }
        p.extend_from_slice(&payload);
        p
    }
}

proptest! {
    #[test]
    fn rtp_round_trip_and_tamper(p in profile(), seed in any::<u8>(), pkt in rtp_packet(),
                                 flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut tx = session(p, seed);
        let mut buf = pkt.clone();
        buf.resize(pkt.len() + p.rtp_overhead(), 0);
        let n = tx.protect_rtp(&mut buf, pkt.len()).unwrap();
        prop_assert_eq!(n, buf.len());
        let mut tampered = buf.clone();
        let i = flip.index(n);
        tampered[i] ^= 1 << bit;
        prop_assert!(session(p, seed).unprotect_rtp(&mut tampered).is_err(), "byte {} changed", i);
        let mut rx = session(p, seed);
        let m = rx.unprotect_rtp(&mut buf).unwrap();
        prop_assert_eq!(&buf[..m], &pkt[..]);
    }

    #[test]
    fn rtcp_round_trip(p in profile(), seed in any::<u8>(), ssrc in any::<u32>(),
                       body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut pkt = vec![0x80, 200, 0, 0];
        pkt.extend_from_slice(&ssrc.to_be_bytes());
        pkt.extend_from_slice(&body);
        let mut buf = pkt.clone();
        buf.resize(pkt.len() + p.rtcp_overhead(), 0);
        let n = session(p, seed).protect_rtcp(&mut buf, pkt.len()).unwrap();
        prop_assert_eq!(n, buf.len());
        let m = session(p, seed).unprotect_rtcp(&mut buf).unwrap();
        prop_assert_eq!(&buf[..m], &pkt[..]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(p in profile(), mut data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut s = session(p, 1);
        let mut copy = data.clone();
        // Random bytes are (overwhelmingly) refused; the point is no panic.
        let _ = s.unprotect_rtp(&mut data);
        let _ = s.unprotect_rtcp(&mut copy);
    }
}
