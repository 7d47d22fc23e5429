//! RTCP per transport. The relay terminates RTCP on each transport (as an SFU does) rather
//! than passing the peers' reports through, because what each transport sees (after
//! rewriting, fan-in, fan-out and the relay's own retransmissions) is not what the other side
//! sent:
//!
//! - toward each transport, every `report_interval` on average (each interval drawn from
//!   0.5–1.5× it, RFC 3550 §6.3.1, so transports created together do not report together),
//!   one compound: an SR per send stream that has carried media (the first SR carries the
//!   report blocks; without a send stream an RR does) and one report block per receive
//!   stream. **An SR carries its source's NTP↔RTP mapping through the rewrite**: the NTP
//!   time and RTP time of the source's last SR, both advanced by the time since it arrived,
//!   the RTP time mapped through the send stream's timestamp offset — so the receiver lines
//!   up audio and video of one sender as the sender did (lip sync survives the relay). Until
//!   the source has sent an SR, the relay's own clock and the last timestamp sent are used.
//! - from each transport: SR (kept per receive stream for the LSR/DLSR of the next report,
//!   and passed on to the send streams it feeds), report blocks about the relay's SRs
//!   (round-trip time, matched by the LSR the relay sent), generic NACK keyed by media SSRC
//!   (answered from the transport's retransmission cache — the nearest copy; what the cache
//!   does not hold, e.g. a packet lost before it reached the relay, or on a trunk before it
//!   reached this relay, is mapped back through the rewrite to the source transport and
//!   stream and asked of it in one NACK, so the request travels hop by hop toward the
//!   sender until a cache has the packet), PLI and FIR keyed by media SSRC
//!   (mapped back through the rewrite to the source transport and stream, sent there as a
//!   PLI, coalesced to one per `keyframe_min_interval` per source stream; an unknown media
//!   SSRC asks every source of the transport). Transport-cc feedback feeds the transport's
//!   bandwidth estimate ([`super::bwe`]), which picks its simulcast layers. SDES, BYE, APP
//!   and REMB are consumed and not forwarded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{
    Nack, NackPair, Pli, ReceiverReport, ReportBlock, RtcpCompound, RtcpPacket, SenderReport,
    WireList,
};
use supernode_media::rfc3550::{ntp, rtt};

use super::egress::{Out, egress};
use super::stats::DropReason;
use super::stream::SrInfo;
use super::transmit::TxBatch;
use super::transport::MAX_STREAMS;
use super::{Core, PeerMode};

/// Most sender reports in one compound toward a transport (one per send stream; the rest
/// wait for a later interval — the compound must fit one datagram).
pub const MAX_SENDER_REPORTS: usize = 32;

/// Most source streams one keyframe request is passed to.
const MAX_KEYFRAME_TARGETS: usize = 16;

/// Most lost packets of one NACK that are forwarded toward the source when no cache here
/// held them (the rest wait for the receiver's next NACK).
const MAX_FORWARDED_NACKS: usize = 32;

