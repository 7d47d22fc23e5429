//! The committed fuzz seed corpora (`fuzz/corpus/<target>/seed-*`) are valid packets of their
//! kind, so each fuzz run starts from inputs that reach deep into its parser.

use std::path::PathBuf;
use supernode_media::packet::demux::{PacketKind, classify};
use supernode_media::packet::rtcp::{RtcpCompound, validate_compound};
use supernode_media::packet::rtp::RtpPacket;
use supernode_media::packet::stun::StunMessage;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
        })
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

#[test]
fn rtp_seeds_parse() {
    for (name, s) in seeds("rtp") {
        if name.contains("seed-crash") {
            continue;
        }
        RtpPacket::parse(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(classify(&s), PacketKind::Rtp, "{name}");
    }
}

#[test]
fn rtcp_seeds_parse_and_follow_compound_rules() {
    for (name, s) in seeds("rtcp") {
        if name.contains("seed-crash") {
            continue;
        }
        validate_compound(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(RtcpCompound::parse(&s).all(|p| p.is_ok()), "{name}");
        assert_eq!(classify(&s), PacketKind::Rtcp, "{name}");
    }
}

#[test]
fn stun_seeds_parse_with_fingerprint() {
    for (name, s) in seeds("stun") {
        if name.contains("seed-crash") {
            continue;
        }
        let m = StunMessage::parse(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        if m.has_fingerprint() {
            m.verify_fingerprint()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert_eq!(classify(&s), PacketKind::Stun, "{name}");
    }
}

#[test]
fn other_targets_have_seeds() {
    assert!(seeds("demux").len() >= 4);
    assert!(seeds("roundtrip").len() >= 3);
}
