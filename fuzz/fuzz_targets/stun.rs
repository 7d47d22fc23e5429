//! Fuzz target: STUN parsing, attribute decoding, integrity and fingerprint verification.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supernode_media::packet::stun::StunMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = StunMessage::parse(data) {
        for a in m.attributes() {
            let _ = a.typ();
        }
        let _ = (
            m.username(),
            m.priority(),
            m.use_candidate(),
            m.xor_mapped_address(),
        );
        let _ = m.error_code();
        let _ = m.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBt");
        let _ = m.verify_integrity_sha256(b"VOkJxbRl1RmTxUk/WvJxBt");
        let _ = m.verify_fingerprint();
        assert_eq!(
            m.has_integrity(),
            m.verify_integrity(b"k") != Err(supernode_media::packet::stun::StunError::NoIntegrity)
        );
    }
});