/// A duration as a 64-bit NTP interval (32.32 fixed point).
pub fn ntp_interval(d: Duration) -> u64 {
    (d.as_secs() << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// `d` in ticks of a `clock_rate` Hz media clock (wrapping, as RTP timestamps do).
fn ticks(d: Duration, clock_rate: u32) -> u32 {
    (d.as_micros() as u64 * u64::from(clock_rate) / 1_000_000) as u32
}

impl Core {
    fn ntp_now(&self, now: Instant) -> u64 {
        ntp::from_unix(self.config.wallclock_at_epoch + now.saturating_duration_since(self.epoch))
    }

    pub(super) fn on_rtcp(
        &mut self,
        now: Instant,
        li: u32,
        src: SocketAddr,
        data: &[u8],
        tx: &mut TxBatch,
    ) {
        let t = self.t_mut(li);
        if !t.is_peer(src) {
            // RTCP never latches: the media stream does.
            t.counters.drop(DropReason::Stranger);
            return;
        }
        if !t.media_ready() {
            t.counters.drop(DropReason::NotKeyed);
            return;
        }
        // SRTCP: unprotected in place in the core's scratch buffer, taken for this packet.
        let mut scratch = std::mem::take(&mut self.srtp_scratch);
        let t = self.t_mut(li);
        let decrypted = match t.srtp.as_mut() {
            Some(s) => match s.unprotect_rtcp(data, &mut scratch) {
                Ok(n) => Some(n),
                Err(_) => {
                    t.counters.drop(DropReason::SrtpAuth);
                    self.srtp_scratch = scratch;
                    return;
                }
            },
            None => None,
        };
        let plain: &[u8] = match decrypted {
            Some(n) => &scratch[..n],
            None => data,
        };
        if RtcpCompound::parse(plain).any(|p| p.is_err()) {
            t.counters.drop(DropReason::Malformed);
            self.srtp_scratch = scratch;
            return;
        }
        t.counters.rtcp_in += 1;
        t.counters.bytes_in += data.len() as u64;
        t.last_rx = now;
        t.heard = true;
        for p in RtcpCompound::parse(plain).flatten() {
            match p {
                RtcpPacket::SenderReport(sr) => {
                    let info = SrInfo {
                        ntp: sr.ntp_time,
                        rtp: sr.rtp_time,
                        at: now,
                    };
                    self.on_sender_report(li, sr.ssrc, info);
                    self.on_report_blocks(now, li, sr.reports);
                }
                RtcpPacket::ReceiverReport(rr) => self.on_report_blocks(now, li, rr.reports),
                RtcpPacket::Nack(nack) => {
                    // From now on what is sent toward this transport is kept.
                    self.t_mut(li).cache.arm();
                    let mut missed = [0u16; MAX_FORWARDED_NACKS];
                    let mut n = 0;
                    for seq in nack.lost() {
                        if !self.retransmit(li, nack.media_ssrc, seq, tx) && n < missed.len() {
                            missed[n] = seq;
                            n += 1;
                        }
                    }
                    if n > 0 {
                        self.forward_nack(now, li, nack.media_ssrc, &missed[..n], tx);
                    }
                }
                RtcpPacket::Pli(p) => self.on_keyframe_request(now, li, &[p.media_ssrc], tx),
                RtcpPacket::TransportFeedback(fb) => self.on_transport_feedback(now, li, &fb, tx),
                RtcpPacket::Fir(f) => {
                    let mut media = [Ssrc(0); 8];
                    let mut n = 0;
                    for e in f.entries.iter().take(media.len()) {
                        media[n] = e.ssrc;
                        n += 1;
                    }
                    self.on_keyframe_request(now, li, &media[..n], tx);
                }
                _ => {}
            }
        }
        self.srtp_scratch = scratch;
    }

    /// A sender report for stream `ssrc` of transport `li`: kept for LSR/DLSR, and passed to
    /// the send streams it feeds (their SRs carry it through the rewrite).
    fn on_sender_report(&mut self, li: u32, ssrc: Ssrc, info: SrInfo) {
        let t = self.t_mut(li);
        let Some(k) = t.recv_index(ssrc) else {
            return;
        };
        t.recv[k].last_sr = Some(info);
        t.recv[k].stats.on_sender_report(info.at, info.ntp);
        for j in 0..self.t(li).recv[k].outs.len() {
            let o = self.t(li).recv[k].outs[j];
            if let Some(s) = self
                .transports
                .get_mut(o.transport as usize)
                .and_then(|d| d.as_mut())
                .and_then(|d| d.send.get_mut(o.slot as usize))
                .and_then(|s| s.as_mut())
                && (s.layers.is_none() || s.source.is_some_and(|x| x.ssrc == ssrc))
            {
                s.source_sr = Some(info);
            }
        }
    }

    fn on_report_blocks(&mut self, now: Instant, li: u32, blocks: WireList<'_, ReportBlock>) {
        let t = self.t_mut(li);
        for b in blocks.iter() {
            if b.last_sr == 0 {
                continue;
            }
            let Some(slot) = t.send_by_ssrc(b.ssrc) else {
                continue;
            };
            let Some(Some(s)) = t.send.get(slot) else {
                continue;
            };
            let Some((mid, at)) = s.sent_sr else {
                continue;
            };
            if mid != b.last_sr {
                continue; // about an older SR than the last one sent
            }
            // The SR may carry its source's NTP timeline: the report's arrival in that
            // timeline is the SR's time plus the relay's own time since sending it.
            let arrival_mid = mid.wrapping_add(ntp::to_q16(now.saturating_duration_since(at)));
            if let Some(r) = rtt::from_report(arrival_mid, b.last_sr, b.delay_since_last_sr) {
                t.rtt = Some(r);
            }
        }
    }

    /// Answers a NACK for (`media`, `seq`) from transport `li`'s retransmission cache;
    /// `false` when the cache does not hold it (a counted miss).
    fn retransmit(&mut self, li: u32, media: Ssrc, seq: u16, tx: &mut TxBatch) -> bool {
        let t = self.t_mut(li);
        let mut buf = [0u8; super::transmit::MAX_DATAGRAM];
        let len = match t.cache.get(media, seq) {
            Some(pkt) => {
                buf[..pkt.len()].copy_from_slice(pkt);
                pkt.len()
            }
            None => {
                t.counters.nack_misses += 1;
                return false;
            }
        };
        if egress(tx, t, Out::Wire(&buf[..len])) == super::egress::Sent::Batched {
            t.counters.nack_retransmits += 1;
        }
        true
    }

    /// Asks the source of transport `li`'s send stream `media` for the packets `lost` (as
    /// `li` numbers them) that no cache here held: mapped back through the send stream's
    /// rewrite to the source stream's SSRC and sequence numbers, one NACK toward the source
    /// transport. Nothing when `media` is no send stream of `li` or it has no source.
    fn forward_nack(&mut self, now: Instant, li: u32, media: Ssrc, lost: &[u16], tx: &mut TxBatch) {
        let t = self.t(li);
        let Some(s) = t.send_by_ssrc(media).and_then(|i| t.send[i].as_ref()) else {
            return;
        };
        let Some(src) = s.source else {
            return;
        };
        let mut seqs = [0u16; MAX_FORWARDED_NACKS];
        let asked = lost.len().min(MAX_FORWARDED_NACKS);
        for (o, &l) in seqs.iter_mut().zip(lost) {
            *o = s.rewrite.unmap_seq(l);
        }
        let Some(Some(st)) = self.transports.get_mut(src.transport as usize) else {
            return;
        };
        if st.processor.is_some() || st.recv_index(src.ssrc).is_none() {
            return; // a mixer's output is made here, not resent
        }
        // The source's budget of resend requests: a receiver's NACK flood stops here.
        let mut kept = 0;
        for k in 0..asked {
            if st.nack_forward.admit(now, 0) {
                seqs[kept] = seqs[k];
                kept += 1;
            } else {
                st.counters.nacks_out_limited += 1;
            }
        }
        let seqs = &seqs[..kept];
        let mut pairs = [NackPair { pid: 0, blp: 0 }; MAX_FORWARDED_NACKS];
        let Some(n) = Nack::pack(seqs.iter().copied(), &mut pairs) else {
            return;
        };
        if n == 0 {
            return;
        }
        let nack = Nack {
            sender_ssrc: st.report_ssrc,
            media_ssrc: src.ssrc,
            pairs: WireList::Items(&pairs[..n]),
        };
        let mut write = |buf: &mut [u8]| nack.write(buf).unwrap_or(0);
        if egress(tx, st, Out::Rtcp(&mut write)) == super::egress::Sent::Batched {
            st.counters.nacks_out += seqs.len() as u64;
        }
    }

    /// A PLI or FIR from transport `li` about its send streams `media` (receiver-side SSRCs):
    /// each is mapped back through the rewrite to its source transport and stream, and a PLI
    /// goes there, coalesced per source stream. A media SSRC that matches no send stream asks
    /// every source of the transport.
    fn on_keyframe_request(&mut self, now: Instant, li: u32, media: &[Ssrc], tx: &mut TxBatch) {
        let min = self.config.keyframe_min_interval;
        let t = self.t_mut(li);
        t.counters.keyframe_requests_in += 1;
        // The sources asked: those of the named send streams, else every source of `li`.
        let mut targets = [None::<super::stream::Source>; MAX_KEYFRAME_TARGETS];
        let mut n = 0;
        for &m in media {
            if let Some(src) = t
                .send_by_ssrc(m)
                .and_then(|i| t.send[i].as_ref())
                .and_then(|s| s.source)
                && n < targets.len()
            {
                targets[n] = Some(src);
                n += 1;
            }
        }
        if n == 0 {
            for src in t.send.iter().flatten().filter_map(|s| s.source) {
                if n == targets.len() {
                    break;
                }
                targets[n] = Some(src);
                n += 1;
            }
        }
        for src in targets[..n].iter().flatten().copied() {
            let Some(Some(st)) = self.transports.get_mut(src.transport as usize) else {
                continue;
            };
            let Some(k) = st.recv_index(src.ssrc) else {
                continue;
            };
            if let Some(at) = st.recv[k].last_keyframe_request
                && now.saturating_duration_since(at) < min
            {
                st.counters.keyframe_requests_coalesced += 1;
                continue;
            }
            let pli = Pli {
                sender_ssrc: st.report_ssrc,
                media_ssrc: src.ssrc,
            };
            let mut write = |buf: &mut [u8]| pli.write(buf).unwrap_or(0);
            if egress(tx, st, Out::Rtcp(&mut write)) == super::egress::Sent::Batched {
                st.recv[k].last_keyframe_request = Some(now);
                st.counters.keyframe_requests_out += 1;
            }
        }
    }

    /// Browser transport `li` was just keyed: it decodes video only from a keyframe, and
    /// what was sent before its keys is gone, so every transport it receives from is asked
    /// for one (coalesced per source stream).
    pub(super) fn keyframes_for_new_receiver(&mut self, now: Instant, li: u32, tx: &mut TxBatch) {
        for i in 0..self.t(li).publishers.len() {
            let p = self.t(li).publishers[i];
            self.request_keyframe_of(now, p, tx);
        }
    }

    /// PLIs toward transport `li` for each of its video (90 kHz) receive streams.
    fn request_keyframe_of(&mut self, now: Instant, li: u32, tx: &mut TxBatch) -> u32 {
        let mut sent = 0;
        for k in 0..self.t(li).recv.len() {
            let r = &self.t(li).recv[k];
            if r.clock_rate != 90_000 || r.layer.is_some_and(|l| l.rtx) {
                continue;
            }
            if self.request_keyframe_of_stream(now, li, k, tx) {
                sent += 1;
            }
        }
        sent
    }

    /// A PLI toward transport `li` for its receive stream `k`, unless one went less than
    /// `keyframe_min_interval` ago (then counted as coalesced). Whether one was sent.
    pub(super) fn request_keyframe_of_stream(
        &mut self,
        now: Instant,
        li: u32,
        k: usize,
        tx: &mut TxBatch,
    ) -> bool {
        let min = self.config.keyframe_min_interval;
        let st = self.t_mut(li);
        let Some(r) = st.recv.get(k) else {
            return false;
        };
        if let Some(at) = r.last_keyframe_request
            && now.saturating_duration_since(at) < min
        {
            st.counters.keyframe_requests_coalesced += 1;
            return false;
        }
        let pli = Pli {
            sender_ssrc: st.report_ssrc,
            media_ssrc: r.ssrc,
        };
        let mut write = |buf: &mut [u8]| pli.write(buf).unwrap_or(0);
        if egress(tx, st, Out::Rtcp(&mut write)) == super::egress::Sent::Batched {
            st.recv[k].last_keyframe_request = Some(now);
            st.counters.keyframe_requests_out += 1;
            return true;
        }
        false
    }

    /// Builds and queues the periodic compound toward transport `li`: report blocks for its
    /// receive streams, an SR per send stream (see the module docs).
    pub(super) fn send_report(&mut self, now: Instant, li: u32, tx: &mut TxBatch) {
        let ntp_now = self.ntp_now(now);
        let interval = self.jittered(self.config.report_interval);
        let t = self.t_mut(li);
        t.next_report = now + interval;
        if t.peer.is_none() || (matches!(t.mode, PeerMode::Latching) && !t.heard) {
            return;
        }
        let mut blocks = [ReportBlock::default(); MAX_STREAMS];
        let mut nb = 0;
        for r in t
            .recv
            .iter_mut()
            .filter(|r| r.stats.started())
            .take(MAX_STREAMS)
        {
            blocks[nb] = r.stats.report_block(now, r.ssrc);
            nb += 1;
        }
        // (SSRC, NTP, RTP, packets, octets) of each SR.
        let mut srs = [(Ssrc(0), 0u64, 0u32, 0u32, 0u32); MAX_SENDER_REPORTS];
        let mut ns = 0;
        for s in t.send.iter_mut().flatten() {
            if ns == MAX_SENDER_REPORTS {
                break;
            }
            let Some((last_ts, last_at)) = s.last_sent else {
                continue;
            };
            if s.source.is_none() {
                continue; // orphaned: nothing flows on it now
            }
            let (ntp, rtp) = match s.source_sr {
                Some(sr) => {
                    let since = now.saturating_duration_since(sr.at);
                    (
                        sr.ntp.wrapping_add(ntp_interval(since)),
                        s.rewrite
                            .map_ts(sr.rtp)
                            .wrapping_add(ticks(since, s.clock_rate)),
                    )
                }
                None => (
                    ntp_now,
                    last_ts
                        .wrapping_add(ticks(now.saturating_duration_since(last_at), s.clock_rate)),
                ),
            };
            s.sent_sr = Some((ntp::mid(ntp), now));
            srs[ns] = (s.ssrc(), ntp, rtp, s.packets, s.octets);
            ns += 1;
        }
        let report_ssrc = t.report_ssrc;
        let mut write = |buf: &mut [u8]| -> usize {
            let reports = WireList::Items(&blocks[..nb]);
            let first = match srs[..ns].first() {
                Some(&(ssrc, ntp, rtp, packets, octets)) => {
                    RtcpPacket::SenderReport(SenderReport {
                        ssrc,
                        ntp_time: ntp,
                        rtp_time: rtp,
                        packet_count: packets,
                        octet_count: octets,
                        reports,
                        profile_extension: &[],
                    })
                }
                None => RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: report_ssrc,
                    reports,
                    profile_extension: &[],
                }),
            };
            let Ok(mut len) = first.write(buf) else {
                return 0;
            };
            for &(ssrc, ntp, rtp, packets, octets) in srs[..ns].iter().skip(1) {
                let sr = SenderReport {
                    ssrc,
                    ntp_time: ntp,
                    rtp_time: rtp,
                    packet_count: packets,
                    octet_count: octets,
                    reports: WireList::Items(&[]),
                    profile_extension: &[],
                };
                // Leave room for the SRTCP trailer.
                if len + sr.wire_len() > buf.len() - 64 {
                    break;
                }
                match sr.write(&mut buf[len..]) {
                    Ok(n) => len += n,
                    Err(_) => break,
                }
            }
            len
        };
        if egress(tx, t, Out::Rtcp(&mut write)) == super::egress::Sent::Batched {
            t.counters.reports_sent += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_interval_is_32_32_fixed_point() {
        assert_eq!(
            ntp_interval(Duration::from_millis(1_500)),
            (1 << 32) | (1 << 31)
        );
        assert_eq!(ntp_interval(Duration::ZERO), 0);
    }
}
