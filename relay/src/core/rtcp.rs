//! RTCP per leg. The relay terminates RTCP on each leg (as an SFU does) rather than passing
//! the peers' reports through, because what each leg sees (after rewriting, fan-out and the
//! relay's own retransmissions) is not what the other side sent:
//!
//! - toward each leg, every `report_interval` on average (each interval drawn from 0.5–1.5×
//!   it, RFC 3550 §6.3.1, so legs created together do not report together), an SR (when
//!   the relay sends media to that leg) or an RR, whose report block describes what the relay receives from the leg;
//! - from each leg: SR (kept for the LSR/DLSR of the next report), RR blocks about the
//!   relay's SR (round-trip time), generic NACK (answered from the leg's retransmission
//!   cache), PLI and FIR (forwarded as a PLI to every leg feeding this one, coalesced to one
//!   per `keyframe_min_interval` per sender). SDES, BYE, APP, REMB and transport-cc feedback
//!   are consumed and not forwarded.

use std::net::SocketAddr;
use std::time::Instant;

use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{
    Pli, ReceiverReport, ReportBlock, RtcpCompound, RtcpPacket, SenderReport, WireList,
    write_compound,
};
use supernode_media::rfc3550::{ntp, rtt};

use super::stats::DropReason;
use super::transmit::TxBatch;
use super::{Core, PeerMode};

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
        let leg = self.legs[li as usize].as_mut().expect("live leg");
        if !leg.is_peer(src) {
            // RTCP never latches: the media stream does.
            leg.counters.drop(DropReason::Stranger);
            return;
        }
        // SRTCP: unprotected in place in the core's scratch buffer, taken for this packet.
        let mut scratch = std::mem::take(&mut self.srtp_scratch);
        let leg = self.legs[li as usize].as_mut().expect("live leg");
        let decrypted = match leg.srtp.as_mut() {
            Some(s) => match s.unprotect_rtcp(data, &mut scratch) {
                Ok(n) => Some(n),
                Err(_) => {
                    leg.counters.drop(DropReason::SrtpAuth);
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
            leg.counters.drop(DropReason::Malformed);
            self.srtp_scratch = scratch;
            return;
        }
        leg.counters.rtcp_in += 1;
        leg.counters.bytes_in += data.len() as u64;
        leg.last_rx = now;
        leg.heard = true;
        let now_mid = ntp::mid(self.ntp_now(now));
        for p in RtcpCompound::parse(plain).flatten() {
            match p {
                RtcpPacket::SenderReport(sr) => {
                    let leg = self.leg_mut(li);
                    leg.rx.on_sender_report(now, sr.ntp_time);
                    self.on_report_blocks(li, now_mid, sr.reports);
                }
                RtcpPacket::ReceiverReport(rr) => self.on_report_blocks(li, now_mid, rr.reports),
                RtcpPacket::Nack(nack) => {
                    for seq in nack.lost() {
                        self.retransmit(li, seq, tx);
                    }
                }
                RtcpPacket::Pli(_) | RtcpPacket::Fir(_) => self.on_keyframe_request(now, li, tx),
                _ => {}
            }
        }
        self.srtp_scratch = scratch;
    }

    fn on_report_blocks(&mut self, li: u32, now_mid: u32, blocks: WireList<'_, ReportBlock>) {
        let leg = self.leg_mut(li);
        let Some(out) = leg.rewrite.out_ssrc() else {
            return;
        };
        for b in blocks.iter() {
            if b.ssrc == out
                && let Some(r) = rtt::from_report(now_mid, b.last_sr, b.delay_since_last_sr)
            {
                leg.rtt = Some(r);
            }
        }
    }

    fn retransmit(&mut self, li: u32, seq: u16, tx: &mut TxBatch) {
        let leg = self.legs[li as usize].as_mut().expect("live leg");
        let Some(peer) = leg.peer else { return };
        match leg.cache.get(seq) {
            Some(pkt) => {
                if tx.push(leg.sock, peer, pkt).is_some() {
                    leg.counters.nack_retransmits += 1;
                    leg.counters.packets_out += 1;
                    leg.counters.bytes_out += pkt.len() as u64;
                } else {
                    leg.counters.drop(DropReason::TxFull);
                }
            }
            None => leg.counters.nack_misses += 1,
        }
    }

    fn on_keyframe_request(&mut self, now: Instant, li: u32, tx: &mut TxBatch) {
        let min = self.config.keyframe_min_interval;
        let leg = self.leg_mut(li);
        leg.counters.keyframe_requests_in += 1;
        // Ask every leg that feeds this one.
        for k in 0..self.leg(li).sources.len() {
            let si = self.leg(li).sources[k];
            let src_leg = self.legs[si as usize].as_mut().expect("live source");
            if let Some(t) = src_leg.last_keyframe_request
                && now.saturating_duration_since(t) < min
            {
                src_leg.counters.keyframe_requests_coalesced += 1;
                continue;
            }
            let (Some(peer), Some(media)) = (src_leg.peer, src_leg.ssrc) else {
                continue;
            };
            let pli = RtcpPacket::Pli(Pli {
                sender_ssrc: Ssrc(src_leg.report_ssrc),
                media_ssrc: Ssrc(media),
            });
            if push_rtcp(tx, src_leg, peer, &[pli]) {
                src_leg.last_keyframe_request = Some(now);
                src_leg.counters.keyframe_requests_out += 1;
            }
        }
    }

    /// Builds and queues the periodic report toward leg `li`.
    pub(super) fn send_report(&mut self, now: Instant, li: u32, tx: &mut TxBatch) {
        let ntp = self.ntp_now(now);
        let interval = self.jittered(self.config.report_interval);
        let leg = self.legs[li as usize].as_mut().expect("live leg");
        leg.next_report = now + interval;
        let Some(peer) = leg.peer else { return };
        if matches!(leg.mode, PeerMode::Latching) && !leg.heard {
            return;
        }
        let mut blocks = [ReportBlock::default(); 1];
        let nblocks = match leg.ssrc {
            Some(ssrc) if leg.rx.started() => {
                blocks[0] = leg.rx.report_block(now, Ssrc(ssrc));
                1
            }
            _ => 0,
        };
        let reports = WireList::Items(&blocks[..nblocks]);
        let pkt = match (leg.rewrite.out_ssrc(), leg.last_sent_ts) {
            (Some(out), Some((ts, at))) => {
                let elapsed = now.saturating_duration_since(at);
                let ticks =
                    (elapsed.as_micros() as u64 * u64::from(leg.clock_rate) / 1_000_000) as u32;
                leg.sent_sr = Some((ntp::mid(ntp), now));
                RtcpPacket::SenderReport(SenderReport {
                    ssrc: out,
                    ntp_time: ntp,
                    rtp_time: ts.wrapping_add(ticks),
                    packet_count: leg.sent_packets,
                    octet_count: leg.sent_octets,
                    reports,
                    profile_extension: &[],
                })
            }
            _ => RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: Ssrc(leg.report_ssrc),
                reports,
                profile_extension: &[],
            }),
        };
        if push_rtcp(tx, leg, peer, &[pkt]) {
            leg.counters.reports_sent += 1;
        }
    }
}

/// Writes `packets` as one compound toward `leg`'s peer, SRTCP-protected if the leg is.
fn push_rtcp(
    tx: &mut TxBatch,
    leg: &mut super::Leg,
    peer: SocketAddr,
    packets: &[RtcpPacket<'_>],
) -> bool {
    let sock = leg.sock;
    if !tx.push_with(sock, peer, |buf| write_compound(packets, buf).unwrap_or(0)) {
        leg.counters.drop(DropReason::TxFull);
        return false;
    }
    if let Some(s) = leg.srtp.as_mut()
        && tx.grow_last(|b, len| s.protect_rtcp(b, len)).is_err()
    {
        return false;
    }
    if let Some(t) = tx.items().last() {
        leg.counters.packets_out += 1;
        leg.counters.bytes_out += u64::from(t.len);
    }
    true
}
