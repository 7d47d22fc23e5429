//! The engine's RTCP: sender reports with reception report blocks every second, and what
//! received reports and feedback mean (RTT from LSR/DLSR, keyframe requests, NACKs).

use std::time::{Duration, Instant};

use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{
    ReceiverReport, ReportBlock, RtcpPacket, Sdes, SdesChunk, SdesChunks, SdesItem, SdesItems,
    SenderReport, WireList, write_compound,
};

use super::clock::MediaClock;
use super::{AudioSender, VideoSender};
use supernode_media::rfc3550::{ReceiveStats, rtt};

/// Interval between reports.
const INTERVAL: Duration = Duration::from_secs(1);
/// RTT samples kept.
const MAX_RTT_SAMPLES: usize = 1024;

/// What a feedback packet asks of our sender.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Feedback {
    None,
    Keyframe,
    Nack(Vec<u16>),
}

/// Classifies feedback aimed at our video stream (a PLI/FIR/NACK naming our audio SSRC is
/// not for the video sender).
pub(super) fn classify_feedback(
    p: &RtcpPacket<'_>,
    own_audio: Ssrc,
    own_video: Option<Ssrc>,
) -> Feedback {
    let Some(video) = own_video else {
        return Feedback::None;
    };
    match p {
        RtcpPacket::Pli(pli) if pli.media_ssrc != own_audio => Feedback::Keyframe,
        RtcpPacket::Fir(fir) if fir.entries.iter().any(|e| e.ssrc == video) => Feedback::Keyframe,
        RtcpPacket::Nack(n) if n.media_ssrc == video => Feedback::Nack(n.lost().collect()),
        _ => Feedback::None,
    }
}

/// Report timing and RTT samples.
#[derive(Debug)]
pub(super) struct RtcpState {
    next: Instant,
    rtt_ms: Vec<f64>,
    cname: Vec<u8>,
}

impl RtcpState {
    pub(super) fn new(start: Instant) -> Self {
        Self {
            next: start + INTERVAL / 2,
            rtt_ms: Vec::new(),
            cname: b"supernode-edge".to_vec(),
        }
    }

    pub(super) fn next_due(&self) -> Instant {
        self.next
    }

    /// The compound report due at `now`: an SR per sent stream (the first carrying the
    /// report blocks), then SDES with a CNAME.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build_reports(
        &mut self,
        now: Instant,
        clock: &MediaClock,
        audio: &AudioSender,
        video: Option<&VideoSender>,
        audio_stats: &mut ReceiveStats,
        remote_audio: Option<Ssrc>,
        video_stats: Option<&mut ReceiveStats>,
        remote_video: Option<Ssrc>,
    ) -> Option<Vec<u8>> {
        while self.next <= now {
            self.next += INTERVAL;
        }
        let mut blocks: Vec<ReportBlock> = Vec::with_capacity(2);
        if let Some(s) = remote_audio {
            blocks.push(audio_stats.report_block(now, s));
        }
        if let (Some(s), Some(st)) = (remote_video, video_stats) {
            blocks.push(st.report_block(now, s));
        }
        let ntp = clock.ntp(now);
        let mut packets = Vec::with_capacity(3);
        packets.push(RtcpPacket::SenderReport(SenderReport {
            ssrc: audio.ssrc(),
            ntp_time: ntp,
            rtp_time: audio.rtp_time_at(now),
            packet_count: audio.packets as u32,
            octet_count: audio.octets as u32,
            reports: WireList::Items(&blocks),
            profile_extension: &[],
        }));
        if let Some(v) = video {
            packets.push(RtcpPacket::SenderReport(SenderReport {
                ssrc: v.ssrc(),
                ntp_time: ntp,
                rtp_time: v.rtp_time_at(now, clock),
                packet_count: v.packets as u32,
                octet_count: v.octets as u32,
                reports: WireList::Items(&[]),
                profile_extension: &[],
            }));
        }
        let items = [SdesItem {
            kind: SdesItem::CNAME,
            text: &self.cname,
        }];
        let chunks = [SdesChunk {
            ssrc: audio.ssrc(),
            items: SdesItems::Items(&items),
        }];
        packets.push(RtcpPacket::Sdes(Sdes {
            chunks: SdesChunks::Items(&chunks),
        }));
        let mut out = vec![0u8; 1200];
        let n = write_compound(&packets, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }

    /// A received RTCP packet: SRs update the LSR of the stream they describe; report
    /// blocks about our SSRCs give RTT samples.
    pub(super) fn on_packet(
        &mut self,
        now: Instant,
        clock: &MediaClock,
        p: &RtcpPacket<'_>,
        own: [Option<Ssrc>; 2],
        audio: (Option<Ssrc>, &mut ReceiveStats),
        video: (Option<Ssrc>, Option<&mut ReceiveStats>),
    ) {
        let blocks = match p {
            RtcpPacket::SenderReport(sr) => {
                if Some(sr.ssrc) == audio.0 {
                    audio.1.on_sender_report(now, sr.ntp_time);
                } else if Some(sr.ssrc) == video.0
                    && let Some(v) = video.1
                {
                    v.on_sender_report(now, sr.ntp_time);
                }
                sr.reports
            }
            RtcpPacket::ReceiverReport(ReceiverReport { reports, .. }) => *reports,
            _ => return,
        };
        for b in blocks.iter() {
            if b.last_sr == 0 || !own.contains(&Some(b.ssrc)) {
                continue;
            }
            // RTT = arrival − LSR − DLSR (RFC 3550 §6.4.1), with media's one sanity limit.
            if let Some(rtt) =
                rtt::from_report(clock.ntp_mid(now), b.last_sr, b.delay_since_last_sr)
                && self.rtt_ms.len() < MAX_RTT_SAMPLES
            {
                self.rtt_ms.push(rtt.as_secs_f64() * 1000.0);
            }
        }
    }

    /// Median RTT in milliseconds.
    pub(super) fn rtt_ms(&self) -> Option<f64> {
        let mut v = self.rtt_ms.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }
}
