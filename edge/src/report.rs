//! [`CallReport`]: what one call looked like from one edge, printed for humans or as one
//! JSON object (`--report-json`).
//!
//! The JSON object nests by medium, so the keys the issue names are paths:
//! `audio.packets_received`, `audio.loss_pct`, `audio.jitter_ms`, `audio.similarity`,
//! `video.frames_decoded`, `video.psnr_db`, `rtt_ms`, `mouth_to_ear_ms`. A figure that could
//! not be measured (no reference signal, no marks found, no report block yet) is `null`.
//!
//! `audio.mos` is an ITU-T G.107 E-model estimate of the call as heard here
//! ([`CallReport::estimate_quality`]): from the loss before playout (network loss plus the
//! jitter buffer's late losses), the jitter buffer's delay, the RTCP round-trip time and the
//! codec (Opus), via `supernode_media::quality::CallFigures`; `audio.r_factor` is its
//! rating and `audio.estimated_delay_ms` the mouth-to-ear delay it assumed.

use serde::Serialize;
use supernode_media::quality::CallFigures;

/// The audio part of a call report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AudioReport {
    /// RTP packets sent.
    pub packets_sent: u64,
    /// Unique RTP packets received.
    pub packets_received: u64,
    /// Packets lost, in percent of those expected (RFC 3550 extended sequence range).
    pub loss_pct: f64,
    /// Interarrival jitter (RFC 3550 A.8), milliseconds.
    pub jitter_ms: f64,
    /// Similarity of the played-out audio to the sender's signal regenerated from its seed
    /// (see `crate::similarity`); `null` without a reference.
    pub similarity: Option<f64>,
    /// Share of played-out samples that were concealment, percent.
    pub concealment_pct: f64,
    /// Jitter-buffer late losses, percent.
    pub late_loss_pct: f64,
    /// Current jitter-buffer target delay, milliseconds.
    pub jitter_buffer_ms: f64,
    /// Timing marks found in the played-out audio.
    pub marks_detected: u64,
    /// Seconds of audio played out since the first packet.
    pub seconds_played: f64,
    /// E-model MOS estimate (1–4.5) of the audio heard here; `null` without audio.
    pub mos: Option<f64>,
    /// The E-model rating `R` behind `mos`.
    pub r_factor: Option<f64>,
    /// Mouth-to-ear delay the estimate assumed (RTT/2 + jitter buffer + codec), ms.
    pub estimated_delay_ms: Option<f64>,
}

/// The video part of a call report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VideoReport {
    /// Whether this edge sent and received video at all.
    pub enabled: bool,
    /// Frames encoded and sent.
    pub frames_sent: u64,
    /// RTP packets sent (retransmissions included).
    pub packets_sent: u64,
    /// Unique RTP packets received.
    pub packets_received: u64,
    /// Packets lost, percent.
    pub loss_pct: f64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Frames decoded.
    pub frames_decoded: u64,
    /// Mean PSNR (dB, all planes) of the decoded frames against the regenerated test
    /// pattern of the same index; `null` without a reference.
    pub psnr_db: Option<f64>,
    /// Lowest per-frame PSNR, dB.
    pub psnr_min_db: Option<f64>,
    /// NACK packets sent.
    pub nacks_sent: u64,
    /// PLI packets sent.
    pub plis_sent: u64,
    /// Keyframes sent in answer to PLI/FIR.
    pub keyframes_requested: u64,
    /// Packets retransmitted in answer to NACK.
    pub retransmissions: u64,
}

/// One received video stream of a conference.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VideoSourceReport {
    /// Its SSRC, as received.
    pub ssrc: u32,
    /// The participant (account id) whose video it is, from the roster's SSRCs; `null`
    /// when no participant declared it.
    pub participant: Option<String>,
    /// The test pattern variant its first picture matched (the sender's, when it sends
    /// the pattern).
    pub pattern_variant: Option<u8>,
    /// Unique RTP packets received.
    pub packets_received: u64,
    /// Packets lost, percent.
    pub loss_pct: f64,
    /// Frames decoded.
    pub frames_decoded: u64,
    /// Mean PSNR against the pattern variant, dB.
    pub psnr_db: Option<f64>,
    /// Lowest per-frame PSNR, dB.
    pub psnr_min_db: Option<f64>,
    /// NACK packets sent about it.
    pub nacks_sent: u64,
    /// PLI packets sent about it.
    pub plis_sent: u64,
    /// Seconds from the media's start to its first decoded picture.
    pub first_frame_s: Option<f64>,
    /// Seconds from the media's start to its last decoded picture.
    pub last_frame_s: Option<f64>,
    /// The longest time between two decoded pictures, milliseconds.
    pub max_frame_gap_ms: f64,
}

