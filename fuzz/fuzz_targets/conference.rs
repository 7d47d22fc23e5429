//! Fuzz target: the audio MCU (`supernode_media::conference::AudioConference`) under
//! arbitrary datagrams from its participants, joins, leaves and clock moves.
//!
//! Each 4-byte record is one step: a datagram from participant `rec[1] % 6` (a real RTP
//! packet of Opus renumbered by the input, or raw bytes from the input), a join or a leave,
//! or a move of the clock followed by the due mixes. Checked: no panic; every mix leaves at
//! most one packet per participant, each a parseable RTP packet with the participant's
//! SSRC; counters stay consistent (packets in ≤ datagrams given).
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use supernode_media::codec::opus::OpusConfig;
use supernode_media::conference::{AudioConference, ConferenceConfig, ParticipantId};
use supernode_media::ids::Ssrc;
use supernode_media::jitter::sim::encode_rtp;
use supernode_media::packet::rtp::{RtpPacket, set_sequence_number, set_timestamp};

/// RTP packets of a short tone.
fn packets() -> &'static [Bytes] {
    static P: OnceLock<Vec<Bytes>> = OnceLock::new();
    P.get_or_init(|| {
        let pcm: Vec<i16> = (0..48_000 / 5)
            .map(|i| ((i as f64 * 0.05).sin() * 8000.0) as i16)
            .collect();
        encode_rtp(&OpusConfig::default(), &pcm, Ssrc(7)).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let config = ConferenceConfig {
        mixer: supernode_media::mixer::MixerConfig {
            max_participants: 4,
            ..Default::default()
        },
        ..ConferenceConfig::default()
    };
    let mut conf = AudioConference::new(config).unwrap();
    let t0 = Instant::now() + Duration::from_secs(3600);
    let mut now = t0;
    let mut given = [0u64; 6];
    let pk = packets();
    let mut rest = data;
    while rest.len() >= 4 {
        let (rec, tail) = rest.split_at(4);
        rest = tail;
        let who = ParticipantId(u32::from(rec[1] % 6));
        match rec[0] % 4 {
            0 | 1 => {
                let datagram = if rec[0] & 0x80 == 0 {
                    let mut p = pk[usize::from(rec[2]) % pk.len()].to_vec();
                    set_sequence_number(&mut p, u16::from(rec[3]) << 4).unwrap();
                    set_timestamp(&mut p, u32::from(rec[3]) * 960).unwrap();
                    Bytes::from(p)
                } else {
                    let n = usize::from(rec[3]).min(rest.len());
                    let (raw, tail) = rest.split_at(n);
                    rest = tail;
                    Bytes::copy_from_slice(raw)
                };
                if conf.handle_rtp(now, who, datagram).is_ok() {
                    given[who.0 as usize] += 1;
                }
            }
            2 => {
                if rec[2] & 1 == 0 {
                    let _ = conf.add(now, who, Ssrc(0x100 + who.0));
                } else {
                    conf.remove(who);
                }
            }
            _ => {
                now += Duration::from_micros(u64::from(u16::from_le_bytes([rec[2], rec[3]])) * 8);
                while conf.poll_timeout().is_some_and(|t| t <= now) {
                    conf.handle_timeout(now);
                    let mut seen = [false; 6];
                    while let Some(tx) = conf.poll_transmit() {
                        let i = tx.to.0 as usize;
                        assert!(!seen[i], "two packets for one participant in one frame");
                        seen[i] = true;
                        let p = RtpPacket::parse(tx.packet).expect("mixed packets are RTP");
                        assert_eq!(p.ssrc(), Ssrc(0x100 + tx.to.0));
                    }
                    while conf.poll_event().is_some() {}
                }
            }
        }
        assert!(conf.len() <= 4);
    }
    for id in conf.participants().collect::<Vec<_>>() {
        let s = conf.participant_stats(id).unwrap();
        assert!(s.packets_in <= given[id.0 as usize]);
    }
});
