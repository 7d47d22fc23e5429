//! SRTP legs through the relay over loopback (including an address change proven by SRTP,
//! and by STUN with the leg's ICE credentials), and the leg's SRTP wrapper on the libsrtp
//! reference packets and AEAD_AES_128_GCM. The RFC 3711 / RFC 7714 test vectors and the
//! interop checks against `rtc-srtp` live with the one SRTP implementation, in
//! `supernode-media` (`media/src/srtp/`, `media/tests/srtp_interop.rs`).

mod common;

use std::time::Duration;

use common::*;
use supernode_media::packet::stun::{
    Class, Method, StunAttr, StunMessage, StunWriter, TransactionId,
};
use supernode_relay::LegRequest;
use supernode_relay::core::srtp::{LegSrtp, SrtpError};
use supernode_relay::core::{
    CoreConfig, DropReason, IceCredentials, LegSrtpKeys, SrtpKey, SrtpProfile,
};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// RFC 3711 appendix B.3 master key and salt.
const B3_KEY: &str = "E1F97A0D3E018BE0D64FA32C06DE4139";
const B3_SALT: &str = "0EC675AD498AFEEBB6960B3AABE6";

fn key(profile: SrtpProfile, k: &[u8], s: &[u8]) -> SrtpKey {
    SrtpKey {
        profile,
        master_key: k.to_vec(),
        master_salt: s.to_vec(),
    }
}

/// The client side of the tests: protect into, and unprotect from, fresh vectors (through
/// the in-place calls, with a buffer that has room for the tag as the relay's batch has).
trait ClientSrtp {
    fn protect(&mut self, plain: &[u8]) -> Result<Vec<u8>, SrtpError>;
    fn unprotect(&mut self, pkt: &[u8]) -> Result<Vec<u8>, SrtpError>;
}

impl ClientSrtp for LegSrtp {
    fn protect(&mut self, plain: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + 16, 0);
        let n = self.protect_rtp(&mut buf, plain.len())?;
        buf.truncate(n);
        Ok(buf)
    }

    fn unprotect(&mut self, pkt: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let mut out = [0u8; 1500];
        let n = self.unprotect_rtp(pkt, &mut out)?;
        Ok(out[..n].to_vec())
    }
}

/// A whole SRTP and SRTCP packet under the B.3 master key (the reference packets of libsrtp's
/// validation, AES_CM_128_HMAC_SHA1_80), through the leg's SRTP state.
#[test]
fn aes_cm_hmac_sha1_80_packet_vectors() {
    let k = key(
        SrtpProfile::Aes128CmHmacSha1_80,
        &hex(B3_KEY),
        &hex(B3_SALT),
    );
    let keys = LegSrtpKeys {
        inbound: k.clone(),
        outbound: k,
    };
    let mut s = LegSrtp::new(&keys).unwrap();
    let plain = hex("800f1234decafbadcafebabe abababababababababababababababab");
    let cipher =
        hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
    assert_eq!(s.protect(&plain).unwrap(), cipher);
    assert_eq!(s.unprotect(&cipher).unwrap(), plain);
    assert!(s.unprotect(&cipher).is_err(), "a replay is refused");
    let rtcp_plain = hex("81c8000bcafebabe abababababababababababababababab");
    let srtcp =
        hex("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798");
    let mut out = [0u8; 1500];
    let n = s.unprotect_rtcp(&srtcp, &mut out).unwrap();
    assert_eq!(out[..n].to_vec(), rtcp_plain);
    let mut tampered = cipher.clone();
    tampered[20] ^= 1;
    let mut fresh = LegSrtp::new(&keys).unwrap();
    assert!(fresh.unprotect(&tampered).is_err());
}

const GCM_PLAIN: &str = "8040f17b8041f8d35501a0b2 47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";

/// AEAD_AES_128_GCM through the leg's SRTP state: round trip, tag length, tamper refused.
#[test]
fn aead_aes_128_gcm_context_round_trip() {
    let k = key(
        SrtpProfile::AeadAes128Gcm,
        &hex("000102030405060708090a0b0c0d0e0f"),
        &hex("a0a1a2a3a4a5a6a7a8a9aaab"),
    );
    let keys = LegSrtpKeys {
        inbound: k.clone(),
        outbound: k,
    };
    let mut tx = LegSrtp::new(&keys).unwrap();
    let mut rx = LegSrtp::new(&keys).unwrap();
    let plain = hex(GCM_PLAIN);
    let sealed = tx.protect(&plain).unwrap();
    assert_eq!(sealed.len(), plain.len() + 16);
    assert_eq!(&sealed[..12], &plain[..12], "header in clear");
    let mut bad = sealed.to_vec();
    bad[15] ^= 0x80;
    assert!(rx.unprotect(&bad).is_err());
    assert_eq!(rx.unprotect(&sealed).unwrap(), plain);
    let wrong_len = key(SrtpProfile::AeadAes128Gcm, &[0u8; 16], &[0u8; 14]);
    assert!(
        LegSrtp::new(&LegSrtpKeys {
            inbound: wrong_len.clone(),
            outbound: wrong_len
        })
        .is_err()
    );
}

