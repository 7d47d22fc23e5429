//! Simulation helpers shared by tests, benches and the edge client: a speech-like test
//! signal, a similarity measure for codec round trips, an Opus + RFC 7587 RTP sender, and a
//! driver that plays a stream through a
//! [`NetEmulator`] into a [`JitterBuffer`] on simulated time (faster than real time).

mod similarity;
mod speech;

pub use similarity::{Similarity, similarity};
pub use speech::SpeechSynth;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{AudioDecoder, JitterBuffer, Operation};
use crate::codec::CodecError;
use crate::codec::opus::{OpusConfig, OpusEncoder};
use crate::ids::{Pt, Ssrc};
use crate::net::NetEmulator;
use crate::packet::rtp::{RtpHeader, RtpPacket};

/// Packet interval of the streams made here (20 ms frames).
pub const PACKET_INTERVAL: Duration = Duration::from_millis(20);
/// Pull interval of the receiver.
pub const PULL_INTERVAL: Duration = Duration::from_millis(10);

/// Encodes 48 kHz `pcm` (interleaved as `config.channels` says) with `config` into RTP
/// datagrams per RFC 7587: payload type 111, timestamps advancing by the frame's samples per
/// channel (960 for 20 ms), marker on the first packet.
/// Sequence numbers and timestamps start near the wrap to exercise unwrapping.
pub fn encode_rtp(config: &OpusConfig, pcm: &[i16], ssrc: Ssrc) -> Result<Vec<Bytes>, CodecError> {
    let mut enc = OpusEncoder::new(config)?;
    let frame = config.samples_per_frame();
    let mut payload = [0u8; 1500];
    let mut out = Vec::with_capacity(pcm.len() / frame.max(1) + 1);
    let mut header = RtpHeader {
        marker: true,
        payload_type: Pt(111),
        sequence_number: 65_000,
        timestamp: u32::MAX - 48_000,
        ssrc,
        ..Default::default()
    };
    let mut buf = BytesMut::with_capacity(pcm.len() / 8);
    for chunk in pcm.chunks_exact(frame) {
        let n = enc.encode(chunk, &mut payload)?;
        buf.clear();
        header
            .write_to_bytes(&payload[..n], &mut buf)
            .map_err(|_| CodecError::InvalidConfig("RTP header"))?;
        out.push(Bytes::copy_from_slice(&buf));
        header.marker = false;
        header.sequence_number = header.sequence_number.wrapping_add(1);
        // The RTP clock counts samples per channel (RFC 7587 §4.1).
        header.timestamp = header
            .timestamp
            .wrapping_add((frame / config.channels.count()) as u32);
    }
    Ok(out)
}

/// Receives one RTP datagram into the buffer: RFC 7587 depacketization is taking the RTP
/// payload as the Opus packet (zero-copy). Returns false when the datagram is not RTP or
/// the buffer refused its payload.
pub fn receive_rtp<D: AudioDecoder>(
    jb: &mut JitterBuffer<D>,
    now: Instant,
    datagram: &Bytes,
) -> bool {
    let Ok(pkt) = RtpPacket::parse(datagram) else {
        return false;
    };
    let payload = datagram.slice_ref(pkt.payload());
    jb.insert(now, pkt.sequence_number(), pkt.timestamp(), payload)
        .is_ok()
}

/// Plays `datagrams` (sent every 20 ms from `t0`) through `net` into `jb`, pulling every
/// 10 ms until everything sent was delivered and played (or until `tail` after the last
/// send at the latest), and hands each pulled frame to `sink` with its
/// pull time and operation. Events are processed in time order (sends, then deliveries, then
/// pulls at equal times).
pub fn play_through<D: AudioDecoder>(
    datagrams: &[Bytes],
    net: &mut NetEmulator,
    jb: &mut JitterBuffer<D>,
    t0: Instant,
    tail: Duration,
    mut sink: impl FnMut(Instant, &[i16], Operation),
) {
    let end = t0 + PACKET_INTERVAL * datagrams.len() as u32 + tail;
    let mut out = vec![0i16; jb.frame_len()];
    let mut next_send = 0usize;
    let mut pulls = 0u32;
    loop {
        let send_at =
            (next_send < datagrams.len()).then(|| t0 + PACKET_INTERVAL * next_send as u32);
        let pull_at = t0 + PULL_INTERVAL * pulls;
        let drained =
            next_send == datagrams.len() && net.in_flight() == 0 && jb.buffered_packets() == 0;
        if pull_at > end || (drained && pulls > 0) {
            break;
        }
        let deliver_at = net.next_delivery();
        if let Some(s) = send_at
            && s <= pull_at
            && deliver_at.is_none_or(|d| s <= d)
        {
            net.send(s, datagrams[next_send].clone());
            next_send += 1;
            continue;
        }
        if let Some(d) = deliver_at
            && d <= pull_at
        {
            while let Some(p) = net.poll(d) {
                receive_rtp(jb, d, &p);
            }
            continue;
        }
        let op = jb.pull(pull_at, &mut out).unwrap_or(Operation::Expand);
        sink(pull_at, &out, op);
        pulls += 1;
    }
}