/// Datagrams that were dropped, by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DropReport {
    /// SRTP/SRTCP authentication failures (wrong key, tampering, malformed).
    pub srtp_auth: u64,
    /// SRTP/SRTCP replays (e.g. a retransmission of a packet that had arrived).
    pub srtp_replay: u64,
    /// Datagrams that did not parse as RTP/RTCP, and RTP payloads the depacketizer or
    /// jitter buffer refused.
    pub malformed: u64,
    /// RTP with a payload type or SSRC this call does not carry.
    pub unknown_stream: u64,
    /// Datagrams that are neither RTP nor RTCP.
    pub not_rtp: u64,
}

/// One edge's report of one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallReport {
    /// Whether the call counts as working (see [`CallReport::verdict`]).
    pub ok: bool,
    /// Why not, when `ok` is false.
    pub failure: Option<String>,
    /// Seconds the media ran.
    pub duration_s: f64,
    /// Audio figures.
    pub audio: AudioReport,
    /// Video figures (in a conference: summed over the received streams).
    pub video: VideoReport,
    /// In a conference: one entry per received video stream (empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub video_sources: Vec<VideoSourceReport>,
    /// Round-trip time to the next RTCP hop (the relay, which terminates RTCP; or the peer
    /// when talking directly), from RR LSR/DLSR, median, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Mouth-to-ear delay, median over the timing marks found, milliseconds (capture of a
    /// mark at the sender to its playout here; one host's wall clock).
    pub mouth_to_ear_ms: Option<f64>,
    /// Every mouth-to-ear measurement, milliseconds.
    pub mouth_to_ear_samples_ms: Vec<f64>,
    /// Dropped datagrams.
    pub drops: DropReport,
    /// How the call ended or failed at the signaling level (`hangup_sent`,
    /// `remote_hangup`, `busy`, `answered_elsewhere`, …); `null` without signaling.
    pub call_end: Option<String>,
}

impl CallReport {
    /// Decides `ok`/`failure`: audio must have been received and played; when video is
    /// enabled, frames must have been decoded.
    pub fn verdict(&mut self) {
        let failure = if self.audio.packets_received == 0 {
            Some("no audio received".to_owned())
        } else if self.video.enabled && self.video.frames_decoded == 0 {
            Some("no video frame decoded".to_owned())
        } else {
            None
        };
        self.ok = failure.is_none();
        self.failure = failure;
    }

    /// Fills `audio.mos`, `audio.r_factor` and `audio.estimated_delay_ms` from the measured
    /// loss (network plus late), jitter-buffer delay and RTT, for Opus; clears them when no
    /// audio was received.
    pub fn estimate_quality(&mut self) {
        let a = &mut self.audio;
        if a.packets_received == 0 {
            (a.mos, a.r_factor, a.estimated_delay_ms) = (None, None, None);
            return;
        }
        let f = CallFigures::opus(
            a.loss_pct + a.late_loss_pct,
            a.jitter_buffer_ms,
            self.rtt_ms,
        );
        a.mos = Some(f.mos());
        a.r_factor = Some(f.r());
        a.estimated_delay_ms = Some(f.mouth_to_ear_ms());
    }

