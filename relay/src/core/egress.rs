//! The one way out toward a transport: **rewrite → protect → batch → cache → count**
//! (the rewrite: SSRC, sequence number, timestamp, and the payload type when the receiver
//! numbers the codec differently).
//!
//! Every datagram the core sends goes through [`egress`]: forwarded media, media held for a
//! transport that has not latched (early media: rewritten and cached instead of batched),
//! early media replayed when it latches, retransmissions answered from the cache, the RTCP
//! reports the relay generates and the feedback it forwards, and STUN answers.

use std::time::Instant;

use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtp;

use super::mid::MidRewrite;
use super::processor::StreamKind;
use super::rewrite::Mapped;
use super::stats::DropReason;
use super::transmit::TxBatch;
use super::transport::{Held, PeerMode, Transport};

/// What goes out.
pub(super) enum Out<'a> {
    /// An RTP packet in plain form (decrypted), rewritten with `map` for send stream `slot`.
    /// Without a peer yet, a latching transport holds it (early media).
    Rtp {
        /// The packet as the source sent it.
        plain: &'a [u8],
        /// Its rewritten header fields.
        map: Mapped,
        /// The payload type toward the receiver, when it differs from the source's.
        pt: Option<Pt>,
        /// The receiver's MID extension, when it negotiated one.
        mid: Option<MidRewrite>,
        /// The send stream.
        slot: u32,
        /// Payload bytes (for the sender report's octet count).
        payload_len: u32,
        /// Arrival, for early media.
        now: Instant,
    },
    /// A plain RTP packet that already carries its outgoing header (replayed early media):
    /// protected, batched, and cached under its SSRC and sequence number.
    Replay(&'a [u8]),
    /// Bytes exactly as they go on the wire (a retransmission from the cache).
    Wire(&'a [u8]),
    /// An RTCP compound written by the closure (0: nothing), protected as SRTCP.
    Rtcp(&'a mut dyn FnMut(&mut [u8]) -> usize),
    /// A datagram written by the closure and sent as is toward `to` (a STUN answer).
    Raw(std::net::SocketAddr, &'a mut dyn FnMut(&mut [u8]) -> usize),
}

/// How an egress ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    /// Queued in the batch.
    Batched,
    /// Held for a transport that has not latched.
    Held,
    /// Not sent: no peer and nothing to hold, or protection failed (nothing counted).
    Nothing,
    /// The batch was full (counted as `tx_full` on the transport).
    Full,
}

/// Sends `out` toward transport `t`. See the module docs.
#[inline]
pub(super) fn egress(tx: &mut TxBatch, t: &mut Transport, out: Out<'_>) -> Sent {
    // A browser transport gets no media before DTLS-SRTP keys it (RTP is held as early
    // media meanwhile, exactly as for a transport with no peer yet).
    let peer = match (&out, t.peer.filter(|_| t.media_ready())) {
        (Out::Raw(to, _), _) => *to,
        (_, Some(p)) => p,
        (Out::Rtp { .. }, None) => return hold(t, out),
        (_, None) => return Sent::Nothing,
    };
    // Only video is kept for retransmission: audio is not NACKed (Opus has its in-band FEC;
    // browsers do not offer `nack` for audio, the edge client NACKs video only), and copying
    // every audio packet into a ring of cold memory was a third of the cache's cost per
    // packet. A NACK for audio still reaches the sender (forwarded as a cache miss).
    let mut retransmittable = true;
    let (pushed, kind) = match out {
        Out::Rtp {
            plain,
            map,
            pt,
            mid,
            slot,
            payload_len,
            now,
        } => {
            let rewritten = mid.is_some_and(|m| tx.push_with(t.sock, peer, |b| m.write(plain, b)));
            let buf = if rewritten {
                tx.last_mut()
            } else {
                tx.push(t.sock, peer, plain)
            };
            let Some(buf) = buf else {
                // Counted on the source by the caller: it is the incoming packet that is lost.
                return Sent::Full;
            };
            if !map.identity {
                write_header(buf, map);
            }
            if let Some(pt) = pt {
                let _ = rtp::set_payload_type(buf, pt);
            }
            // The transport-wide sequence number the rewrite reserved (see [`super::bwe`]).
            if rewritten
                && let Some(m) = mid
                && let Some(at) = m.twcc_offset(buf)
                && let Some(bwe) = t.browser.as_mut().and_then(|b| b.bwe.as_mut())
            {
                let seq = bwe.stamp(buf.len());
                buf[at..at + 2].copy_from_slice(&seq.to_be_bytes());
            }
            if let Some(Some(s)) = t.send.get_mut(slot as usize) {
                retransmittable = StreamKind::of_clock(s.clock_rate) == StreamKind::Video;
                s.packets = s.packets.wrapping_add(1);
                s.octets = s.octets.wrapping_add(payload_len);
                s.last_sent = Some((map.ts, now));
            }
            (true, Kind::Rtp)
        }
        Out::Replay(pkt) => (tx.push(t.sock, peer, pkt).is_some(), Kind::Rtp),
        Out::Wire(pkt) => (tx.push(t.sock, peer, pkt).is_some(), Kind::Wire),
        Out::Rtcp(write) => (tx.push_with(t.sock, peer, write), Kind::Rtcp),
        Out::Raw(to, write) => (tx.push_with(t.sock, to, write), Kind::Wire),
    };
    if !pushed {
        if tx.room() == 0 {
            t.counters.drop(DropReason::TxFull);
            return Sent::Full;
        }
        return Sent::Nothing;
    }
    if !protect_last(tx, t, kind) {
        return Sent::Nothing; // grow_last took it back out
    }
    let Some(wire) = tx.last_mut() else {
        return Sent::Nothing;
    };
    if kind == Kind::Rtp && retransmittable && t.cache.keeps_sent() && wire.len() >= 12 {
        let ssrc = Ssrc(u32::from_be_bytes([wire[8], wire[9], wire[10], wire[11]]));
        let seq = u16::from_be_bytes([wire[2], wire[3]]);
        t.cache.insert(ssrc, seq, wire);
    }
    t.counters.packets_out += 1;
    t.counters.bytes_out += wire.len() as u64;
    Sent::Batched
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rtp,
    Rtcp,
    Wire,
}

#[inline]
pub(super) fn write_header(buf: &mut [u8], map: Mapped) {
    // The packet was parsed as RTP before it came here: the fixed header is there.
    let _ = rtp::set_ssrc(buf, map.ssrc);
    let _ = rtp::set_sequence_number(buf, map.seq);
    let _ = rtp::set_timestamp(buf, map.ts);
}

/// SRTP/SRTCP-protects the last datagram of the batch in place with the transport's context
/// (the batch leaves room for the tag); on failure the datagram is taken back out.
#[inline]
fn protect_last(tx: &mut TxBatch, t: &mut Transport, kind: Kind) -> bool {
    let Some(s) = t.srtp.as_mut() else {
        return true;
    };
    match kind {
        Kind::Rtp => tx.grow_last(|b, len| s.protect_rtp(b, len)).is_ok(),
        Kind::Rtcp => tx.grow_last(|b, len| s.protect_rtcp(b, len)).is_ok(),
        Kind::Wire => true,
    }
}

/// Early media: a latching transport with no peer yet holds the packet, rewritten as it will
/// be sent, in its retransmission cache (which nothing else uses before latching).
fn hold(t: &mut Transport, out: Out<'_>) -> Sent {
    let Out::Rtp {
        plain,
        map,
        pt,
        mid,
        slot,
        now,
        ..
    } = out
    else {
        return Sent::Nothing;
    };
    if !matches!(t.mode, PeerMode::Latching) || !t.cache.is_enabled() {
        return Sent::Nothing;
    }
    // Held as it will go out: with the receiver's MID (rewritten on the stack, not per
    // packet on the heap).
    let mut scratch = [0u8; super::transmit::MAX_DATAGRAM];
    let n = mid.map_or(0, |m| m.write(plain, &mut scratch));
    let plain = if n > 0 { &scratch[..n] } else { plain };
    let Some(buf) = t.cache.insert_mut(map.ssrc, map.seq, plain) else {
        return Sent::Nothing;
    };
    if !map.identity {
        write_header(buf, map);
    }
    if let Some(pt) = pt {
        let _ = rtp::set_payload_type(buf, pt);
    }
    if let Some(Some(s)) = t.send.get_mut(slot as usize) {
        s.held_last_ts = Some(map.ts);
    }
    t.early.push(Held {
        slot,
        ssrc: map.ssrc,
        seq: map.seq,
        ts: map.ts,
        at: now,
    });
    t.counters.early_held += 1;
    Sent::Held
}

/// The transport just learned its peer: sends what was held for it, oldest first, through
/// [`egress`] (so SRTP transports get it protected with their own key), if no older than
/// `max_age` by arrival and by RTP time behind the newest held packet of its stream. The
/// cache is left holding exactly what went on the wire (so NACKs get the right bytes).
pub(super) fn replay_early(
    now: Instant,
    max_age: std::time::Duration,
    t: &mut Transport,
    tx: &mut TxBatch,
) {
    if t.early.is_empty() {
        return;
    }
    let held: Vec<Held> = t.early.drain().collect();
    let plain_cache = t.srtp.is_some();
    let mut sent = 0u64;
    let mut buf = [0u8; super::transmit::MAX_DATAGRAM];
    // Plain transports: the cache already holds the wire bytes; SRTP transports: it holds
    // plain packets that must never answer a NACK, so it is rebuilt from what egress caches.
    let mut packets: Vec<(usize, Held)> = Vec::with_capacity(held.len());
    for h in held {
        if now.saturating_duration_since(h.at) > max_age {
            continue;
        }
        let (clock, newest) = match t.send.get(h.slot as usize) {
            Some(Some(s)) => (s.clock_rate, s.held_last_ts.unwrap_or(h.ts)),
            _ => continue,
        };
        let max_ticks = (max_age.as_micros() as u64 * u64::from(clock) / 1_000_000) as i64;
        if i64::from(newest.wrapping_sub(h.ts) as i32) > max_ticks {
            continue; // too old to be worth playing
        }
        let Some(pkt) = t.cache.get(h.ssrc, h.seq) else {
            continue; // overwritten by later packets in the ring
        };
        packets.push((pkt.len(), h));
    }
    let mut stash: Vec<u8> = Vec::new();
    if plain_cache {
        // Copy the held packets out before the cache is rebuilt.
        for (_, h) in &packets {
            if let Some(p) = t.cache.get(h.ssrc, h.seq) {
                stash.extend_from_slice(p);
            }
        }
        t.cache.clear();
    }
    let mut off = 0usize;
    for (len, h) in packets {
        let r = if plain_cache {
            let p = &stash[off..off + len];
            off += len;
            egress(tx, t, Out::Replay(p))
        } else {
            let Some(p) = t.cache.get(h.ssrc, h.seq) else {
                continue;
            };
            buf[..len].copy_from_slice(p);
            egress(tx, t, Out::Wire(&buf[..len]))
        };
        match r {
            Sent::Batched => sent += 1,
            Sent::Full => break,
            _ => {}
        }
    }
    for s in t.send.iter_mut().flatten() {
        s.held_last_ts = None;
    }
    if plain_cache && sent == 0 {
        t.cache.clear();
    }
    t.counters.early_replayed += sent;
}
