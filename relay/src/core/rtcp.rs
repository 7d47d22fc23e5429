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
use std::time::{Duration, Instant};

use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{
    Pli, ReceiverReport, ReportBlock, RtcpCompound, RtcpPacket, SenderReport, WireList,
    write_compound,
};

use super::stats::DropReason;
use super::transmit::TxBatch;
use super::{Core, PeerMode};

/// Seconds from 1900 (NTP era 0) to 1970 (Unix epoch).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp for a wall-clock time given as a duration since the Unix epoch.
pub fn ntp_from_unix(d: Duration) -> u64 {
    let secs = d.as_secs() + NTP_UNIX_OFFSET;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (RFC 3550 LSR format).
pub fn ntp_mid(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A duration in 1/65536 s units (RFC 3550 DLSR format).
pub fn to_q16(d: Duration) -> u32 {
    ((d.as_micros() as u64 * 65_536) / 1_000_000) as u32
}

impl Core {
    fn ntp_now(&self, now: Instant) -> u64 {
        ntp_from_unix(self.config.wallclock_at_epoch + now.saturating_duration_since(self.epoch))
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
        let decrypted = match leg.srtp.as_mut() {
            Some(s) => match s.unprotect_rtcp(data) {
                Ok(b) => Some(b),
                Err(_) => {
                    leg.counters.drop(DropReason::SrtpAuth);
                    return;
                }
            },
            None => None,
        };
        let plain: &[u8] = decrypted.as_deref().unwrap_or(data);
        if RtcpCompound::parse(plain).any(|p| p.is_err()) {
            leg.counters.drop(DropReason::Malformed);
            return;
        }
        leg.counters.rtcp_in += 1;
        leg.counters.bytes_in += data.len() as u64;
        leg.last_rx = now;
        leg.heard = true;
        let now_mid = ntp_mid(self.ntp_now(now));
        for p in RtcpCompound::parse(plain).flatten() {
            match p {
                RtcpPacket::SenderReport(sr) => {
                    let leg = self.leg_mut(li);
                    leg.last_sr = Some((ntp_mid(sr.ntp_time), now));
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
    }

    fn on_report_blocks(&mut self, li: u32, now_mid: u32, blocks: WireList<'_, ReportBlock>) {
        let leg = self.leg_mut(li);
        let Some(out) = leg.rewrite.out_ssrc() else {
            return;
        };
        for b in blocks.iter() {
            if b.ssrc == out && b.last_sr != 0 {
                let rtt_q16 = now_mid
                    .wrapping_sub(b.last_sr)
                    .wrapping_sub(b.delay_since_last_sr);
                // Ignore nonsense (a negative round trip wraps to a huge value).
                if rtt_q16 < 65_536 * 10 {
                    leg.rtt = Some(Duration::from_micros(
                        u64::from(rtt_q16) * 1_000_000 / 65_536,
                    ));
                }
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
                let (lsr, dlsr) = match leg.last_sr {
                    Some((mid, at)) => (mid, to_q16(now.saturating_duration_since(at))),
                    None => (0, 0),
                };
                blocks[0] = ReportBlock {
                    ssrc: Ssrc(ssrc),
                    fraction_lost: leg.rx.take_fraction_lost(),
                    cumulative_lost: leg
                        .rx
                        .lost()
                        .clamp(i64::from(i32::MIN), i64::from(i32::MAX))
                        as i32,
                    extended_highest_seq: leg.rx.extended_max(),
                    jitter: leg.rx.jitter(),
                    last_sr: lsr,
                    delay_since_last_sr: dlsr,
                };
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
                leg.sent_sr = Some((ntp_mid(ntp), now));
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
    if let Some(s) = leg.srtp.as_mut() {
        let plain = tx.last_mut().map(|b| b.to_vec()).unwrap_or_default();
        match s.protect_rtcp(&plain) {
            Ok(p) => {
                tx.replace_last(&p);
            }
            Err(_) => {
                tx.pop();
                return false;
            }
        }
    }
    if let Some(t) = tx.items().last() {
        leg.counters.packets_out += 1;
        leg.counters.bytes_out += u64::from(t.len);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_conversions() {
        let ntp = ntp_from_unix(Duration::from_millis(1_500));
        assert_eq!(ntp >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!((ntp & 0xffff_ffff) >> 31, 1, "half a second");
        assert_eq!(to_q16(Duration::from_millis(500)), 32_768);
        assert_eq!(ntp_mid(0x0001_0002_0003_0004), 0x0002_0003);
    }
}
