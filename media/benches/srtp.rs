//! SRTP per packet, before and after issue 10: `rtc-srtp` (what relay and edge used; it
//! returns every packet in a fresh buffer) against `supernode_media::srtp::SrtpSession`
//! (in place on the caller's buffer), protect and unprotect, both profiles, 200- and
//! 1200-byte payloads, in one run.
//!
//! The "after" side includes the copy the relay makes (plain packet into the transmit
//! batch before protecting; received datagram into the scratch buffer before unprotecting),
//! so both sides go from a borrowed packet to a processed one.
//!
//! A third row per profile and size, `primitives`, is the floor: only the cipher and MAC
//! calls a protect makes (AES-CTR keystream + HMAC-SHA1 over header and payload, or one
//! AES-GCM seal), with no SRTP bookkeeping, so `media / primitives` is what the session
//! adds over the crypto it cannot avoid.
//!
//! `cargo bench -p supernode-media --no-default-features --bench srtp` (it lives in
//! `media`, not `benches`, so that it builds without the codecs and the host's crates);
//! `scripts/srtp_bench_table.py` prints the medians and ratios from `target/criterion`.

use std::hint::black_box;
use std::time::Duration;

use aes::cipher::{InnerIvInit, KeyInit, StreamCipher};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use rtc_srtp::context::Context;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::crypto::providers::RingProvider;
use rtc_srtp::option::srtp_replay_protection;
use rtc_srtp::protection_profile::ProtectionProfile;
use sha1::Sha1;
use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtp::RtpHeader;
use supernode_media::srtp::{SrtpKey, SrtpProfile, SrtpSession};

/// Packets protected ahead for the unprotect benches (replay protection needs fresh
/// sequence numbers); the receiver is re-created when they run out.
const SEALED: usize = 16_384;

