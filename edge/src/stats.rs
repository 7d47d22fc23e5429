//! [`ReceiveStats`]: what one received RTP stream looked like — packets, loss, duplicates,
//! and interarrival jitter per RFC 3550 §6.4.1 / A.8 — and the reception report block
//! (RFC 3550 §6.4.1) that tells the sender about it.

use std::time::Instant;

use supernode_media::ids::Ssrc;
use supernode_media::packet::rtcp::ReportBlock;
use supernode_media::packet::seq::SeqExtender;

/// Receive statistics of one RTP stream (one SSRC).
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    ext: SeqExtender,
    base: Option<u64>,
    max: u64,
    received: u64,
    duplicates: u64,
    /// Bitmap of the last 1024 sequence numbers seen, for duplicate detection.
    seen: Box<[u64; 16]>,
    jitter: f64,
    last_transit: Option<f64>,
    anchor: Option<Instant>,
    // For the fraction-lost of the next report block.
    expected_prior: u64,
    received_prior: u64,
    // LSR/DLSR bookkeeping: middle 32 bits of the last SR's NTP time and when it came.
    last_sr: Option<(u32, Instant)>,
}

impl ReceiveStats {
    /// Statistics for a stream with this RTP clock rate (48000 for Opus, 90000 for video).
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: clock_rate.max(1),
            ext: SeqExtender::new(),
            base: None,
            max: 0,
            received: 0,
            duplicates: 0,
            seen: Box::new([0; 16]),
            jitter: 0.0,
            last_transit: None,
            anchor: None,
            expected_prior: 0,
            received_prior: 0,
            last_sr: None,
        }
    }

    /// Records one packet received at `now`. Returns `false` for a duplicate (which is
    /// counted and should not be processed further).
    pub fn on_packet(&mut self, now: Instant, seq: u16, rtp_ts: u32) -> bool {
        let s = self.ext.extend(seq).0;
        let slot = (s % 1024) as usize;
        let bit = 1u64 << (slot % 64);
        match self.base {
            None => {
                self.base = Some(s);
                self.max = s;
            }
            Some(_) => {
                if s > self.max {
                    // Clear the bitmap slots the window slides over.
                    let step = (s - self.max).min(1024);
                    for k in 1..=step {
                        let c = ((self.max + k) % 1024) as usize;
                        self.seen[c / 64] &= !(1u64 << (c % 64));
                    }
                    self.max = s;
                } else if self.max - s >= 1024 {
                    // Too old to tell; count it as received (rare).
                    self.received += 1;
                    return true;
                } else if self.seen[slot / 64] & bit != 0 {
                    self.duplicates += 1;
                    return false;
                }
            }
        }
        self.seen[slot / 64] |= bit;
        self.received += 1;
        // RFC 3550 A.8: transit = arrival (in RTP units) - timestamp; J += (|D| - J) / 16.
        let anchor = *self.anchor.get_or_insert(now);
        let arrival = now.duration_since(anchor).as_secs_f64() * f64::from(self.clock_rate);
        let transit = arrival - f64::from(rtp_ts);
        if let Some(prev) = self.last_transit {
            let mut d = (transit - prev).abs();
            // A timestamp wrap between two packets is not jitter.
            if d > f64::from(u32::MAX) / 2.0 {
                d = (d - f64::from(u32::MAX) - 1.0).abs();
            }
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
        true
    }

    /// Records the sender report of this stream's source (for LSR/DLSR).
    pub fn on_sender_report(&mut self, now: Instant, ntp_time: u64) {
        self.last_sr = Some(((ntp_time >> 16) as u32, now));
    }

    /// Unique packets received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Duplicates dropped.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Packets expected from the first to the highest sequence number seen.
    pub fn expected(&self) -> u64 {
        self.base.map_or(0, |b| self.max - b + 1)
    }

    /// Packets lost (expected minus received, never negative).
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

    /// Interarrival jitter in RTP timestamp units.
    pub fn jitter_units(&self) -> f64 {
        self.jitter
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.clock_rate)
    }

    /// The reception report block about source `ssrc` at `now`; updates the interval
    /// counters behind `fraction_lost`.
    pub fn report_block(&mut self, now: Instant, ssrc: Ssrc) -> ReportBlock {
        let expected = self.expected();
        let exp_int = expected - self.expected_prior.min(expected);
        let rec_int = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_int = exp_int.saturating_sub(rec_int);
        let fraction_lost = (lost_int << 8)
            .checked_div(exp_int)
            .map_or(0, |f| f.min(255) as u8);
        let (last_sr, dlsr) = match self.last_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at).as_secs_f64();
                (lsr, (d * 65_536.0) as u32)
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().min(i32::MAX as u64) as i32,
            extended_highest_seq: self.max as u32,
            jitter: self.jitter as u32,
            last_sr,
            delay_since_last_sr: dlsr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn loss_duplicates_and_jitter() {
        let t0 = Instant::now();
        let mut st = ReceiveStats::new(48_000);
        for i in 0u16..100 {
            if i % 10 == 3 {
                continue; // 10 lost
            }
            assert!(st.on_packet(
                t0 + Duration::from_millis(20 * u64::from(i)),
                i,
                u32::from(i) * 960
            ));
        }
        assert!(!st.on_packet(t0 + Duration::from_secs(3), 50, 50 * 960));
        assert_eq!(st.received(), 90);
        assert_eq!(st.duplicates(), 1);
        assert_eq!(st.lost(), 10);
        assert!((st.loss_pct() - 10.0).abs() < 1e-9);
        // Perfectly paced arrivals: no jitter.
        assert!(st.jitter_ms() < 0.01, "{}", st.jitter_ms());
        let rb = st.report_block(t0, Ssrc(9));
        assert_eq!(rb.cumulative_lost, 10);
        assert_eq!(rb.extended_highest_seq, 99);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let t0 = Instant::now();
        let mut st = ReceiveStats::new(48_000);
        // Alternate 0 and 4 ms late: |D| = 4 ms = 192 units each packet after the first.
        for i in 0u64..400 {
            let late = if i % 2 == 0 { 0 } else { 4 };
            st.on_packet(
                t0 + Duration::from_millis(20 * i + late),
                i as u16,
                (i * 960) as u32,
            );
        }
        // J converges to |D| = 4 ms.
        assert!((st.jitter_ms() - 4.0).abs() < 0.05, "{}", st.jitter_ms());
    }

    #[test]
    fn sequence_wrap_is_not_loss() {
        let t0 = Instant::now();
        let mut st = ReceiveStats::new(90_000);
        for i in 0u32..200 {
            let seq = 65_500u16.wrapping_add(i as u16);
            st.on_packet(t0 + Duration::from_millis(u64::from(i)), seq, i * 3000);
        }
        assert_eq!(st.lost(), 0);
        assert_eq!(st.received(), 200);
    }
}
