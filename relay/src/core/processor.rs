//! Processor transports and per-kind / per-stream subscriptions: how a conference's audio
//! goes to a mixer on a media thread and each participant's mix comes back to it alone,
//! while video is forwarded participant to participant (SFU).
//!
//! - A **processor transport** ([`Core::add_processor`]) has no socket and no peer: its far
//!   side is an in-process queue pair. What is forwarded to it is rewritten like toward any
//!   transport (one send stream per source stream, so the processor sees each participant's
//!   audio as one continuous stream), then handed to its [`ProcessorPort`] with the source
//!   transport's id; the port's `push` must not block (a bounded `try_send`; `false` is a
//!   counted `tx_full` drop on the processor transport, never a stalled worker). What the
//!   processor produces comes back through [`Core::handle_processed`]: an RTP packet of one
//!   of the processor's declared receive streams ([`Core::add_stream`]), forwarded to the
//!   transports subscribed to that stream. A processor transport is never idle-freed (its
//!   far side lives in the process; the control plane removes it) and gets no RTCP. Each
//!   source transport is capped at [`PROCESSOR_SOURCE_CAP`] toward it (a `rate_limited`
//!   drop on the processor transport): a participant that floods fills neither the media
//!   thread's shared queue nor anyone else's share of it.
//! - [`Core::connect_kind`]`(from, to, kind)` subscribes `to` to the streams of `from` of one
//!   [`StreamKind`] (by clock rate: 90 kHz is video), present and future: a participant's
//!   audio to the conference's processor, its video to every other participant.
//! - [`Core::subscribe_stream`]`(from, ssrc, to)` subscribes `to` to one stream of `from`:
//!   participant P's mix (a stream of the processor) to P alone.
//!
//! Driving a conference: one session; a processor transport with a [`ProcessorPort`]; per
//! participant its transport, `connect_kind(p, processor, Audio)`, `add_stream(processor,
//! mix SSRC of p)`, `subscribe_stream(processor, mix SSRC of p, p)` and
//! `connect_kind(p, q, Video)` both ways with every other participant q. On the packet
//! path nothing here allocates: the rewritten packet is built in a stack buffer and the
//! port copies it into its queue.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Instant;

use supernode_media::ids::{Pt, Ssrc};
use supernode_media::packet::rtp::RtpPacket;

use super::error::CoreError;
use super::ids::{LegId, SessionId, SockSlot};
use super::rate::{RateCap, RateLimiter};
use super::rewrite::Mapped;
use super::stats::DropReason;
use super::stream::{Out, RecvStream};
use super::transmit::{MAX_DATAGRAM, TxBatch};
use super::transport::{LegSpec, StreamSpec, Transport};
use super::{Core, transport};

/// The socket slot a processor transport is given: it never sends or receives on a socket.
pub const PROCESSOR_SOCK: SockSlot = SockSlot(u32::MAX);

/// Most streams a processor transport may declare (one mix per participant: a conference
/// of up to 64).
pub const PROCESSOR_MAX_STREAMS: usize = 64;

/// The payload type a processor numbers Opus by (the MCU's, in and out): audio from a
/// participant that numbers Opus otherwise (a browser) is translated to it on the way in,
/// and the mix back to the participant's own on the way out.
pub const PROCESSOR_OPUS_PT: Pt = Pt(111);

/// What one source transport may send toward a processor: 200 packets/s (a 5 ms Opus
/// frame rate), a burst of 200 ms.
pub const PROCESSOR_SOURCE_CAP: RateCap = RateCap {
    packets_per_sec: 200,
    bytes_per_sec: 0,
    burst_ms: 200,
};

/// The processor part of a transport: its port, and a rate limiter per source transport.
#[derive(Debug)]
pub struct ProcessorState {
    port: Arc<dyn ProcessorPort>,
    sources: Vec<(LegId, RateLimiter)>,
}

impl ProcessorState {
    fn new(port: Arc<dyn ProcessorPort>) -> Self {
        Self {
            port,
            sources: Vec::new(),
        }
    }

    /// Whether a packet from `from` is within its cap (a source's limiter is made at its
    /// first packet).
    fn admit(&mut self, now: Instant, from: LegId, len: usize) -> bool {
        let i = match self.sources.iter().position(|(l, _)| *l == from) {
            Some(i) => i,
            None => {
                self.sources
                    .push((from, RateLimiter::new(PROCESSOR_SOURCE_CAP, now)));
                self.sources.len() - 1
            }
        };
        self.sources[i].1.admit(now, len)
    }