fn rtp(seq: u16, payload: usize) -> Vec<u8> {
    let h = RtpHeader {
        payload_type: Pt(111),
        sequence_number: seq,
        timestamp: u32::from(seq) * 960,
        ssrc: Ssrc(0xA),
        ..RtpHeader::default()
    };
    let mut buf = vec![0u8; 1500];
    let n = h.write(&vec![0x5a; payload], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn rtc(key: &SrtpKey, replay: bool) -> Context {
    let profile = match key.profile {
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        _ => ProtectionProfile::Aes128CmHmacSha1_80,
    };
    Context::new(
        &key.master_key,
        &key.master_salt,
        profile,
        replay.then(|| srtp_replay_protection(1024)),
        None,
        RingProvider::new().crypto(),
    )
    .unwrap()
}

fn srtp(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp");
    g.throughput(Throughput::Elements(1));
    g.sample_size(60);
    g.warm_up_time(Duration::from_millis(700));
    g.measurement_time(Duration::from_secs(2));
    for (pname, profile) in [
        ("aes_cm_hmac_sha1_80", SrtpProfile::Aes128CmHmacSha1_80),
        ("aead_aes_128_gcm", SrtpProfile::AeadAes128Gcm),
    ] {
        let key = SrtpKey::new(profile, &[7; 16], &vec![9; profile.salt_len()]).unwrap();
        for payload in [200usize, 1200] {
            let plain: Vec<Vec<u8>> = (0..4096u16).map(|s| rtp(s, payload)).collect();
            let mut sender = SrtpSession::new(&key).unwrap();
            let sealed: Vec<Vec<u8>> = (0..SEALED)
                .map(|s| {
                    let mut b = rtp(s as u16, payload);
                    let n = b.len();
                    b.resize(n + 16, 0);
                    let m = sender.protect_rtp(&mut b, n).unwrap();
                    b.truncate(m);
                    b
                })
                .collect();

            let mut ctx = rtc(&key, false);
            let mut i = 0usize;
            g.bench_function(format!("protect/{pname}/{payload}B/rtc-srtp"), |b| {
                b.iter(|| {
                    let p = ctx.encrypt_rtp(black_box(&plain[i & 4095])).unwrap();
                    i += 1;
                    p
                })
            });
            let mut s = SrtpSession::new(&key).unwrap();
            let mut buf = [0u8; 1500];
            let mut i = 0usize;
            g.bench_function(format!("protect/{pname}/{payload}B/media"), |b| {
                b.iter(|| {
                    let p = black_box(&plain[i & 4095]);
                    buf[..p.len()].copy_from_slice(p);
                    let n = s.protect_rtp(&mut buf, p.len()).unwrap();
                    i += 1;
                    n
                })
            });

            let mut i = 0usize;
            let mut floor = Primitives::new(profile);
            g.bench_function(format!("protect/{pname}/{payload}B/primitives"), |b| {
                b.iter(|| {
                    let p = black_box(&plain[i & 4095]);
                    buf[..p.len()].copy_from_slice(p);
                    i += 1;
                    floor.seal(&mut buf, p.len())
                })
            });

            let mut ctx = rtc(&key, true);
            let mut j = 0usize;
            g.bench_function(format!("unprotect/{pname}/{payload}B/rtc-srtp"), |b| {
                b.iter(|| {
                    if j == SEALED {
                        ctx = rtc(&key, true);
                        j = 0;
                    }
                    let p = ctx.decrypt_rtp(black_box(&sealed[j])).unwrap();
                    j += 1;
                    p
                })
            });
            let mut rx = SrtpSession::new(&key).unwrap();
            let mut j = 0usize;
            g.bench_function(format!("unprotect/{pname}/{payload}B/media"), |b| {
                b.iter(|| {
                    if j == SEALED {
                        rx = SrtpSession::new(&key).unwrap();
                        j = 0;
                    }
                    let p = black_box(&sealed[j]);
                    buf[..p.len()].copy_from_slice(p);
                    let n = rx.unprotect_rtp(&mut buf[..p.len()]).unwrap();
                    j += 1;
                    n
                })
            });
        }
    }
    g.finish();
}

/// The crypto calls of one protect and nothing else (fixed IV, no index or replay state).
enum Primitives {
    Cm(Box<(aes::Aes128Enc, Hmac<Sha1>)>),
    Gcm(Box<LessSafeKey>),
}

impl Primitives {
    fn new(profile: SrtpProfile) -> Self {
        match profile {
            SrtpProfile::Aes128CmHmacSha1_80 => Self::Cm(Box::new((
                aes::Aes128Enc::new(&[7u8; 16].into()),
                <Hmac<Sha1> as Mac>::new_from_slice(&[3; 20]).unwrap(),
            ))),
            _ => Self::Gcm(Box::new(LessSafeKey::new(
                UnboundKey::new(&AES_128_GCM, &[7; 16]).unwrap(),
            ))),
        }
    }

    /// Encrypts the payload after the 12-byte header of `buf[..len]` and returns the tag's
    /// first byte (so nothing is optimised away).
    fn seal(&mut self, buf: &mut [u8], len: usize) -> u8 {
        let (hdr, payload) = buf[..len].split_at_mut(12);
        match self {
            Self::Cm(keys) => {
                let (aes, mac) = &**keys;
                let mut ctr = ctr::Ctr128BE::from_core(ctr::CtrCore::inner_iv_init(
                    aes.clone(),
                    &[5; 16].into(),
                ));
                ctr.apply_keystream(payload);
                let mut m = mac.clone();
                m.update(hdr);
                m.update(payload);
                m.update(&[0; 4]);
                m.finalize().into_bytes()[0]
            }
            Self::Gcm(k) => {
                let nonce = Nonce::assume_unique_for_key([5; 12]);
                k.seal_in_place_separate_tag(nonce, Aad::from(&*hdr), payload)
                    .unwrap()
                    .as_ref()[0]
            }
        }
    }
}

criterion_group!(benches, srtp);
criterion_main!(benches);
