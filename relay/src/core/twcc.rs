//! Transport-wide congestion control feedback toward a browser sender
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01): the relay reads the transport-wide
//! sequence number header extension (its id comes from the offer's `a=extmap`) of every
//! packet the browser sends on the transport (audio, video, RTX alike), records its arrival,
//! and every [`super::CoreConfig::twcc_interval`] sends one feedback packet (RTPFB FMT 15)
//! saying which sequence numbers arrived and when. The browser's bandwidth estimator lives on
//! this: without it, a browser sends video at its start bitrate forever.
//!
//! The wire format is written by `supernode_media::packet::rtcp::TransportFeedback` (the one
//! implementation, also the parser); this is the receive-side bookkeeping: a fixed ring of
//! arrival times indexed by the unwrapped sequence number, and a fixed status buffer for
//! writing. Nothing allocates after [`TwccRecorder::new`].
//!
//! Times: arrival times are kept in 250 µs ticks since the core's epoch; the feedback's
//! reference time is the first reported arrival in 64 ms units (256 ticks), and each receive
//! delta is the difference of tick counts, so the browser reconstructs arrival times exactly
//! (to the tick) however many feedback packets the report is split into.

use std::time::{Duration, Instant};

use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::{TransportFeedback, TwccPackets, TwccStatus};

/// The URI of the header extension in SDP (`a=extmap:<id> <uri>`).
pub const TWCC_EXTENSION_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Sequence numbers remembered (a feedback interval of video at a few Mbit/s fits easily).
pub const RING: usize = 1024;

/// Most statuses in one feedback packet (keeps it far below one datagram: at most 2 bytes
/// of delta and 2/7 byte of chunk per packet).
pub const MAX_PER_FEEDBACK: usize = 400;

const NOT_RECEIVED: i64 = i64::MIN;
/// 250 µs ticks per reference-time unit (64 ms).
const TICKS_PER_REF: i64 = 256;

/// The receive-side recorder of one browser transport.
#[derive(Debug)]
pub struct TwccRecorder {
    ext_id: u8,
    arrivals: Box<[i64]>,
    /// Next unwrapped sequence number to report (`None` before the first packet).
    base: Option<i64>,
    /// Highest unwrapped sequence number received.
    max: i64,
    fb_count: u8,
    media_ssrc: Ssrc,
    items: Vec<TwccStatus>,
    /// When the next feedback is due (`None`: nothing to report).
    pub due: Option<Instant>,
    /// Feedback packets sent.
    pub sent: u64,
}

impl TwccRecorder {
    /// A recorder for the extension with RFC 8285 id `ext_id`.
    pub fn new(ext_id: u8) -> Self {
        Self {
            ext_id,
            arrivals: vec![NOT_RECEIVED; RING].into_boxed_slice(),
            base: None,
            max: 0,
            fb_count: 0,
            media_ssrc: Ssrc(0),
            items: Vec::with_capacity(MAX_PER_FEEDBACK),
            due: None,
            sent: 0,
        }
    }

    /// The extension id.
    pub fn ext_id(&self) -> u8 {
        self.ext_id
    }

    /// Records the arrival of a packet of stream `ssrc` carrying transport-wide sequence
    /// number `seq`, `since_epoch` after the core's epoch; schedules feedback `interval`
    /// after `now` if none is pending.
    pub fn on_packet(
        &mut self,
        now: Instant,
        since_epoch: Duration,
        ssrc: Ssrc,
        seq: u16,
        interval: Duration,
    ) {
        let ticks = (since_epoch.as_micros() / 250) as i64;
        let s = match self.base {
            None => {
                self.base = Some(i64::from(seq));
                self.max = i64::from(seq);
                i64::from(seq)
            }
            Some(_) => {
                // Unwrap around the highest seen.
                let d = i64::from(seq.wrapping_sub(self.max as u16) as i16);
                self.max + d
            }
        };
        let base = self.base.unwrap_or(s);
        if s < base {
            return; // already reported as lost (or too late): nothing to add
        }
        if s - base >= RING as i64 {
            // Too far ahead: forget (unreported) the oldest.
            let new_base = s - RING as i64 + 1;
            for k in base..new_base.min(base + RING as i64) {
                self.arrivals[k.rem_euclid(RING as i64) as usize] = NOT_RECEIVED;
            }
            self.base = Some(new_base);
        }
        self.arrivals[s.rem_euclid(RING as i64) as usize] = ticks;
        self.max = self.max.max(s);
        self.media_ssrc = ssrc;
        if self.due.is_none() {
            self.due = Some(now + interval);
        }
    }