fn pair(profile: SrtpProfile, seed: u8) -> (LegSrtpKeys, LegSrtpKeys) {
    let salt_len = match profile {
        SrtpProfile::AeadAes128Gcm => 12,
        _ => 14,
    };
    let up = key(profile, &[seed; 16], &vec![seed ^ 0x55; salt_len]);
    let down = key(profile, &[seed ^ 0xff; 16], &vec![seed ^ 0xaa; salt_len]);
    // The relay's view and the client's mirror image.
    (
        LegSrtpKeys {
            inbound: up.clone(),
            outbound: down.clone(),
        },
        LegSrtpKeys {
            inbound: down,
            outbound: up,
        },
    )
}

#[test]
fn srtp_legs_forward_between_different_profiles_and_prove_address_changes() {
    let relay = relay(
        42_100,
        CoreConfig {
            report_interval: Duration::from_secs(3600),
            ..CoreConfig::default()
        },
    );
    let (relay_a, client_a) = pair(SrtpProfile::Aes128CmHmacSha1_80, 1);
    let (relay_b, client_b) = pair(SrtpProfile::AeadAes128Gcm, 2);
    let leg_a = LegRequest {
        srtp: Some(relay_a),
        ..LegRequest::latching()
    };
    let leg_b = LegRequest {
        srtp: Some(relay_b),
        ..LegRequest::latching()
    };
    let (_s, legs) = relay.create_session(vec![leg_a, leg_b]).unwrap();
    relay.connect_both(legs[0].id, legs[1].id).unwrap();
    let (mut sa, mut sb) = (
        LegSrtp::new(&client_a).unwrap(),
        LegSrtp::new(&client_b).unwrap(),
    );
    let (a, b) = (Client::new(), Client::new());
    b.send(
        legs[1].local,
        &sb.protect(&rtp(0xB, 1, 0, b"latch")).unwrap(),
    );
    assert!(wait_until(Duration::from_secs(2), || stats(
        &relay, legs[1].id
    )
    .peer
    .is_some()));
    for i in 0..10u16 {
        a.send(
            legs[0].local,
            &sa.protect(&rtp(0xA, i, u32::from(i) * 960, &[i as u8; 120]))
                .unwrap(),
        );
    }
    let got = b.recv_all();
    assert_eq!(got.len(), 10);
    for (i, wire) in got.iter().enumerate() {
        assert_ne!(
            &wire[12..12 + 120],
            &[i as u8; 120][..],
            "encrypted on the wire"
        );
        let plain = sb
            .unprotect(wire)
            .expect("B's key opens what the relay sends");
        assert_eq!(fields(&plain).3, vec![i as u8; 120]);
    }
    // Plain RTP and a packet under the wrong key: dropped, not forwarded.
    a.send(legs[0].local, &rtp(0xA, 50, 0, &[0u8; 120]));
    let (_, wrong) = pair(SrtpProfile::Aes128CmHmacSha1_80, 9);
    a.send(
        legs[0].local,
        &LegSrtp::new(&wrong)
            .unwrap()
            .protect(&rtp(0xA, 51, 0, b"x"))
            .unwrap(),
    );
    assert!(b.recv().is_none());
    assert_eq!(
        stats(&relay, legs[0].id)
            .counters
            .drops_for(DropReason::SrtpAuth),
        2
    );
    // A moves to a new address: its SRTP proves it, the leg follows.
    let a2 = Client::new();
    a2.send(
        legs[0].local,
        &sa.protect(&rtp(0xA, 60, 60 * 960, b"moved")).unwrap(),
    );
    let (wire, _) = b.recv().expect("forwarded after the proven move");
    assert_eq!(fields(&sb.unprotect(&wire).unwrap()).3, b"moved");
    assert!(wait_until(Duration::from_secs(2), || stats(
        &relay, legs[0].id
    )
    .peer
        == Some(a2.addr())));
    // The old address is now a stranger, even with a valid-looking plain packet.
    a.send(legs[0].local, &rtp(0xA, 61, 0, b"old"));
    assert!(b.recv().is_none());
    // Media toward A now goes to the new address.
    b.send(
        legs[1].local,
        &sb.protect(&rtp(0xB, 2, 960, b"to a2")).unwrap(),
    );
    let (wire, _) = a2.recv().expect("A's new address receives");
    assert_eq!(fields(&sa.unprotect(&wire).unwrap()).3, b"to a2");
}

fn binding_request(ufrag: &str, pwd: &str, tid: u8) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::new(
        &mut buf,
        Class::Request,
        Method::BINDING,
        TransactionId([tid; 12]),
    )
    .unwrap();
    let user = format!("{ufrag}:peer");
    w.add(&StunAttr::Username(user.as_bytes())).unwrap();
    w.add(&StunAttr::Priority(1)).unwrap();
    w.add_message_integrity(pwd.as_bytes()).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

