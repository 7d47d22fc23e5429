//! [`ReceiveStats`]: what one received RTP stream looked like (RFC 3550 A.1 sequence
//! tracking, A.3 loss, A.8 interarrival jitter) and the reception report block that tells its
//! sender about it (§6.4.1).

use std::time::Instant;

use crate::ids::Ssrc;
use crate::packet::rtcp::ReportBlock;

/// A forward jump of more than this many sequence numbers restarts the sequence space
/// (RFC 3550 A.1's MAX_DROPOUT); a backward one needs a second, consecutive packet to.
const MAX_DROPOUT: u64 = 3000;
/// Duplicate detection window, in sequence numbers.
const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// What [`ReceiveStats::on_packet`] concluded about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// Newest so far.
    InOrder,
    /// Older than the newest, not seen before (or too old to tell).
    Reordered,
    /// Seen before: counted, and not to be processed further.
    Duplicate,
}

/// Receive statistics of one RTP stream (one SSRC). No allocation: the duplicate window is
/// an inline bitmap.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    anchor: Option<Instant>,
    /// First and highest extended sequence numbers of the current sequence space. The first
    /// packet is placed at 2^16 + seq so that earlier, reordered ones stay positive.
    base_seq: u64,
    max_seq: u64,
    /// Packets expected in sequence spaces before a restart.
    expected_before: u64,
    /// A large backward jump, waiting for its successor to confirm a restart.
    bad_seq: Option<u16>,
    /// Bit `s % WINDOW` set: extended sequence `s` (within the window below `max_seq`) seen.
    seen: [u64; WORDS],
    received: u64,
    duplicates: u64,
    reordered: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Jitter in timestamp units, scaled by 16 (RFC 3550 A.8 integer form).
    jitter_q4: u64,
    last_transit: Option<u32>,
    /// Middle 32 bits of the last SR's NTP time, and when it arrived (for LSR/DLSR).
    last_sr: Option<(u32, Instant)>,
}