    /// Forgets the limiter of a source transport that went away.
    pub(super) fn forget(&mut self, from: LegId) {
        self.sources.retain(|(l, _)| *l != from);
    }
}

/// The far side of a processor transport: an in-process queue toward a media thread.
pub trait ProcessorPort: Send + Sync + Debug {
    /// Queues one RTP packet (plain, already rewritten for the processor) that transport
    /// `from` sent, received at `now` (the core's clock: the port reads none). Must not
    /// block; `false` when the queue is full (the packet is dropped and counted by the
    /// core).
    fn push(&self, now: Instant, from: LegId, packet: &[u8]) -> bool;
}

/// The kind of a stream, for [`Core::connect_kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Audio: any clock rate but 90 kHz.
    Audio,
    /// Video: 90 kHz.
    Video,
}

impl StreamKind {
    /// The kind of a stream of this clock rate.
    pub fn of_clock(clock_rate: u32) -> Self {
        if clock_rate == 90_000 {
            StreamKind::Video
        } else {
            StreamKind::Audio
        }
    }
}

impl Core {
    /// Adds a processor transport `id` to `session`, whose far side is `port`. Its streams
    /// (what it sends back through [`Core::handle_processed`]) are declared with
    /// [`Core::add_stream`].
    pub fn add_processor(
        &mut self,
        now: Instant,
        id: LegId,
        session: SessionId,
        port: Arc<dyn ProcessorPort>,
    ) -> Result<(), CoreError> {
        let mut spec = LegSpec::latching(session, PROCESSOR_SOCK);
        spec.clock_rates = vec![(PROCESSOR_OPUS_PT, 48_000)];
        self.add_leg_with(now, id, spec, Some(Box::new(ProcessorState::new(port))))
    }

    /// Whether `id` is a processor transport.
    pub fn is_processor(&self, id: LegId) -> bool {
        self.idx(id)
            .map(|i| self.t(i).processor.is_some())
            .unwrap_or(false)
    }

    /// Declares one more stream that transport `id` sends (a processor's mix for one
    /// participant, or a late stream of a tool). Fails past the transport's bound or on an
    /// SSRC it already has.
    pub fn add_stream(&mut self, id: LegId, stream: StreamSpec) -> Result<(), CoreError> {
        let i = self.idx(id)?;
        let t = self.t(i);
        let max = if t.processor.is_some() {
            PROCESSOR_MAX_STREAMS
        } else {
            transport::MAX_STREAMS
        };
        if t.recv_index(stream.ssrc).is_some() {
            return Err(CoreError::BadStreams("an SSRC is declared twice"));
        }
        if t.recv.len() >= max {
            return Err(CoreError::BadStreams("too many streams declared"));
        }
        self.t_mut(i).declared = true;
        let now = self.t(i).last_rx;
        self.add_recv_stream(
            now,
            i,
            RecvStream::new(stream.ssrc, stream.clock_rate, true),
        );
        Ok(())
    }

    /// Removes a stream of transport `id` (a leaver's mix): what it fed is orphaned.
    pub fn remove_stream(&mut self, id: LegId, ssrc: Ssrc) -> Result<(), CoreError> {
        let i = self.idx(id)?;
        let Some(k) = self.t(i).recv_index(ssrc) else {
            return Ok(());
        };
        let now = self.t(i).last_rx;
        let r = self.t_mut(i).recv.remove(k);
        for o in r.outs {
            self.orphan(o, now);
        }
        Ok(())
    }

    /// Subscribes `to` to the streams of `from` of kind `kind`, present and future.
    pub fn connect_kind(
        &mut self,
        from: LegId,
        to: LegId,
        kind: StreamKind,
    ) -> Result<(), CoreError> {
        let (f, t) = self.check_route(from, to)?;
        let src = self.t(f);
        if src.kind_subscribers.contains(&(t, kind)) || src.subscribers.contains(&t) {
            return Ok(());
        }
        let max = self.config.max_destinations;
        if src.subscribers.len() + src.kind_subscribers.len() >= max {
            return Err(CoreError::TooManyDestinations(from.0, max));
        }
        self.t_mut(f).kind_subscribers.push((t, kind));
        if !self.t(t).publishers.contains(&f) {
            self.t_mut(t).publishers.push(f);
        }
        // A browser with several video m-lines: the source takes its slot now, so slots go
        // in the order of subscription (a conference's join order), not of first packets.
        if kind == StreamKind::Video
            && let Some(b) = self.t_mut(t).browser.as_deref_mut()
            && b.slotted(90_000)
        {
            let _ = b.slot_for(90_000, f);
        }
        for k in 0..self.t(f).recv.len() {
            if StreamKind::of_clock(self.t(f).recv[k].clock_rate) == kind {
                self.add_send_stream(f, k, t);
            }
        }
        Ok(())
    }

