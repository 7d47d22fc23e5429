//! SRTP legs through the sans-IO core: forwarding between legs of different profiles
//! (AES-CM/HMAC-SHA1-80 and AES-128-GCM), refusing plain and wrongly keyed packets, an
//! address change proven by SRTP, and early media protected with the late leg's key when it
//! latches. (Mirrors `srtp.rs`, on a virtual clock.)

mod harness;

use std::time::Duration;

use harness::*;
use supernode_relay::core::NackCachePolicy;

fn no_reports() -> CoreConfig {
    CoreConfig {
        report_interval: Duration::from_secs(3600),
        ..CoreConfig::default()
    }
}

#[test]
fn srtp_legs_forward_between_different_profiles_and_prove_address_changes() {
    let mut h = Harness::new(no_reports());
    let (relay_a, mut sa) = srtp_pair(SrtpProfile::Aes128CmHmacSha1_80, 1);
    let (relay_b, mut sb) = srtp_pair(SrtpProfile::AeadAes128Gcm, 2);
    let legs = h.session_with([
        LegOpts::latching().srtp(relay_a),
        LegOpts::latching().srtp(relay_b),
    ]);
    let (la, lb) = (legs[0], legs[1]);
    h.connect_both(la, lb);
    let (a, b) = (h.peer(), h.peer());
    h.send(b, lb, &sb.protect_rtp(&rtp(0xB, 1, 0, b"latch")));
    assert!(h.stats(lb).peer.is_some());
    for i in 0..10u16 {
        let p = sa.protect_rtp(&rtp(0xA, i, u32::from(i) * 960, &[i as u8; 120]));
        h.send(a, la, &p);
        h.advance(Duration::from_millis(20));
    }
    let got = h.take(b);
    assert_eq!(got.len(), 10);
    for (i, d) in got.iter().enumerate() {
        assert_eq!(d.from, lb.local);
        assert_ne!(
            &d.data[12..12 + 120],
            &[i as u8; 120][..],
            "encrypted on the wire"
        );
        let plain = sb
            .unprotect_rtp(&d.data)
            .expect("B's key opens what the relay sends");
        let (ssrc, seq, ts, payload) = fields(&plain);
        assert_eq!((ssrc, seq, ts), (0xA, i as u16, i as u32 * 960));
        assert_eq!(payload, vec![i as u8; 120]);
    }
    // Plain RTP and a packet under the wrong key: dropped, not forwarded.
    h.send_rtp(a, la, 0xA, 50, 0, &[0u8; 120]);
    let (_, mut wrong) = srtp_pair(SrtpProfile::Aes128CmHmacSha1_80, 9);
    h.send(a, la, &wrong.protect_rtp(&rtp(0xA, 51, 0, b"x")));
    assert!(h.take(b).is_empty());
    assert_eq!(h.stats(la).drops(DropReason::SrtpAuth), 2);
    // A moves to a new address: its SRTP proves it, the leg follows.
    let a2 = h.peer();
    h.send(a2, la, &sa.protect_rtp(&rtp(0xA, 60, 60 * 960, b"moved")));
    let got = h.take(b);
    assert_eq!(got.len(), 1, "forwarded after the proven move");
    assert_eq!(fields(&sb.unprotect_rtp(&got[0].data).unwrap()).3, b"moved");
    assert_eq!(h.stats(la).peer, Some(a2.addr));
    // The old address is now a stranger, even with a valid-looking plain packet.
    h.send_rtp(a, la, 0xA, 61, 0, b"old");
    assert!(h.take(b).is_empty());
    // Media toward A now goes to the new address.
    let _ = h.take(a);
    h.send(b, lb, &sb.protect_rtp(&rtp(0xB, 2, 960, b"to a2")));
    let got = h.take(a2);
    assert_eq!(got.len(), 1, "A's new address receives");
    assert_eq!(fields(&sa.unprotect_rtp(&got[0].data).unwrap()).3, b"to a2");
    assert!(h.take(a).is_empty(), "nothing toward the old address");
    assert_eq!(h.stats(la).latches, 2);
}

#[test]
fn early_media_toward_an_srtp_leg_is_protected_with_its_key_when_it_latches() {
    let mut h = Harness::new(CoreConfig {
        // Every packet kept from the start: the NACK below asks for a replayed one.
        nack_cache_policy: NackCachePolicy::Always,
        ..no_reports()
    });
    let (relay_a, mut sa) = srtp_pair(SrtpProfile::Aes128CmHmacSha1_80, 3);
    let (relay_b, mut sb) = srtp_pair(SrtpProfile::AeadAes128Gcm, 4);
    let legs = h.session_with([
        LegOpts::latching().srtp(relay_a),
        LegOpts::latching().srtp(relay_b),
    ]);
    let (la, lb) = (legs[0], legs[1]);
    h.connect_both(la, lb);
    let (a, b) = (h.peer(), h.peer());
    // A speaks before B has latched: held, decrypted, in B's cache.
    for i in 0..5u16 {
        let p = sa.protect_rtp(&rtp(0xA, 10 + i, u32::from(i) * 960, &[i as u8; 100]));
        h.send(a, la, &p);
        h.advance(Duration::from_millis(20));
    }
    assert_eq!(h.stats(lb).early_held, 5);
    h.send(b, lb, &sb.protect_rtp(&rtp(0xB, 1, 0, b"latch")));
    let replayed = h.take(b);
    assert_eq!(replayed.len(), 5, "the held packets, once B latched");
    for (i, d) in replayed.iter().enumerate() {
        assert_ne!(
            &d.data[12..112],
            &[i as u8; 100][..],
            "encrypted on the wire"
        );
        let plain = sb.unprotect_rtp(&d.data).expect("under B's key, in order");
        let (ssrc, seq, _, payload) = fields(&plain);
        assert_eq!((ssrc, seq), (0xA, 10 + i as u16));
        assert_eq!(payload, vec![i as u8; 100]);
    }
    // Live media after the replay continues the same SRTP stream.
    h.send(a, la, &sa.protect_rtp(&rtp(0xA, 15, 5 * 960, &[5; 100])));
    let got = h.take(b);
    assert_eq!(got.len(), 1, "live packet");
    assert_eq!(fields(&sb.unprotect_rtp(&got[0].data).unwrap()).1, 15);
    assert_eq!(h.stats(lb).early_replayed, 5);
    // A NACK (SRTCP under B's key) for a replayed packet is answered with the protected
    // bytes that went on the wire when it was replayed (never the plain held copy).
    h.send(b, lb, &sb.protect_rtcp(&nack(0xB, 0xA, &[(12, 0)])));
    let re = h.take(b);
    assert_eq!(re.len(), 1, "one retransmission");
    assert_eq!(
        re[0].data, replayed[2].data,
        "byte-identical to the replayed packet"
    );
    assert_eq!(h.stats(lb).nack_retransmits, 1);
}
