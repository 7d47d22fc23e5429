//! Interop of `supernode_media::srtp` with an independent implementation, the webrtc-rs
//! stack's `rtc-srtp` (a dev-dependency only): packets protected by one are unprotected by
//! the other, every profile, SRTP across a sequence wrap and SRTCP, with CSRCs and header
//! extensions; SRTP output is byte-identical (the transform is deterministic).

use rtc_srtp::context::Context;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::crypto::providers::RingProvider;
use rtc_srtp::protection_profile::ProtectionProfile;
use supernode_media::srtp::{SrtpKey, SrtpProfile, SrtpSession};

fn theirs(key: &SrtpKey) -> Context {
    let profile = match key.profile {
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
        _ => ProtectionProfile::Aes128CmHmacSha1_80,
    };
    Context::new(
        &key.master_key,
        &key.master_salt,
        profile,
        None,
        None,
        RingProvider::new().crypto(),
    )
    .unwrap()
}

fn key(profile: SrtpProfile, seed: u8) -> SrtpKey {
    let k: Vec<u8> = (0..profile.key_len() as u8)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i))
        .collect();
    let s: Vec<u8> = (0..profile.salt_len() as u8)
        .map(|i| seed ^ (i * 7))
        .collect();
    SrtpKey::new(profile, &k, &s).unwrap()
}

/// RTP packet `k` of a stream: varying header shapes (CSRCs, a one-byte-header extension)
/// and payload sizes.
fn rtp(k: u32, ssrc: u32) -> Vec<u8> {
    let seq = 65_500u16.wrapping_add(k as u16);
    let csrcs = (k % 3) as u8;
    let ext = k % 4 == 1;
    let mut p = vec![0x80 | csrcs | if ext { 0x10 } else { 0 }, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(k * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..csrcs {
        p.extend_from_slice(&(0x1000 + u32::from(c)).to_be_bytes());
    }
    if ext {
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x55, 0, 0]);
    }
    p.extend((0..(k * 37 % 1200)).map(|i| (i * 13 + k) as u8));
    p
}

fn rtcp(k: u32, ssrc: u32) -> Vec<u8> {
    // An RR with one report block, then an SDES-sized filler as APP.
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&0xcafe_f00du32.to_be_bytes());
    p.extend((0..20).map(|i| (i + k) as u8));
    p
}

fn ours_protect(s: &mut SrtpSession, pkt: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + 32, 0);
    let n = if rtcp {
        s.protect_rtcp(&mut buf, pkt.len())
    } else {
        s.protect_rtp(&mut buf, pkt.len())
    }
    .unwrap();
    buf.truncate(n);
    buf
}

fn ours_unprotect(s: &mut SrtpSession, pkt: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = pkt.to_vec();
    let n = if rtcp {
        s.unprotect_rtcp(&mut buf)
    } else {
        s.unprotect_rtp(&mut buf)
    }
    .unwrap_or_else(|e| panic!("unprotect: {e}"));
    buf.truncate(n);
    buf
}

#[test]
fn srtp_both_ways_with_rtc_srtp_across_the_wrap() {
    for profile in SrtpProfile::ALL {
        let key = key(profile, 5);
        let (mut our_tx, mut our_rx) = (
            SrtpSession::new(&key).unwrap(),
            SrtpSession::new(&key).unwrap(),
        );
        let (mut their_tx, mut their_rx) = (theirs(&key), theirs(&key));
        for k in 0..200 {
            let plain = rtp(k, 0x1234_5678);
            let ours = ours_protect(&mut our_tx, &plain, false);
            let their = their_tx.encrypt_rtp(&plain).unwrap();
            assert_eq!(ours, their.to_vec(), "{profile} packet {k}: same bytes");
            assert_eq!(ours.len(), plain.len() + profile.rtp_overhead());
            assert_eq!(
                their_rx.decrypt_rtp(&ours).unwrap().to_vec(),
                plain,
                "{profile} {k}"
            );
            assert_eq!(
                ours_unprotect(&mut our_rx, &their, false),
                plain,
                "{profile} {k}"
            );
        }
        assert_eq!(our_rx.roc(0x1234_5678), Some(1), "{profile}: wrapped once");
    }
}

#[test]
fn srtcp_both_ways_with_rtc_srtp() {
    for profile in SrtpProfile::ALL {
        let key = key(profile, 9);
        let (mut our_tx, mut our_rx) = (
            SrtpSession::new(&key).unwrap(),
            SrtpSession::new(&key).unwrap(),
        );
        let (mut their_tx, mut their_rx) = (theirs(&key), theirs(&key));
        for k in 0..50 {
            let plain = rtcp(k, 0xabcd_0001);
            let ours = ours_protect(&mut our_tx, &plain, true);
            assert_eq!(ours.len(), plain.len() + profile.rtcp_overhead());
            assert_eq!(
                their_rx.decrypt_rtcp(&ours).unwrap().to_vec(),
                plain,
                "{profile} {k}"
            );
            let their = their_tx.encrypt_rtcp(&plain).unwrap();
            assert_eq!(
                ours_unprotect(&mut our_rx, &their, true),
                plain,
                "{profile} {k}"
            );
        }
    }
}