    /// A report for a call that never got to media, failing for `why`.
    pub fn failed(why: &str, call_end: Option<String>) -> Self {
        Self {
            ok: false,
            failure: Some(why.to_owned()),
            call_end,
            ..Self::default()
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// The report for humans, several lines.
    pub fn to_human(&self) -> String {
        fn opt(v: Option<f64>, unit: &str, prec: usize) -> String {
            v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.prec$}{unit}"))
        }
        let mut s = String::new();
        s.push_str(&format!(
            "call {} after {:.1} s{}\n",
            if self.ok { "OK" } else { "FAILED" },
            self.duration_s,
            self.failure
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default()
        ));
        let a = &self.audio;
        s.push_str(&format!(
            "  audio: sent {} pkts, received {} pkts, loss {:.2}%, jitter {:.2} ms, similarity {}, concealment {:.2}%, jitter buffer {:.0} ms\n",
            a.packets_sent,
            a.packets_received,
            a.loss_pct,
            a.jitter_ms,
            opt(a.similarity, "", 3),
            a.concealment_pct,
            a.jitter_buffer_ms,
        ));
        let v = &self.video;
        if v.enabled {
            s.push_str(&format!(
                "  video: sent {} frames / {} pkts, received {} pkts, loss {:.2}%, decoded {} frames, PSNR {} (min {}), NACK {} PLI {}\n",
                v.frames_sent,
                v.packets_sent,
                v.packets_received,
                v.loss_pct,
                v.frames_decoded,
                opt(v.psnr_db, " dB", 1),
                opt(v.psnr_min_db, " dB", 1),
                v.nacks_sent,
                v.plis_sent,
            ));
        } else {
            s.push_str("  video: off\n");
        }
        if let (Some(m), Some(r)) = (a.mos, a.r_factor) {
            s.push_str(&format!(
                "  quality: MOS {m:.2} (E-model R {r:.1}; loss {:.2}%, delay {} ms)\n",
                a.loss_pct + a.late_loss_pct,
                opt(a.estimated_delay_ms, "", 0),
            ));
        }
        s.push_str(&format!(
            "  rtt {}, mouth-to-ear {} ({} marks)\n",
            opt(self.rtt_ms, " ms", 1),
            opt(self.mouth_to_ear_ms, " ms", 1),
            self.audio.marks_detected
        ));
        let d = &self.drops;
        if d.srtp_auth + d.malformed + d.unknown_stream + d.not_rtp > 0 {
            s.push_str(&format!(
                "  dropped: srtp auth {}, malformed {}, unknown stream {}, not rtp {}\n",
                d.srtp_auth, d.malformed, d.unknown_stream, d.not_rtp
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_issue_keys_and_verdict_works() {
        let mut r = CallReport::default();
        r.verdict();
        assert!(!r.ok);
        r.audio.packets_received = 10;
        r.verdict();
        assert!(r.ok);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for path in [
            "/audio/packets_received",
            "/audio/loss_pct",
            "/audio/jitter_ms",
            "/audio/similarity",
            "/video/frames_decoded",
            "/video/psnr_db",
            "/rtt_ms",
            "/mouth_to_ear_ms",
            "/audio/mos",
        ] {
            assert!(v.pointer(path).is_some(), "{path}");
        }
        assert!(r.to_human().contains("call OK"));
    }

    #[test]
    fn mos_estimate_is_the_e_model_of_the_measured_figures() {
        let mut r = CallReport::default();
        r.estimate_quality();
        assert_eq!(r.audio.mos, None, "no audio, no estimate");
        assert!(!r.to_human().contains("quality:"));
        // 0.5 % network loss + 0.5 % late = 1 %, 40 ms buffer, 60 ms RTT: the E-model by
        // hand gives R 87.10, MOS 4.262 (see supernode_media::quality::estimate's tests:
        // Ta = 30 + 40 + 26.5 = 96.5 ms, Idte 1.90, Idle 0.72, Ie,eff = 95/26.1 = 3.64).
        r.audio.packets_received = 500;
        r.audio.loss_pct = 0.5;
        r.audio.late_loss_pct = 0.5;
        r.audio.jitter_buffer_ms = 40.0;
        r.rtt_ms = Some(60.0);
        r.estimate_quality();
        let mos = r.audio.mos.unwrap();
        assert!((mos - 4.262).abs() < 0.002, "{mos}");
        assert!((r.audio.r_factor.unwrap() - 87.10).abs() < 0.02);
        assert_eq!(r.audio.estimated_delay_ms, Some(96.5));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert!((v["audio"]["mos"].as_f64().unwrap() - mos).abs() < 1e-12);
        assert!(
            r.to_human().contains("quality: MOS 4.26 (E-model R 87.1"),
            "{}",
            r.to_human()
        );
    }
}
