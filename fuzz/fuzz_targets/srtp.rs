//! Fuzz target: SRTP/SRTCP unprotect of arbitrary bytes (`supernode_media::srtp`), in place.
//! The first byte picks the profile and RTP or RTCP; the rest is the datagram. Checks: no
//! panic; an accepted packet shrinks by exactly the profile's overhead; whatever the input,
//! a packet this session protects unprotects back to itself in a second session.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supernode_media::srtp::{SrtpKey, SrtpProfile, SrtpSession};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let profile = if sel & 1 == 0 {
        SrtpProfile::Aes128CmHmacSha1_80
    } else {
        SrtpProfile::AeadAes128Gcm
    };
    let rtcp = sel & 2 != 0;
    let key = SrtpKey::new(profile, &[0x2b; 16], &vec![0x5a; profile.salt_len()]).unwrap();
    let mut rx = SrtpSession::new(&key).unwrap();
    let mut buf = rest.to_vec();
    let r = if rtcp {
        rx.unprotect_rtcp(&mut buf)
    } else {
        rx.unprotect_rtp(&mut buf)
    };
    if let Ok(n) = r {
        let overhead = if rtcp {
            profile.rtcp_overhead()
        } else {
            profile.rtp_overhead()
        };
        assert_eq!(n + overhead, rest.len());
    }
    // The input as a plain packet: protect, then unprotect in a fresh session.
    let mut tx = SrtpSession::new(&key).unwrap();
    let mut sealed = rest.to_vec();
    sealed.resize(rest.len() + profile.rtcp_overhead(), 0);
    let p = if rtcp {
        tx.protect_rtcp(&mut sealed, rest.len())
    } else {
        tx.protect_rtp(&mut sealed, rest.len())
    };
    if let Ok(m) = p {
        sealed.truncate(m);
        let mut rx = SrtpSession::new(&key).unwrap();
        let back = if rtcp {
            rx.unprotect_rtcp(&mut sealed)
        } else {
            rx.unprotect_rtp(&mut sealed)
        };
        let n = back.expect("what was protected unprotects");
        assert_eq!(&sealed[..n], rest);
    }
});
