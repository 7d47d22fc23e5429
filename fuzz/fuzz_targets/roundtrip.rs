//! Fuzz target: parse, write, parse again, compare — for RTP, compound RTCP and STUN. The
//! first input byte picks the format; the rest is the datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use supernode_media::packet::rtcp::{RtcpCompound, write_compound};
use supernode_media::packet::rtp::{RtpHeader, RtpPacket};
use supernode_media::packet::stun::{StunMessage, StunWriter};

fuzz_target!(|input: &[u8]| {
    let Some((&sel, data)) = input.split_first() else {
        return;
    };
    let mut out = vec![0u8; data.len() * 2 + 1500];
    match sel % 3 {
        0 => {
            let Ok(p) = RtpPacket::parse(data) else {
                return;
            };
            let h = RtpHeader::from_packet(&p);
            let n = h
                .write(p.payload(), &mut out)
                .expect("write a parsed RTP header");
            let q = RtpPacket::parse(&out[..n]).expect("parse a written RTP packet");
            assert_eq!(RtpHeader::from_packet(&q), h);
            assert_eq!(q.payload(), p.payload());
        }
        1 => {
            let Ok(pkts) = RtcpCompound::parse(data).collect::<Result<Vec<_>, _>>() else {
                return;
            };
            let n = write_compound(&pkts, &mut out).expect("write parsed RTCP");
            let again: Vec<_> = RtcpCompound::parse(&out[..n])
                .collect::<Result<_, _>>()
                .expect("parse written RTCP");
            assert_eq!(again, pkts);
        }
        _ => {
            let Ok(m) = StunMessage::parse(data) else {
                return;
            };
            let mut w = StunWriter::new(&mut out, m.class(), m.method(), m.transaction_id())
                .expect("start STUN");
            for a in m.attributes() {
                w.add(&a).expect("write a parsed STUN attribute");
            }
            let n = w.finish();
            let again = StunMessage::parse(&out[..n]).expect("parse written STUN");
            assert_eq!(
                (again.class(), again.method(), again.transaction_id()),
                (m.class(), m.method(), m.transaction_id())
            );
            assert!(again.attributes().eq(m.attributes()));
        }
    }
});