    /// Writes the next feedback packet (sender SSRC `sender`) into `out` and returns its
    /// length, or 0 when there is nothing to report; call again while it returns more.
    pub fn write_feedback(&mut self, sender: Ssrc, out: &mut [u8]) -> usize {
        let Some(base) = self.base else {
            return 0;
        };
        if self.max < base {
            return 0;
        }
        // The first received packet at or after base sets the reference time.
        let mut first = base;
        while first <= self.max && self.arrival(first) == NOT_RECEIVED {
            first += 1;
        }
        if first > self.max {
            // Only losses so far: wait for a received packet to anchor them.
            return 0;
        }
        let reference = self.arrival(first).div_euclid(TICKS_PER_REF);
        let mut prev = reference * TICKS_PER_REF;
        self.items.clear();
        let mut s = base;
        while s <= self.max && self.items.len() < MAX_PER_FEEDBACK {
            let a = self.arrival(s);
            if a == NOT_RECEIVED {
                self.items.push(TwccStatus::NotReceived);
            } else {
                let d = a - prev;
                if d < i64::from(i16::MIN) || d > i64::from(i16::MAX) {
                    break; // the rest goes in the next packet, with its own reference
                }
                self.items.push(TwccStatus::Received(d as i16));
                prev = a;
            }
            s += 1;
        }
        // Trailing losses are not reported yet (they may still arrive).
        while matches!(self.items.last(), Some(TwccStatus::NotReceived)) {
            self.items.pop();
            s -= 1;
        }
        if self.items.is_empty() {
            return 0;
        }
        let fb = TransportFeedback {
            sender_ssrc: sender,
            media_ssrc: self.media_ssrc,
            base_seq: base as u16,
            reference_time: (reference & 0x7f_ffff) as i32,
            fb_pkt_count: self.fb_count,
            packets: TwccPackets::Items(&self.items),
        };
        let Ok(n) = fb.write(out) else {
            return 0;
        };
        self.fb_count = self.fb_count.wrapping_add(1);
        for k in base..s {
            self.arrivals[k.rem_euclid(RING as i64) as usize] = NOT_RECEIVED;
        }
        self.base = Some(s);
        self.sent += 1;
        n
    }

    /// Whether received packets wait to be reported.
    pub fn has_pending(&self) -> bool {
        match self.base {
            Some(b) => (b..=self.max).any(|s| self.arrival(s) != NOT_RECEIVED),
            None => false,
        }
    }

    fn arrival(&self, s: i64) -> i64 {
        self.arrivals[s.rem_euclid(RING as i64) as usize]
    }

    /// The transport-wide sequence number in an RTP packet's header extensions, if any.
    pub fn seq_of(&self, pkt: &supernode_media::packet::rtp::RtpPacket<'_>) -> Option<u16> {
        pkt.extensions()
            .find(|(id, _)| *id == self.ext_id)
            .and_then(|(_, v)| Some(u16::from_be_bytes([*v.first()?, *v.get(1)?])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use supernode_media::packet::rtcp::{RtcpCompound, RtcpPacket};

    fn parse(buf: &[u8]) -> (u16, i32, Vec<(u16, TwccStatus)>) {
        let c = RtcpCompound::parse(buf);
        for p in c {
            if let Ok(RtcpPacket::TransportFeedback(f)) = p {
                return (f.base_seq, f.reference_time, f.statuses().collect());
            }
        }
        panic!("no feedback in {buf:?}");
    }

    #[test]
    fn reports_arrivals_exactly_across_wrap_and_loss() {
        let t0 = Instant::now();
        let iv = Duration::from_millis(100);
        let mut r = TwccRecorder::new(3);
        // 65534, 65535, (0 lost), 1, 2 — arriving 5 ms apart starting at 1 s.
        let seqs = [65534u16, 65535, 1, 2];
        for (i, &s) in seqs.iter().enumerate() {
            let at = Duration::from_millis(1000 + 5 * i as u64);
            r.on_packet(t0 + at, at, Ssrc(9), s, iv);
        }
        assert_eq!(r.due, Some(t0 + Duration::from_millis(1100)));
        let mut buf = [0u8; 1500];
        let n = r.write_feedback(Ssrc(1), &mut buf);
        assert!(n > 0);
        let (base, reference, st) = parse(&buf[..n]);
        assert_eq!(base, 65534);
        assert_eq!(reference, 1000 * 4 / 256); // 15 (960 ms)
        let mut at = i64::from(reference) * 256;
        let mut got = Vec::new();
        for (seq, s) in st {
            if let TwccStatus::Received(d) = s {
                at += i64::from(d);
                got.push((seq, at * 250 / 1000));
            } else {
                got.push((seq, -1));
            }
        }
        assert_eq!(
            got,
            vec![(65534, 1000), (65535, 1005), (0, -1), (1, 1010), (2, 1015)]
        );
        assert_eq!(r.write_feedback(Ssrc(1), &mut buf), 0, "all reported");
    }
}