impl ReceiveStats {
    /// Statistics for a stream with this RTP clock rate (48000 for Opus, 90000 for video).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            anchor: None,
            base_seq: 0,
            max_seq: 0,
            expected_before: 0,
            bad_seq: None,
            seen: [0; WORDS],
            received: 0,
            duplicates: 0,
            reordered: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter_q4: 0,
            last_transit: None,
            last_sr: None,
        }
    }

    /// The RTP clock rate.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Records one packet with sequence number `seq` and RTP timestamp `ts`, received at
    /// `now`.
    #[inline]
    pub fn on_packet(&mut self, now: Instant, seq: u16, ts: u32) -> SeqVerdict {
        let anchor = *self.anchor.get_or_insert(now);
        let arrival = (now.saturating_duration_since(anchor).as_micros() as u64)
            .wrapping_mul(u64::from(self.clock_rate))
            / 1_000_000;
        let verdict = self.on_sequence(seq);
        if verdict == SeqVerdict::Duplicate {
            return verdict;
        }
        self.received += 1;
        // RFC 3550 A.8 in 32-bit arithmetic (so a timestamp wrap is no jump):
        // D = transit − last transit; J += (|D| − J) / 16, with J kept scaled by 16.
        let transit = (arrival as u32).wrapping_sub(ts);
        if let Some(last) = self.last_transit {
            let d = u64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
        verdict
    }

    /// Places `seq` in the extended sequence space and the duplicate window.
    fn on_sequence(&mut self, seq: u16) -> SeqVerdict {
        if self.max_seq == 0 {
            self.restart(seq);
            return SeqVerdict::InOrder;
        }
        // Extend relative to the highest so far.
        let delta = i64::from(seq.wrapping_sub(self.max_seq as u16) as i16);
        if delta > 0 {
            let ext = self.max_seq + delta as u64;
            let step = ext - self.max_seq;
            if step > MAX_DROPOUT {
                // A big jump: the source restarted its sequence numbers.
                self.restart(seq);
                return SeqVerdict::InOrder;
            }
            if step >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for k in 1..=step {
                    self.clear(self.max_seq + k);
                }
            }
            self.max_seq = ext;
            self.set(ext);
            self.bad_seq = None;
            return SeqVerdict::InOrder;
        }
        let back = delta.unsigned_abs();
        if back > MAX_DROPOUT {
            // Far behind: a late straggler, or a restart at a lower number; two consecutive
            // packets make it a restart (RFC 3550 A.1).
            if self.bad_seq == Some(seq) {
                self.restart(seq);
                return SeqVerdict::InOrder;
            }
            self.bad_seq = Some(seq.wrapping_add(1));
            self.reordered += 1;
            return SeqVerdict::Reordered;
        }
        let ext = self.max_seq - back;
        if back < WINDOW {
            if self.is_set(ext) {
                self.duplicates += 1;
                return SeqVerdict::Duplicate;
            }
            self.set(ext);
        }
        self.reordered += 1;
        if ext < self.base_seq {
            self.base_seq = ext;
        }
        SeqVerdict::Reordered
    }

    /// Starts a new sequence space at `seq` (the first packet, or a source restart); the
    /// packets expected so far are kept.
    fn restart(&mut self, seq: u16) {
        self.expected_before = self.expected();
        self.base_seq = u64::from(seq) + (1 << 16);
        self.max_seq = self.base_seq;
        self.seen = [0; WORDS];
        self.set(self.max_seq);
        self.bad_seq = None;
    }

    fn is_set(&self, ext: u64) -> bool {
        let slot = (ext % WINDOW) as usize;
        self.seen[slot / 64] & (1 << (slot % 64)) != 0
    }

    fn set(&mut self, ext: u64) {
        let slot = (ext % WINDOW) as usize;
        self.seen[slot / 64] |= 1 << (slot % 64);
    }

    fn clear(&mut self, ext: u64) {
        let slot = (ext % WINDOW) as usize;
        self.seen[slot / 64] &= !(1 << (slot % 64));
    }

    /// Records the sender report of this stream's source (for LSR/DLSR).
    pub fn on_sender_report(&mut self, now: Instant, ntp_time: u64) {
        self.last_sr = Some((super::ntp::mid(ntp_time), now));
    }

    /// Whether any packet has been seen.
    pub fn started(&self) -> bool {
        self.max_seq != 0
    }

    /// Packets received (duplicates excluded).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Packets expected from the first to the highest sequence number seen.
    pub fn expected(&self) -> u64 {
        if self.max_seq == 0 {
            0
        } else {
            self.expected_before + self.max_seq - self.base_seq + 1
        }
    }

    /// Cumulative packets lost: expected − received, never negative.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }

    /// Loss in percent of the expected packets (0 when nothing was expected).
    pub fn loss_pct(&self) -> f64 {
        let e = self.expected();
        if e == 0 {
            0.0
        } else {
            self.lost() as f64 * 100.0 / e as f64
        }
    }

    /// Highest extended sequence number seen, as RFC 3550 reports carry it (cycles·2^16 +
    /// seq, the first cycle counted as 0).
    pub fn extended_max(&self) -> u32 {
        self.max_seq.saturating_sub(1 << 16) as u32
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4).min(u64::from(u32::MAX)) as u32
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_q4 as f64 / 16.0 * 1000.0 / f64::from(self.clock_rate)
    }

    /// Duplicates seen.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets that arrived after a newer one.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Fraction lost since the previous call, in 1/256 (RFC 3550 A.3), and starts the next
    /// interval.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost = expected_interval.saturating_sub(received_interval);
        (lost << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| f.min(255) as u8)
    }

    /// The reception report block about source `ssrc` at `now` (starts the next
    /// fraction-lost interval).
    pub fn report_block(&mut self, now: Instant, ssrc: Ssrc) -> ReportBlock {
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((mid, at)) => (mid, super::ntp::to_q16(now.saturating_duration_since(at))),
            None => (0, 0),
        };
        ReportBlock {
            ssrc,
            fraction_lost: self.take_fraction_lost(),
            cumulative_lost: self.lost().min(ReportBlock::MAX_CUMULATIVE_LOST as u64) as i32,
            extended_highest_seq: self.extended_max(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Packet `seq` of a 20 ms, 48 kHz stream, arriving `late_ms` after its time.
    fn at(t0: Instant, seq: u16, late_ms: u64) -> (Instant, u16, u32) {
        (
            t0 + Duration::from_millis(20 * u64::from(seq) + late_ms),
            seq,
            u32::from(seq) * 960,
        )
    }

    #[test]
    fn loss_reorder_duplicate() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(48_000);
        let verdicts: Vec<_> = [10u16, 11, 13, 12, 12, 15]
            .into_iter()
            .map(|q| {
                let (t, q, ts) = at(t0, q, 0);
                s.on_packet(t, q, ts)
            })
            .collect();
        use SeqVerdict::*;
        assert_eq!(
            verdicts,
            [InOrder, InOrder, InOrder, Reordered, Duplicate, InOrder]
        );
        assert_eq!(s.received(), 5);
        assert_eq!(s.expected(), 6); // 10..=15
        assert_eq!(s.lost(), 1); // 14
        assert_eq!(s.duplicates(), 1);
        assert_eq!(s.reordered(), 1);
        assert_eq!(s.jitter(), 0, "perfectly timed packets have no jitter");
    }

    #[test]
    fn loss_duplicates_and_report_block() {
        let t0 = Instant::now();
        let mut st = ReceiveStats::new(48_000);
        for i in 0u16..100 {
            if i % 10 == 3 {
                continue; // 10 lost
            }
            let (t, q, ts) = at(t0, i, 0);
            assert_ne!(st.on_packet(t, q, ts), SeqVerdict::Duplicate);
        }
        assert_eq!(
            st.on_packet(t0 + Duration::from_secs(3), 50, 50 * 960),
            SeqVerdict::Duplicate
        );
        assert_eq!(st.received(), 90);
        assert_eq!(st.duplicates(), 1);
        assert_eq!(st.lost(), 10);
        assert!((st.loss_pct() - 10.0).abs() < 1e-9);
        assert!(st.jitter_ms() < 0.01, "{}", st.jitter_ms());
        st.on_sender_report(t0, 0x0000_1234_5678_0000);
        let rb = st.report_block(t0 + Duration::from_millis(500), Ssrc(9));
        assert_eq!(rb.ssrc, Ssrc(9));
        assert_eq!(rb.cumulative_lost, 10);
        assert_eq!(rb.extended_highest_seq, 99);
        assert_eq!(rb.fraction_lost, (10 * 256 / 100) as u8);
        assert_eq!((rb.last_sr, rb.delay_since_last_sr), (0x1234_5678, 32_768));
        // The next interval has no loss.
        assert_eq!(st.report_block(t0, Ssrc(9)).fraction_lost, 0);
    }

    #[test]
    fn wraps_around() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(90_000);
        for i in 0..200u32 {
            let seq = 65_500u16.wrapping_add(i as u16);
            s.on_packet(t0 + Duration::from_millis(u64::from(i)), seq, i * 90);
        }
        assert_eq!(s.expected(), 200);
        assert_eq!(s.lost(), 0);
        assert_eq!(s.received(), 200);
        assert_eq!(s.extended_max(), (1 << 16) + 65_699 - 65_536);
    }

    #[test]
    fn jitter_follows_a8() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(48_000);
        // Alternate 0 and 4 ms late: |D| = 4 ms = 192 units each packet after the first.
        for i in 0..400u16 {
            let (t, q, ts) = at(t0, i, if i % 2 == 0 { 0 } else { 4 });
            s.on_packet(t, q, ts);
        }
        assert!((s.jitter_ms() - 4.0).abs() < 0.05, "{}", s.jitter_ms());
        assert!((185..=192).contains(&s.jitter()), "jitter {}", s.jitter());
    }

    #[test]
    fn timestamp_wrap_is_not_jitter() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(48_000);
        for i in 0..100u32 {
            let ts = (u32::MAX - 960 * 50).wrapping_add(i * 960);
            s.on_packet(t0 + Duration::from_millis(20 * u64::from(i)), i as u16, ts);
        }
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn fraction_lost_per_interval() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(48_000);
        for seq in 0..100u16 {
            if seq % 4 != 0 {
                s.on_packet(t0, seq, 0);
            }
        }
        // 99 expected after the first (seq 0 missing): base is 1.
        let f = s.take_fraction_lost();
        assert!(f > 60 && f < 70, "fraction {f}"); // ~25% of 256
        assert_eq!(s.take_fraction_lost(), 0);
    }

    #[test]
    fn restarts_keep_the_count() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(48_000);
        for seq in 0..10u16 {
            s.on_packet(t0, seq, 0);
        }
        // A jump forward past MAX_DROPOUT restarts at once.
        for seq in 20_000..20_010u16 {
            assert_ne!(s.on_packet(t0, seq, 0), SeqVerdict::Duplicate);
        }
        assert_eq!((s.expected(), s.received(), s.lost()), (20, 20, 0));
        // A jump far back: one packet is a straggler, two in a row a restart.
        assert_eq!(s.on_packet(t0, 100, 0), SeqVerdict::Reordered);
        assert_eq!(s.on_packet(t0, 101, 0), SeqVerdict::InOrder);
        assert_eq!(s.on_packet(t0, 102, 0), SeqVerdict::InOrder);
        assert_eq!(s.on_packet(t0, 101, 0), SeqVerdict::Duplicate);
        assert_eq!((s.expected(), s.received()), (22, 23));
        assert_eq!(s.lost(), 0);
    }
}