#[test]
fn stun_with_leg_credentials_moves_the_latch_and_bad_credentials_do_not() {
    let relay = relay(
        42_200,
        CoreConfig {
            report_interval: Duration::from_secs(3600),
            ..CoreConfig::default()
        },
    );
    let ice = IceCredentials {
        local_ufrag: "legA".into(),
        local_pwd: "secret-password-a".into(),
    };
    let leg_a = LegRequest {
        ice: Some(ice),
        ..LegRequest::latching()
    };
    let (_s, legs) = relay
        .create_session(vec![leg_a, LegRequest::latching()])
        .unwrap();
    relay.connect_both(legs[0].id, legs[1].id).unwrap();
    let (a, a2, b) = (Client::new(), Client::new(), Client::new());
    a.send(legs[0].local, &rtp(0xA, 1, 0, b"latch"));
    b.send(legs[1].local, &rtp(0xB, 1, 0, b"latch"));
    assert!(wait_until(Duration::from_secs(2), || stats(
        &relay, legs[0].id
    )
    .peer
        == Some(a.addr())));
    // Wrong password from the new address: no answer, no move.
    a2.send(legs[0].local, &binding_request("legA", "wrong", 1));
    assert!(a2.recv().is_none());
    assert_eq!(
        stats(&relay, legs[0].id)
            .counters
            .drops_for(DropReason::StunRejected),
        1
    );
    assert_eq!(stats(&relay, legs[0].id).peer, Some(a.addr()));
    // Right credentials: a success response that tells a2 its address, and the latch moves.
    a2.send(
        legs[0].local,
        &binding_request("legA", "secret-password-a", 2),
    );
    let (resp, from) = a2.recv().expect("binding success");
    assert_eq!(from, legs[0].local);
    let msg = StunMessage::parse(&resp).unwrap();
    assert_eq!(msg.class(), Class::SuccessResponse);
    assert_eq!(msg.transaction_id(), TransactionId([2; 12]));
    assert_eq!(msg.xor_mapped_address(), Some(a2.addr()));
    msg.verify_integrity(b"secret-password-a").unwrap();
    msg.verify_fingerprint().unwrap();
    assert_eq!(stats(&relay, legs[0].id).peer, Some(a2.addr()));
    let _ = a.recv_all();
    b.send(legs[1].local, &rtp(0xB, 2, 960, b"to the new address"));
    assert_eq!(fields(&a2.recv().unwrap().0).3, b"to the new address");
    assert!(a.recv().is_none());
}

#[test]
fn early_media_toward_an_srtp_leg_is_protected_with_its_key_when_it_latches() {
    let relay = relay(
        42_300,
        CoreConfig {
            report_interval: Duration::from_secs(3600),
            early_media_max_age: Duration::from_secs(30),
            ..CoreConfig::default()
        },
    );
    let (relay_a, client_a) = pair(SrtpProfile::Aes128CmHmacSha1_80, 3);
    let (relay_b, client_b) = pair(SrtpProfile::AeadAes128Gcm, 4);
    let (_s, legs) = relay
        .create_session(vec![
            LegRequest {
                srtp: Some(relay_a),
                ..LegRequest::latching()
            },
            LegRequest {
                srtp: Some(relay_b),
                ..LegRequest::latching()
            },
        ])
        .unwrap();
    relay.connect_both(legs[0].id, legs[1].id).unwrap();
    let (mut sa, mut sb) = (
        LegSrtp::new(&client_a).unwrap(),
        LegSrtp::new(&client_b).unwrap(),
    );
    let (a, b) = (Client::new(), Client::new());
    // A speaks before B has latched: held, decrypted, in B's cache.
    for i in 0..5u16 {
        a.send(
            legs[0].local,
            &sa.protect(&rtp(0xA, 10 + i, u32::from(i) * 960, &[i as u8; 100]))
                .unwrap(),
        );
    }
    assert!(wait_until(Duration::from_secs(2), || stats(
        &relay, legs[1].id
    )
    .counters
    .early_held
        == 5));
    b.send(
        legs[1].local,
        &sb.protect(&rtp(0xB, 1, 0, b"latch")).unwrap(),
    );
    let got = b.recv_all();
    assert_eq!(got.len(), 5, "the held packets, once B latched");
    for (i, wire) in got.iter().enumerate() {
        assert_ne!(&wire[12..112], &[i as u8; 100][..], "encrypted on the wire");
        let plain = sb.unprotect(wire).expect("under B's key, in order");
        let (ssrc, seq, _, payload) = fields(&plain);
        assert_eq!((ssrc, seq), (0xA, 10 + i as u16));
        assert_eq!(payload, vec![i as u8; 100]);
    }
    // Live media after the replay continues the same SRTP stream.
    a.send(
        legs[0].local,
        &sa.protect(&rtp(0xA, 15, 5 * 960, &[5; 100])).unwrap(),
    );
    let (wire, _) = b.recv().expect("live packet");
    assert_eq!(fields(&sb.unprotect(&wire).unwrap()).1, 15);
    assert_eq!(stats(&relay, legs[1].id).counters.early_replayed, 5);
}
