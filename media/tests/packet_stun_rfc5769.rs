//! RFC 5769 STUN test vectors (§2.1 request, §2.2 IPv4 response, §2.3 IPv6 response): each
//! parses, verifies integrity and fingerprint, and is rebuilt byte for byte by the writer.

use std::net::SocketAddr;
use supernode_media::packet::stun::*;

const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
const TID: TransactionId = TransactionId([
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
]);

#[rustfmt::skip]
const REQUEST: &[u8] = &[
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
    0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20,
    0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56,
    0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2,
    0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
];

#[rustfmt::skip]
const RESPONSE_V4: &[u8] = &[
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
    0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
];

#[rustfmt::skip]
const RESPONSE_V6: &[u8] = &[
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47,
    0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79,
    0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
    0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
];

fn build(class: Class, attrs: &[StunAttr<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = StunWriter::new(&mut buf, class, Method::BINDING, TID).unwrap();
    w.set_padding_byte(0x20);
    for a in attrs {
        w.add(a).unwrap();
    }
    w.add_message_integrity(PASSWORD).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

#[test]
fn rfc5769_sample_request() {
    let m = StunMessage::parse(REQUEST).unwrap();
    assert_eq!(
        (m.class(), m.method(), m.transaction_id()),
        (Class::Request, Method::BINDING, TID)
    );
    assert_eq!(m.username(), Some(&b"evtj:h6vY"[..]));
    assert_eq!(m.priority(), Some(0x6e0001ff));
    let attrs: Vec<_> = m.attributes().collect();
    assert_eq!(attrs[0], StunAttr::Software(b"STUN test client"));
    assert_eq!(attrs[2], StunAttr::IceControlled(0x932ff9b151263b36));
    m.verify_integrity(PASSWORD).unwrap();
    m.verify_fingerprint().unwrap();
    assert_eq!(
        m.verify_integrity(b"wrong"),
        Err(StunError::IntegrityMismatch)
    );
    assert_eq!(
        m.verify_integrity_sha256(PASSWORD),
        Err(StunError::NoIntegrity)
    );

    let rebuilt = build(Class::Request, &attrs[..4]);
    assert_eq!(rebuilt, REQUEST);
}

#[test]
fn rfc5769_ipv4_response() {
    let m = StunMessage::parse(RESPONSE_V4).unwrap();
    assert_eq!(m.class(), Class::SuccessResponse);
    let want: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    assert_eq!(m.xor_mapped_address(), Some(want));
    m.verify_integrity(PASSWORD).unwrap();
    m.verify_fingerprint().unwrap();
    let rebuilt = build(
        Class::SuccessResponse,
        &[
            StunAttr::Software(b"test vector"),
            StunAttr::XorMappedAddress(want),
        ],
    );
    assert_eq!(rebuilt, RESPONSE_V4);
}

#[test]
fn rfc5769_ipv6_response() {
    let m = StunMessage::parse(RESPONSE_V6).unwrap();
    let want: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap();
    assert_eq!(m.xor_mapped_address(), Some(want));
    m.verify_integrity(PASSWORD).unwrap();
    m.verify_fingerprint().unwrap();
    let rebuilt = build(
        Class::SuccessResponse,
        &[
            StunAttr::Software(b"test vector"),
            StunAttr::XorMappedAddress(want),
        ],
    );
    assert_eq!(rebuilt, RESPONSE_V6);
}

#[test]
fn tampering_breaks_integrity_and_fingerprint() {
    for i in 0..REQUEST.len() - 8 {
        let mut v = REQUEST.to_vec();
        v[i] ^= 0x01;
        let Ok(m) = StunMessage::parse(&v) else {
            continue;
        };
        assert!(
            m.verify_fingerprint().is_err(),
            "byte {i} flipped, fingerprint still ok"
        );
        if i < 0x58 + 20 - 8 - 20 {
            // Every byte before MESSAGE-INTEGRITY's value is covered by the HMAC.
            if m.has_integrity() {
                assert!(
                    m.verify_integrity(PASSWORD).is_err(),
                    "byte {i} flipped, HMAC still ok"
                );
            }
        }
    }
}

#[test]
fn sha256_integrity_round_trip() {
    let mut buf = [0u8; 256];
    let mut w = StunWriter::new(&mut buf, Class::Request, Method::BINDING, TID).unwrap();
    w.add(&StunAttr::Username(b"a:b")).unwrap();
    w.add(&StunAttr::UseCandidate).unwrap();
    w.add(&StunAttr::IceControlling(42)).unwrap();
    w.add_message_integrity(PASSWORD).unwrap();
    w.add_message_integrity_sha256(PASSWORD).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    let m = StunMessage::parse(&buf[..n]).unwrap();
    assert!(m.use_candidate());
    m.verify_integrity(PASSWORD).unwrap();
    m.verify_integrity_sha256(PASSWORD).unwrap();
    m.verify_fingerprint().unwrap();
    assert_eq!(
        m.verify_integrity_sha256(b"nope"),
        Err(StunError::IntegrityMismatch)
    );
}