    /// Subscribes `to` to the one stream `ssrc` of `from` (which must exist: declared, or
    /// already learned).
    pub fn subscribe_stream(
        &mut self,
        from: LegId,
        ssrc: Ssrc,
        to: LegId,
    ) -> Result<(), CoreError> {
        let (f, t) = self.check_route(from, to)?;
        let k = self
            .t(f)
            .recv_index(ssrc)
            .ok_or(CoreError::UnknownStream(from.0, ssrc.0))?;
        if self.t(f).recv[k].outs.len() >= self.config.max_destinations {
            return Err(CoreError::TooManyDestinations(
                from.0,
                self.config.max_destinations,
            ));
        }
        self.add_send_stream(f, k, t);
        Ok(())
    }

    fn check_route(&self, from: LegId, to: LegId) -> Result<(u32, u32), CoreError> {
        let (f, t) = (self.idx(from)?, self.idx(to)?);
        if f == t {
            return Err(CoreError::SelfRoute);
        }
        if self.t(f).session != self.t(t).session {
            return Err(CoreError::CrossSession(from.0, to.0));
        }
        Ok((f, t))
    }

    /// Handles one RTP packet a processor produced for its transport `leg` (a mix): it is
    /// forwarded to the transports subscribed to its stream (by SSRC). A packet of an
    /// undeclared SSRC or that does not parse is a counted drop on the processor transport.
    pub fn handle_processed(
        &mut self,
        now: Instant,
        leg: LegId,
        data: &[u8],
        tx: &mut TxBatch,
    ) -> Result<(), CoreError> {
        let li = self.idx(leg)?;
        let t = self.t_mut(li);
        if t.processor.is_none() {
            return Err(CoreError::NotAProcessor(leg.0));
        }
        let Ok(pkt) = RtpPacket::parse(data) else {
            t.counters.drop(DropReason::Malformed);
            return Ok(());
        };
        let Some(k) = t.recv_index(pkt.ssrc()) else {
            t.counters.drop(DropReason::WrongSsrc);
            return Ok(());
        };
        let (seq, ts) = (pkt.sequence_number(), pkt.timestamp());
        t.recv[k].stats.on_packet(now, seq, ts);
        t.counters.rtp_in += 1;
        t.counters.bytes_in += data.len() as u64;
        t.last_rx = now;
        t.heard = true;
        let payload_len = data.len().saturating_sub(pkt.header_len()) as u32;
        self.forward_rtp(
            now,
            li,
            k,
            data,
            (seq, ts, payload_len, pkt.header_len()),
            tx,
        );
        Ok(())
    }
}

/// Forwarding toward a processor transport: the packet rewritten for its send stream `o`
/// (and its payload type `pt`, when translated), handed to its port. Returns whether it was queued.
#[inline]
pub(super) fn push_to_processor(
    dest: &mut Transport,
    o: Out,
    from: LegId,
    plain: &[u8],
    (map, pt): (Mapped, Option<Pt>),
    payload_len: u32,
    now: Instant,
) -> bool {
    let Some(p) = dest.processor.as_mut() else {
        return false;
    };
    if plain.len() > MAX_DATAGRAM || plain.len() < 12 {
        return false;
    }
    if !p.admit(now, from, plain.len()) {
        dest.counters.drop(DropReason::RateLimited);
        return false;
    }
    let mut buf = [0u8; MAX_DATAGRAM];
    let buf = &mut buf[..plain.len()];
    buf.copy_from_slice(plain);
    if !map.identity {
        super::egress::write_header(buf, map);
    }
    if let Some(pt) = pt {
        buf[1] = (buf[1] & 0x80) | pt.0;
    }
    if !p.port.push(now, from, buf) {
        dest.counters.drop(DropReason::TxFull);
        return false;
    }
    if let Some(Some(s)) = dest.send.get_mut(o.slot as usize) {
        s.packets = s.packets.wrapping_add(1);
        s.octets = s.octets.wrapping_add(payload_len);
        s.last_sent = Some((map.ts, now));
    }
    dest.counters.packets_out += 1;
    dest.counters.bytes_out += plain.len() as u64;
    true
}
